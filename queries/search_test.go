package queries_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/pgadmin"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/search"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/migrations"
	"github.com/techvault/techvault/queries"
)

// searchSeed is the search fixture: accents, capitals, scripts beyond Latin, and words in names
// and in descriptions.
var searchSeed = []struct{ name, desc string }{
	{"NVIDIA GeForce RTX 4090", "Founders edition graphics card"},                // 0
	{"Crème brûlée torch", "Butane kitchen torch"},                               // 1
	{"creme stand", "Plain stand for the CRÈME torch"},                           // 2
	{"Nimbus Dock", "USB-C hub with three ports"},                                // 3
	{"Travel Hub", "A dock for Nimbus laptops, USB-C and HDMI"},                  // 4
	{"Клавиатура ПРИВЕТ", "Механическая клавиатура"},                             // 5
	{"Straße cable", "Outdoor cable"},                                            // 6
	{"Ærø speaker", "Façade-mounted speaker, naïve setup"},                       // 7
	{"Geforce sticker", "Sticker for GeForce fans"},                              // 8
	{"Quiet fan", "Replacement fan for a GeForce RTX cooler"},                    // 9
	{"Orion Mouse", "same words"},                                                // 10
	{"Orion Mouse", "same words"},                                                // 11
	{"Orion Mouse", "same words"},                                                // 12
	{"Orion Mouse", "same words"},                                                // 13
	{"Orion Mouse", "same words"},                                                // 14
	{"Orion Mouse pad", "same words, larger"},                                    // 15
	{"Mouse bungee", "keeps an Orion cable tidy"},                                // 16
	{"Apostrophes", "ŉ ʼn ʻo ˈa ː rare letters that unaccent turns into quotes"}, // 17
}

// searchCases are what customers type and the fixture products (by index) each finds.
var searchCases = []struct {
	q    string
	want []int
}{
	{"gefor", []int{0, 8, 9}},                        // search as you type: the last word is a prefix
	{"GEFORCE", []int{0, 8, 9}},                      // case
	{"geforce rt", []int{0, 9}},                      // every word, the last a prefix
	{"ge rtx", nil},                                  // the words before the last are whole words
	{"créme", []int{1, 2}},                           // a wrong accent
	{"CREME", []int{1, 2}},                           // none, in capitals
	{"Crème", []int{1, 2}},                           // the right one
	{"brulee torch", []int{1}},                       // accents in the product, none in the query
	{"привет", []int{5}},                             // Cyrillic capitals in the product
	{"КЛАВ", []int{5}},                               // and in the query, as a prefix
	{"strasse", []int{6}},                            // ß is ss
	{"aero facade naive", []int{7}},                  // æ, ç, ï
	{"ærø", []int{7}},                                // as written
	{"usb-c hub", []int{3, 4}},                       // punctuation splits words
	{"ŉ ʼ' & | ! :* ( ) <->", []int{0, 3, 4, 7, 17}}, // tsquery syntax, letters unaccent turns into quotes: the word n
	{"ʻo", []int{6, 10, 11, 12, 13, 14, 15, 16, 17}}, // ʻ is a quote after unaccent: o as a prefix
	{"!?", nil},                                      // no word: checked by the HTTP layer (every product)
}

func createSearchSeed(t *testing.T, e *projtest.Env) []int64 {
	t.Helper()
	ids := make([]int64, len(searchSeed))
	for i, s := range searchSeed {
		p, err := e.Cat.CreateProduct(t.Context(), projtest.MD, commands.CreateProduct{Name: s.name, Description: s.desc, Price: domain.Money(100 * (i + 1)), Stock: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	projtest.RebuildAll(t, e)
	return ids
}

// searchIDs runs a search (id order) and returns the fixture indexes it found.
func searchIDs(t *testing.T, q *queries.CatalogQueries, ids []int64, text string) []int {
	t.Helper()
	p, err := q.Products(context.Background(), queries.ProductFilter{Q: text, Sort: "price", Limit: 100})
	if err != nil {
		t.Fatalf("search %q: %v", text, err)
	}
	var out []int
	for _, v := range p.Items {
		out = append(out, slices.Index(ids, v.ID))
	}
	slices.Sort(out)
	return out
}

// Search is case- and accent-insensitive, matches every word (the last as a prefix), and no
// text a customer types is an error; the products' search column is written by the projector.
func TestSearch(t *testing.T) {
	e := projtest.NewEnv(t)
	ids := createSearchSeed(t, e)
	for _, tc := range searchCases {
		if !queries.Searchable(tc.q) {
			continue
		}
		if got := searchIDs(t, e.Q, ids, tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("search %q finds products %v, want %v", tc.q, got, tc.want)
		}
	}
	// An edit re-indexes the product's words.
	if _, err := e.Cat.UpdateProduct(t.Context(), projtest.MD, commands.UpdateProduct{ID: ids[6], Name: ptr("Crème cable")}); err != nil {
		t.Fatal(err)
	}
	projtest.RebuildAll(t, e)
	if got := searchIDs(t, e.Q, ids, "creme"); !slices.Equal(got, []int{1, 2, 6}) {
		t.Errorf("after the rename, search creme finds %v, want [1 2 6]", got)
	}
	if got := searchIDs(t, e.Q, ids, "strasse"); got != nil {
		t.Errorf("after the rename, search strasse finds %v, want nothing", got)
	}
}

func ptr[T any](v T) *T { return &v }

// A search without a sort lists by rank: a word in the name before the same word in the
// description only, more matching words first, equal ranks by id; and its keyset pages walk the
// same order at every page size, without a product twice or missing.
func TestSearchRanking(t *testing.T) {
	e := projtest.NewEnv(t)
	ids := createSearchSeed(t, e)
	order := func(q string, limit int) []int {
		t.Helper()
		var out []int
		for _, v := range walk(t, e.Q, queries.ProductFilter{Q: q, Limit: limit}) {
			out = append(out, slices.Index(ids, v.ID))
		}
		return out
	}
	for _, tc := range []struct {
		q    string
		want []int
	}{
		{"nimbus", []int{3, 4}},                            // in the name, then in the description
		{"dock", []int{3, 4}},                              // the same the other way round
		{"geforce", []int{8, 0, 9}},                        // in the name and the description, the name, the description
		{"orion mouse", []int{10, 11, 12, 13, 14, 15, 16}}, // equal ranks by id; the longer name; the words apart last
	} {
		for _, limit := range []int{1, 2, 3, 100} {
			if got := order(tc.q, limit); !slices.Equal(got, tc.want) {
				t.Errorf("search %q by rank, %d a page: %v, want %v", tc.q, limit, got, tc.want)
			}
		}
	}
	// A rank cursor of another value than a rank is refused.
	for _, v := range []string{"NaN", "-1", "0x1p-2", "1e40", "0.10000000"} {
		cur := cursorOf("rank", v, ids[0])
		if _, err := e.Q.Products(t.Context(), queries.ProductFilter{Q: "orion", Limit: 2, Cursor: cur}); !projtest.IsInvalid(err) {
			t.Errorf("rank cursor %q: %v, want invalid", v, err)
		}
	}
	// A search's cursor is no cursor of the plain listing.
	p, err := e.Q.Products(t.Context(), queries.ProductFilter{Q: "orion", Limit: 2})
	if err != nil || p.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	if _, err := e.Q.Products(t.Context(), queries.ProductFilter{Limit: 2, Cursor: p.NextCursor}); !projtest.IsInvalid(err) {
		t.Errorf("a rank cursor on the id order: %v, want invalid", err)
	}
}

// The search is the same on a database whose locale is "C" (which lower-cases ASCII only and
// knows no letter beyond it) as on the test server's default: the words are computed in Go
// (search.Words), and Postgres only reads them back as a tsvector and a tsquery.
func TestSearchIgnoresTheDatabaseLocale(t *testing.T) {
	e := projtest.NewEnv(t)
	ids := createSearchSeed(t, e)

	ctx := t.Context()
	name := pgadmin.UniqueName("tv_clocale_")
	if err := pgadmin.Exec(ctx, testdb.AdminURL(), fmt.Sprintf(
		`CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`, name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pgadmin.Drop(context.Background(), testdb.AdminURL(), name) })
	dsn, err := pgadmin.WithDatabase(testdb.AdminURL(), name)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := migrations.Apply(ctx, pool, e.Log); err != nil {
		t.Fatal(err)
	}
	var ctype string
	if err := pool.QueryRow(ctx, `SELECT datctype FROM pg_database WHERE datname = current_database()`).Scan(&ctype); err != nil || ctype != "C" {
		t.Fatalf("LC_CTYPE %q, %v; want C", ctype, err)
	}
	// The same rows, their search column as the products projector writes it.
	for i, s := range searchSeed {
		if _, err := pool.Exec(ctx, `INSERT INTO products (id, name, description, price, version, search)
			VALUES ($1, $2::text, $3::text, $4, 1, $5::tsvector)`, ids[i], s.name, s.desc, i+1, search.Vector(s.name, s.desc)); err != nil {
			t.Fatal(err)
		}
	}
	// The plain 'simple' configuration does depend on it: why Postgres is not asked for the words.
	var plain string
	if err := pool.QueryRow(ctx, `SELECT to_tsvector('simple', 'ПРИВЕТ')::text`).Scan(&plain); err != nil || plain != "'ПРИВЕТ':1" {
		t.Logf("to_tsvector('simple') in a C database: %q, %v", plain, err)
	}
	cq := queries.NewCatalogQueries(pool, 0)
	for _, tc := range searchCases {
		if !queries.Searchable(tc.q) {
			continue
		}
		here, there := searchIDs(t, e.Q, ids, tc.q), searchIDs(t, cq, ids, tc.q)
		if !slices.Equal(there, tc.want) || !slices.Equal(here, there) {
			t.Errorf("search %q finds %v in the C database, %v in the default one; want %v", tc.q, there, here, tc.want)
		}
	}
}

// cursorOf is a hand-made cursor.
func cursorOf(sort, value string, id int64) string {
	b, _ := json.Marshal(map[string]any{"s": sort, "v": value, "id": id})
	return base64.RawURLEncoding.EncodeToString(b)
}
