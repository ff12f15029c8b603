package queries_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/queries"
)

// seedProduct is one product of the query fixture. Names are single lowercase words so that
// their order is the same under any collation.
type seedProduct struct {
	name, desc string
	cents      int64
	cat        int // 0: none, 1 or 2: the fixture's categories
	stock      int64
	rating     string
}

var querySeed = []seedProduct{
	{"anvil", "heavy forged steel", 25000, 1, 3, "4.50"},
	{"bolt", "zinc plated bolt pack", 499, 1, 0, "3.00"},
	{"cable", "usb braided cable", 1999, 2, 12, "4.50"},
	{"cable", "usb cable flat", 1999, 2, 0, "4.50"},
	{"cable", "hdmi cable braided", 1299, 2, 7, "0"},
	{"drill", "cordless drill kit", 8999, 1, 2, "5.00"},
	{"drill", "corded drill", 4999, 1, 0, "2.25"},
	{"drill", "hammer drill cordless", 8999, 0, 1, "4.50"},
	{"epoxy", "two part resin", 999, 0, 40, "0"},
	{"fuse", "glass fuse assortment", 500, 0, 100, "3.00"},
	{"gasket", "rubber gasket set", 500, 1, 0, "1.00"},
	{"hinge", "brass hinge", 350, 0, 8, "3.00"},
	{"hinge", "steel hinge heavy", 350, 1, 8, "3.00"},
	{"inverter", "power inverter usb ports", 15999, 2, 4, "4.00"},
	{"jigsaw", "cordless jigsaw", 12900, 1, 0, "4.50"},
	{"kettle", "cordless kettle", 2999, 0, 9, "3.50"},
	{"ladder", "aluminium ladder", 19900, 0, 1, "0"},
	{"gpu", "graphics card rtx-4090 founders", 159999, 2, 2, "4.90"},
	{"extension", "extension cable 1.5m", 1499, 2, 30, "3.75"},
	{"zipties", "cable ties", 0, 0, 500, "2.00"},
	{"anvil", "light anvil", 25000, 0, 0, "4.50"},
	{"bolt", "steel bolt pack", 499, 0, 60, "1.00"},
	{"memory", "corsair vengeance ddr5-6000 32gb", 11499, 0, 50, "4.70"},
	{"ssd", "nvme pcie 4.0 2tb", 16999, 0, 35, "4.80"},
}

type seeded struct {
	seedProduct
	view queries.ProductView
}

// words splits text as the search does (migration 0021's techvault_search_text, for text
// without accents).
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// matches is the reference semantics of ProductFilter: every word of Q is a word of the
// product's name or description, the last one a prefix of one (search as you type); the other
// filters as documented.
func matches(p seeded, f queries.ProductFilter) bool {
	text := words(p.name + " " + p.desc)
	qs := words(f.Q)
	for i, q := range qs {
		last := i == len(qs)-1
		if !slices.ContainsFunc(text, func(w string) bool { return w == q || last && strings.HasPrefix(w, q) }) {
			return false
		}
	}
	v := p.view
	switch {
	case f.CategoryID != nil && (v.CategoryID == nil || *v.CategoryID != *f.CategoryID),
		f.MinPrice != nil && v.Price < *f.MinPrice,
		f.MaxPrice != nil && v.Price > *f.MaxPrice,
		f.InStock != nil && *f.InStock != (v.Stock > 0):
		return false
	}
	return true
}

// sortOrders are the reference orders of ProductSorts.
var sortOrders = map[string]func(a, b queries.ProductView) int{
	"": func(a, b queries.ProductView) int { return cmp.Compare(a.ID, b.ID) },
	"price": func(a, b queries.ProductView) int {
		return cmp.Or(cmp.Compare(a.Price, b.Price), cmp.Compare(a.ID, b.ID))
	},
	"-price": func(a, b queries.ProductView) int {
		return cmp.Or(cmp.Compare(b.Price, a.Price), cmp.Compare(b.ID, a.ID))
	},
	"name": func(a, b queries.ProductView) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	},
	"-created_at": func(a, b queries.ProductView) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	},
	"-rating": func(a, b queries.ProductView) int {
		return cmp.Or(cmp.Compare(b.Rating, a.Rating), cmp.Compare(a.ID, b.ID))
	},
}

// seedQueries appends the fixture through the commands (with a clock that gives every three
// products the same created_at, so that the keyset tie-breaks matter), rebuilds the read tables
// from the log and sets ratings (no projector writes them yet).
func seedQueries(t *testing.T) (*projtest.Env, []seeded, [2]int64) {
	t.Helper()
	var calls atomic.Int64
	base := time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)
	e := projtest.NewEnvWithClock(t, func() time.Time {
		return base.Add(time.Duration(calls.Add(1)/3) * time.Second)
	})
	ctx := t.Context()
	var cats [2]int64
	for i := range cats {
		c, err := e.Cat.CreateCategory(ctx, projtest.MD, commands.CreateCategory{Name: fmt.Sprintf("shelf %d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		cats[i] = c.ID
	}
	var out []seeded
	for _, s := range querySeed {
		cmd := commands.CreateProduct{Name: s.name, Description: s.desc, Price: domain.Money(s.cents), Stock: s.stock}
		if s.cat > 0 {
			cmd.CategoryID = &cats[s.cat-1]
		}
		p, err := e.Cat.CreateProduct(ctx, projtest.MD, cmd)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, seeded{seedProduct: s, view: queries.ProductView{ID: p.ID}})
	}
	projtest.RebuildAll(t, e)
	for i, s := range out {
		if _, err := e.Pool.Exec(ctx, `UPDATE products SET rating = $2::numeric, rating_count = 1 WHERE id = $1`, s.view.ID, s.rating); err != nil {
			t.Fatal(err)
		}
		v, err := e.Q.Product(ctx, s.view.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[i].view = v
	}
	createdAt := map[time.Time]int{}
	for _, s := range out {
		createdAt[s.view.CreatedAt]++
	}
	if len(createdAt) == len(out) {
		t.Fatal("fixture has no created_at ties")
	}
	return e, out, cats
}

// walk reads every page of f and checks the page shape: full pages with a cursor, then a last
// page without one.
func walk(t *testing.T, q *queries.CatalogQueries, f queries.ProductFilter) []queries.ProductView {
	t.Helper()
	var all []queries.ProductView
	for page := 1; ; page++ {
		p, err := q.Products(context.Background(), f)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			if len(p.Items) > f.Limit {
				t.Fatalf("last page %d has %d items, limit %d", page, len(p.Items), f.Limit)
			}
			return all
		}
		if len(p.Items) != f.Limit {
			t.Fatalf("page %d has %d items and a next cursor, limit %d", page, len(p.Items), f.Limit)
		}
		if page > 200 {
			t.Fatal("pagination does not end")
		}
		f.Cursor = p.NextCursor
	}
}

func TestProductsQueries(t *testing.T) {
	e, seed, cats := seedQueries(t)
	ctx := t.Context()
	money := func(c int64) *domain.Money { m := domain.Money(c); return &m }
	yes, no := true, false

	filters := []struct {
		name string
		f    queries.ProductFilter
	}{
		{"everything", queries.ProductFilter{}},
		{"q prefix", queries.ProductFilter{Q: "cab"}},
		{"q several words", queries.ProductFilter{Q: "usb bra"}},
		{"q in description only", queries.ProductFilter{Q: "cordless"}},
		{"q is case-insensitive", queries.ProductFilter{Q: "DRILL"}},
		{"q punctuation is ignored", queries.ProductFilter{Q: "  steel,  HEAV! "}},
		{"q matching nothing", queries.ProductFilter{Q: "zzz"}},
		{"q without a searchable word", queries.ProductFilter{Q: "!?"}},
		{"category 1", queries.ProductFilter{CategoryID: &cats[0]}},
		{"category 2", queries.ProductFilter{CategoryID: &cats[1]}},
		{"unknown category", queries.ProductFilter{CategoryID: new(int64)}},
		{"min price (inclusive)", queries.ProductFilter{MinPrice: money(8999)}},
		{"max price (inclusive)", queries.ProductFilter{MaxPrice: money(500)}},
		{"price range", queries.ProductFilter{MinPrice: money(500), MaxPrice: money(1999)}},
		{"free", queries.ProductFilter{MaxPrice: money(0)}},
		{"in stock", queries.ProductFilter{InStock: &yes}},
		{"out of stock", queries.ProductFilter{InStock: &no}},
		{"combined", queries.ProductFilter{Q: "c", CategoryID: &cats[1], MinPrice: money(1000), MaxPrice: money(2000), InStock: &yes}},
	}
	sorts := slices.Sorted(maps.Keys(queries.ProductSorts))
	if !slices.Equal(sorts, slices.Sorted(maps.Keys(sortOrders))) {
		t.Fatalf("ProductSorts has %v; this test knows %v", sorts, slices.Sorted(maps.Keys(sortOrders)))
	}
	for _, fc := range filters {
		var want []queries.ProductView
		for _, s := range seed {
			if matches(s, fc.f) {
				want = append(want, s.view)
			}
		}
		for _, sort := range sorts {
			sorted := slices.SortedFunc(slices.Values(want), sortOrders[sort])
			byRank := sort == "" && queries.Searchable(fc.f.Q)
			if byRank {
				// A search without a sort lists by rank (TestSearchRanking): the reference order
				// is the one page of 100, which every smaller page size must walk alike.
				f := fc.f
				f.Limit = 100
				p, err := e.Q.Products(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(slices.Sorted(slices.Values(ids(p.Items))), ids(sorted)) {
					t.Fatalf("%s by rank: ids %v, want %v in some order", fc.name, ids(p.Items), ids(sorted))
				}
				sorted = p.Items
			}
			wantIDs := ids(sorted)
			for _, limit := range []int{1, 4, 100} {
				t.Run(fmt.Sprintf("%s/sort=%q/limit=%d", fc.name, sort, limit), func(t *testing.T) {
					f := fc.f
					f.Sort, f.Limit = sort, limit
					got := walk(t, e.Q, f)
					if gotIDs := ids(got); !slices.Equal(gotIDs, wantIDs) {
						t.Fatalf("ids %v\nwant %v", gotIDs, wantIDs)
					}
					for i, v := range got {
						g, _ := json.Marshal(v)
						w, _ := json.Marshal(sorted[i])
						if string(g) != string(w) {
							t.Fatalf("item %d = %s, want %s", i, g, w)
						}
					}
				})
			}
		}
	}

	// The 'simple' parser alone keeps "rtx-4090" as 'rtx' + '-4090' and "4.0" as one token, while
	// the search splits on every rune that is not a letter or digit: the search column
	// (migrations 0003 and 0021) splits the same way, so the words a customer copies from a product's own
	// name find it (the demo catalog has "DDR5-6000" and "PCIe 4.0").
	t.Run("search finds model numbers and sizes", func(t *testing.T) {
		for _, q := range []string{"4090", "rtx 4090", "RTX-4090", "1.5m", "1.5", "DDR5-6000", "ddr5 6000", "pcie 4.0"} {
			f := queries.ProductFilter{Q: q, Limit: 100}
			var want []int64
			for _, s := range seed {
				if matches(s, f) {
					want = append(want, s.view.ID)
				}
			}
			if len(want) == 0 {
				t.Fatalf("fixture has no product for %q", q)
			}
			got := ids(walk(t, e.Q, f))
			if !slices.Equal(got, want) {
				t.Errorf("search %q finds %v, want %v", q, got, want)
			}
		}
	})

	t.Run("bad cursors and sorts", func(t *testing.T) {
		first := func(sort string) string {
			t.Helper()
			p, err := e.Q.Products(ctx, queries.ProductFilter{Sort: sort, Limit: 1})
			if err != nil || p.NextCursor == "" {
				t.Fatalf("first page by %q: %+v, %v", sort, p, err)
			}
			return p.NextCursor
		}
		cp, err := e.Q.Categories(ctx, 1, "")
		if err != nil || cp.NextCursor == "" {
			t.Fatalf("first page of categories: %+v, %v", cp, err)
		}
		raw := func(json string) string { return base64.RawURLEncoding.EncodeToString([]byte(json)) }
		tests := []struct {
			name, sort, cursor string
		}{
			{"not base64", "", "%%%"},
			{"base64 of something else", "", raw("hello")},
			{"price cursor on name sort", "name", first("price")},
			{"price cursor on -price sort", "-price", first("price")},
			{"default cursor on -rating sort", "-rating", first("")},
			{"name cursor on default sort", "", first("name")},
			{"categories cursor on products", "", cp.NextCursor},
			{"negative id", "", raw(`{"s":"","id":-1}`)},
			{"id beyond bigint", "", raw(`{"s":"","id":9223372036854775808}`)},
			{"price that is no amount", "price", raw(`{"s":"price","v":"cheap","id":1}`)},
			{"price with three decimals", "price", raw(`{"s":"price","v":"1.999","id":1}`)},
			{"time that is no time", "-created_at", raw(`{"s":"-created_at","v":"yesterday","id":1}`)},
			{"rating out of range", "-rating", raw(`{"s":"-rating","v":"7","id":1}`)},
			{"name with a NUL", "name", raw(`{"s":"name","v":"a\u0000b","id":1}`)},
			{"unknown sort", "popularity", ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p, err := e.Q.Products(ctx, queries.ProductFilter{Sort: tc.sort, Cursor: tc.cursor, Limit: 5})
				if !projtest.IsInvalid(err) {
					t.Fatalf("Products(sort %q, cursor %q) = %d items, %v; want an error matching domain.ErrInvalid", tc.sort, tc.cursor, len(p.Items), err)
				}
			})
		}
	})

	// The HTTP layer only passes 1..100, but the queries are exported: a limit below 1 is an
	// error, not a panic.
	t.Run("limit below one does not panic", func(t *testing.T) {
		for _, limit := range []int{0, -1} {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("Products with Limit %d panics: %v", limit, r)
					}
				}()
				p, err := e.Q.Products(ctx, queries.ProductFilter{Limit: limit})
				if err == nil && len(p.Items) > 0 {
					t.Errorf("Products with Limit %d = %d items, want an error or none", limit, len(p.Items))
				}
			}()
		}
	})
}

func ids(vs []queries.ProductView) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}
