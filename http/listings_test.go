package http_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/internal/testdb"
)

// listing is GET /products' body.
type listing struct {
	Category   *category `json:"category"`
	Items      []product `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

// storefront is a harness with two categories of products.
type storefront struct {
	*harness
	cats     [2]category
	products []product // 0-5 in cats[0], 6-9 in cats[1]
}

func newStorefront(t *testing.T, o harnessOpts) *storefront {
	t.Helper()
	s := &storefront{harness: newHarness(t, o)}
	for i := range s.cats {
		s.admin("POST", "/api/v1/categories", fmt.Sprintf(`{"name":"Shelf %d"}`, i+1), 201).json(t, &s.cats[i])
	}
	for i := range 10 {
		var p product
		cat := s.cats[0].ID
		if i >= 6 {
			cat = s.cats[1].ID
		}
		s.admin("POST", "/api/v1/products", fmt.Sprintf(`{"name":"Item %02d","price":"%d.00","stock":%d,"category_id":%d}`,
			i, 10+i, 3+i, cat), 201).json(t, &p)
		s.products = append(s.products, p)
	}
	return s
}

func categoryPage(id int64, sort string, limit int) string {
	return fmt.Sprintf("/api/v1/products?category_id=%d&sort=%s&limit=%d", id, url.QueryEscape(sort), limit)
}

// fresh reads path with X-Min-Position (so from Postgres, after the projectors reached the head
// of the log): the reference the view must answer alike.
func (s *storefront) fresh(path string) response {
	s.t.Helper()
	r := s.read(path, s.head())
	if r.status != 200 || r.header.Get("X-Read-Source") != "postgres" {
		s.t.Fatalf("GET %s with X-Min-Position: %d, source %q: %s", path, r.status, r.header.Get("X-Read-Source"), r.body)
	}
	return r
}

// fromView waits until path is served from the Redis view with the very bytes of the fresh read.
func (s *storefront) fromView(path string) response {
	s.t.Helper()
	want := s.fresh(path)
	var got response
	eventually(s.t, "GET "+path+" served from the view as Postgres answers it", func() bool {
		got = s.do("GET", path, "")
		return got.status == 200 && got.header.Get("X-Read-Source") == "redis" && string(got.body) == string(want.body)
	})
	return got
}

// A category page (and the first page of each sort) comes from the Redis view, byte for byte
// what Postgres answers; its limit, cursor and category head work as on any page.
func TestCategoryPagesFromTheView(t *testing.T) {
	s := newStorefront(t, harnessOpts{})
	for _, path := range []string{categoryPage(s.cats[0].ID, "-price", 20), categoryPage(s.cats[0].ID, "name", 4),
		categoryPage(s.cats[1].ID, "-created_at", 1), "/api/v1/products?sort=price&limit=3", "/api/v1/products"} {
		s.fromView(path)
	}
	var l listing
	s.fromView(categoryPage(s.cats[0].ID, "-price", 4)).json(t, &l)
	if l.Category == nil || l.Category.Name != "Shelf 1" || len(l.Items) != 4 || l.Items[0].ID != s.products[5].ID || l.NextCursor == "" {
		t.Fatalf("category page: %+v", l)
	}
	// The next page, from Postgres, follows on.
	var next listing
	s.do("GET", categoryPage(s.cats[0].ID, "-price", 4)+"&cursor="+l.NextCursor, "").json(t, &next)
	if len(next.Items) != 2 || next.Items[0].ID != s.products[1].ID || next.NextCursor != "" || next.Category.ID != s.cats[0].ID {
		t.Fatalf("second page: %+v", next)
	}
	// Without category_id there is no category; an unknown category heads its empty page with null.
	var all map[string]any
	s.fromView("/api/v1/products").json(t, &all)
	if _, ok := all["category"]; ok {
		t.Fatalf("a listing without category_id carries a category: %v", all)
	}
	for range 2 {
		r := s.do("GET", categoryPage(99999, "", 20), "")
		if r.status != 200 || string(r.body) != `{"category":null,"items":[]}` || r.header.Get("X-Read-Source") != "postgres" {
			t.Fatalf("unknown category: %d %s (%s)", r.status, r.body, r.header.Get("X-Read-Source"))
		}
	}
	// Filters other than the category, and searches, are read from Postgres.
	for _, path := range []string{"/api/v1/products?in_stock=true", "/api/v1/products?category_id=1&min_price=1", "/api/v1/products?q=item"} {
		if r := s.do("GET", path, ""); r.status != 200 || r.header.Get("X-Read-Source") != "postgres" {
			t.Fatalf("GET %s: %d, source %q", path, r.status, r.header.Get("X-Read-Source"))
		}
	}
}

// Renaming a category and changing a price or a stock show up on the category pages: at once for
// a read that names the command's position (X-Min-Position), and from the view as soon as it
// follows the projector's notification, never older after that.
func TestEditsReachCategoryPages(t *testing.T) {
	s := newStorefront(t, harnessOpts{})
	page0 := categoryPage(s.cats[0].ID, "-price", 20)
	page1 := categoryPage(s.cats[1].ID, "price", 20)
	for _, p := range []string{page0, page1, "/api/v1/products?sort=-price"} {
		s.fromView(p)
	}
	check := func(what, path string, position int64, ok func(listing) bool) {
		t.Helper()
		var l listing
		r := s.read(path, position)
		r.json(t, &l)
		if !ok(l) {
			t.Fatalf("%s: GET %s with X-Min-Position %d: %s", what, path, position, r.body)
		}
		var last listing
		s.fromView(path).json(t, &last)
		if !ok(last) {
			t.Fatalf("%s: the view answers %+v", what, last)
		}
		for range 3 {
			var again listing
			s.do("GET", path, "").json(t, &again)
			if !ok(again) {
				t.Fatalf("%s: an older page after the view followed the change", what)
			}
		}
	}

	var c category
	s.admin("PATCH", fmt.Sprintf("/api/v1/categories/%d", s.cats[1].ID), `{"name":"Renamed shelf"}`, 200).json(t, &c)
	check("rename", page1, c.Position, func(l listing) bool { return l.Category != nil && l.Category.Name == "Renamed shelf" })

	var p product
	s.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", s.products[0].ID), `{"price":"999.00"}`, 200).json(t, &p)
	check("price", page0, p.Position, func(l listing) bool { return l.Items[0].ID == s.products[0].ID && l.Items[0].Price == "999.00" })

	s.admin("POST", fmt.Sprintf("/api/v1/products/%d/stock", s.products[7].ID), `{"quantity":0}`, 200).json(t, &p)
	check("stock", page1, p.Position, func(l listing) bool {
		return l.Items[1].ID == s.products[7].ID && l.Items[1].Stock == 0 && !l.Items[1].InStock
	})

	// A product moved to the other category leaves one page and joins the other.
	s.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", s.products[2].ID), `{"category_id":`+strconv.FormatInt(s.cats[1].ID, 10)+`}`, 200).json(t, &p)
	check("move, old category", page0, p.Position, func(l listing) bool { return len(l.Items) == 5 })
	check("move, new category", page1, p.Position, func(l listing) bool { return len(l.Items) == 5 && l.Items[0].ID == s.products[2].ID })
	check("move, whole catalog", "/api/v1/products?sort=-price", p.Position, func(l listing) bool {
		return len(l.Items) == 10 && l.Items[8].ID == s.products[2].ID && *l.Items[8].CategoryID == s.cats[1].ID
	})
}

// With Redis unreachable, category pages are still answered (200) and correct, changes
// included; when Redis returns, the view serves them again, up to date.
func TestCategoryPagesWithRedisDown(t *testing.T) {
	t.Run("dead address", func(t *testing.T) {
		dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
		t.Cleanup(func() { _ = dead.Close() })
		s := newStorefront(t, harnessOpts{redis: dead, prefix: "dead:"})
		path := categoryPage(s.cats[0].ID, "-price", 3)
		want := s.fresh(path)
		for range 3 {
			r := s.do("GET", path, "")
			if r.status != 200 || r.header.Get("X-Read-Source") != "postgres" || string(r.body) != string(want.body) {
				t.Fatalf("GET %s with Redis unreachable: %d %s %s", path, r.status, r.header.Get("X-Read-Source"), r.body)
			}
		}
		var p product
		s.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", s.products[1].ID), `{"price":"500.00"}`, 200).json(t, &p)
		eventually(t, "the change on the page", func() bool {
			var l listing
			r := s.do("GET", path, "")
			r.json(t, &l)
			return r.status == 200 && l.Items[0].ID == s.products[1].ID
		})
	})

	t.Run("redis goes and returns", func(t *testing.T) {
		upstream, prefix := testdb.Redis(t)
		px := newProxy(t, upstream.Options().Addr)
		client := redis.NewClient(&redis.Options{Addr: px.addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = client.Close() })
		s := newStorefront(t, harnessOpts{redis: client, prefix: prefix})
		path := categoryPage(s.cats[0].ID, "-price", 3)
		s.fromView(path)

		px.setUp(false)
		var p product
		s.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", s.products[1].ID), `{"price":"500.00"}`, 200).json(t, &p)
		eventually(t, "the page from Postgres with the change", func() bool {
			var l listing
			r := s.do("GET", path, "")
			r.json(t, &l)
			return r.status == 200 && r.header.Get("X-Read-Source") == "postgres" && l.Items[0].Price == "500.00"
		})
		px.setUp(true)
		var l listing
		s.fromView(path).json(t, &l)
		if l.Items[0].Price != "500.00" {
			t.Fatalf("after Redis returned: %+v", l.Items[0])
		}
	})
}

// keptInMemory reads the paths until their answers have stayed in the answer cache for a while
// (the setup's notifications may still be on their way, and may drop them) and returns them.
func (s *storefront) keptInMemory(paths ...string) map[string]string {
	s.t.Helper()
	kept := map[string]string{}
	eventually(s.t, "answers kept in memory", func() bool {
		for _, p := range paths {
			r := s.do("GET", p, "")
			if r.status != 200 {
				return false
			}
			kept[p] = string(r.body)
		}
		time.Sleep(200 * time.Millisecond)
		for _, p := range paths {
			r := s.do("GET", p, "")
			if r.header.Get("X-Read-Source") != "memory" || string(r.body) != kept[p] {
				return false
			}
		}
		return true
	})
	return kept
}

// Searches and filtered pages are answered from memory between catalog changes: a repeat is not
// read from Postgres (a write behind the projectors' back stays unseen), and a change committed
// by the products projector is seen by the next read.
func TestSearchesFromMemoryFollowTheLog(t *testing.T) {
	s := newStorefront(t, harnessOpts{})
	const path = "/api/v1/products?q=item&sort=price&limit=3"
	s.fresh(path) // the projectors have caught up
	first := s.keptInMemory(path)[path]
	if _, err := s.db.Pool.Exec(context.Background(), `UPDATE products SET price = 1 WHERE id = $1`, s.products[9].ID); err != nil {
		t.Fatal(err)
	}
	if r := s.do("GET", path, ""); r.header.Get("X-Read-Source") != "memory" || string(r.body) != first {
		t.Fatalf("a repeat was not answered from memory: %s %s", r.header.Get("X-Read-Source"), r.body)
	}
	// A change through the API (projected, notified) drops it: the next read is Postgres' answer.
	var p product
	s.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", s.products[0].ID), `{"price":"1.50"}`, 200).json(t, &p)
	eventually(t, "the change in the search", func() bool {
		var l listing
		r := s.do("GET", path, "")
		r.json(t, &l)
		return r.status == 200 && len(l.Items) > 0 && l.Items[0].Price == "1.00" || len(l.Items) > 1 && l.Items[1].Price == "1.50"
	})
	// With X-Min-Position the answer is always Postgres'.
	if r := s.read(path, s.head()); r.header.Get("X-Read-Source") != "postgres" {
		t.Fatalf("a read with X-Min-Position from %s", r.header.Get("X-Read-Source"))
	}
}

// A product whose stock changes drops the kept answers that show it, and those that filter on
// stock (it may join them), but not the others: a store that sells keeps answering its other
// searches from memory.
func TestSearchesOutliveSalesOfOtherProducts(t *testing.T) {
	s := newStorefront(t, harnessOpts{})
	const (
		cheapest = "/api/v1/products?q=item&sort=price&limit=3"                // Items 00, 01, 02
		dearest  = "/api/v1/products?q=item&sort=-price&limit=3"               // Items 09, 08, 07
		inStock  = "/api/v1/products?q=item&in_stock=true&sort=price&limit=20" // every item but 09
	)
	nine := s.products[9]
	s.admin("POST", fmt.Sprintf("/api/v1/products/%d/stock", nine.ID), `{"quantity":0}`, 200)
	s.fresh(cheapest) // the projectors have caught up
	kept := s.keptInMemory(cheapest, dearest, inStock)

	if strings.Contains(kept[inStock], fmt.Sprintf(`"id":%d,`, nine.ID)) {
		t.Fatalf("item 09 is out of stock, yet listed in stock: %s", kept[inStock])
	}
	s.admin("POST", fmt.Sprintf("/api/v1/products/%d/stock", nine.ID), `{"delta":5}`, 200)
	shows := func(path string) bool {
		var l listing
		r := s.do("GET", path, "")
		r.json(t, &l)
		for _, p := range l.Items {
			if p.ID == nine.ID {
				return p.Stock == 5
			}
		}
		return false
	}
	eventually(t, "the sale in the answers that show the product", func() bool { return shows(dearest) })
	eventually(t, "the product back in the answer filtered on stock", func() bool { return shows(inStock) })
	if r := s.do("GET", cheapest, ""); r.header.Get("X-Read-Source") != "memory" || string(r.body) != kept[cheapest] {
		t.Fatalf("an answer without the product was dropped by its sale: %s %s", r.header.Get("X-Read-Source"), r.body)
	}

	// A change of what matches (a rename) drops every answer.
	s.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", s.products[1].ID), `{"name":"Gadget 01"}`, 200)
	eventually(t, "the rename in the cheapest items", func() bool {
		var l listing
		s.do("GET", cheapest, "").json(t, &l)
		for _, p := range l.Items {
			if p.ID == s.products[1].ID {
				return false
			}
		}
		return len(l.Items) == 3
	})
}
