package http_test

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections/catalogproj"
)

type category struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Position    int64  `json:"position"`
}

type product struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       string `json:"price"`
	Currency    string `json:"currency"`
	CategoryID  *int64 `json:"category_id"`
	Stock       int64  `json:"stock"`
	InStock     bool   `json:"in_stock"`
	Position    int64  `json:"position"`
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func TestCatalogEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{})

	var gpus category
	h.admin("POST", "/api/v1/categories", `{"name":"Graphics Cards","description":"GPUs"}`, 201).json(t, &gpus)
	if gpus.ID == 0 || gpus.Position == 0 || gpus.Name != "Graphics Cards" {
		t.Fatalf("created category = %+v", gpus)
	}
	var got category
	h.read(fmt.Sprintf("/api/v1/categories/%d", gpus.ID), gpus.Position).json(t, &got)
	if got.Name != "Graphics Cards" || got.Description != "GPUs" {
		t.Fatalf("category read back = %+v", got)
	}

	var p product
	h.admin("POST", "/api/v1/products", fmt.Sprintf(
		`{"name":"RTX 4070 SUPER","description":"12 GB","price":"599.99","category_id":%d,"stock":3}`, gpus.ID), 201).json(t, &p)
	if p.Price != "599.99" || p.Currency != "USD" || p.Stock != 3 || !p.InStock || p.CategoryID == nil || *p.CategoryID != gpus.ID {
		t.Fatalf("created product = %+v", p)
	}
	var read product
	h.read(fmt.Sprintf("/api/v1/products/%d", p.ID), p.Position).json(t, &read)
	if read.Name != p.Name || read.Price != "599.99" || read.Stock != 3 {
		t.Fatalf("product read back = %+v", read)
	}

	h.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", p.ID), `{"price":"549.00","name":"RTX 4070 SUPER 12GB"}`, 200).json(t, &p)
	h.admin("POST", fmt.Sprintf("/api/v1/products/%d/stock", p.ID), `{"delta":-3}`, 200).json(t, &p)
	if p.Stock != 0 || p.InStock {
		t.Fatalf("after selling out: %+v", p)
	}
	var list page[product]
	h.read("/api/v1/products?in_stock=false", p.Position).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].Price != "549.00" || list.Items[0].Name != "RTX 4070 SUPER 12GB" {
		t.Fatalf("out-of-stock list = %+v", list)
	}
	h.read("/api/v1/products?in_stock=true", p.Position).json(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("in-stock list = %+v", list)
	}
	h.admin("POST", fmt.Sprintf("/api/v1/products/%d/stock", p.ID), `{"quantity":10}`, 200).json(t, &p)
	if p.Stock != 10 {
		t.Fatalf("stock set to %d", p.Stock)
	}

	// Deleting the category leaves its products uncategorised.
	var del struct {
		Deleted  bool  `json:"deleted"`
		Position int64 `json:"position"`
	}
	h.admin("DELETE", fmt.Sprintf("/api/v1/categories/%d", gpus.ID), "", 200).json(t, &del)
	h.read(fmt.Sprintf("/api/v1/products/%d", p.ID), del.Position).json(t, &read)
	if read.CategoryID != nil {
		t.Fatalf("product still in deleted category: %+v", read)
	}
	if r := h.read(fmt.Sprintf("/api/v1/categories/%d", gpus.ID), del.Position); r.status != 404 {
		t.Fatalf("deleted category: %d %s", r.status, r.body)
	}
	h.admin("DELETE", fmt.Sprintf("/api/v1/categories/%d", gpus.ID), "", 404)

	h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d", p.ID), "", 200).json(t, &del)
	if r := h.read(fmt.Sprintf("/api/v1/products/%d", p.ID), del.Position); r.status != 404 {
		t.Fatalf("deleted product: %d %s", r.status, r.body)
	}
	h.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", p.ID), `{"name":"x"}`, 404)
}

// Every bad input gets a clear 4xx JSON error and appends nothing.
func TestBadInputAppendsNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var cat category
	h.admin("POST", "/api/v1/categories", `{"name":"Storage"}`, 201).json(t, &cat)
	var p product
	h.admin("POST", "/api/v1/products", `{"name":"SSD","price":"89.99","stock":1}`, 201).json(t, &p)
	prod := fmt.Sprintf("/api/v1/products/%d", p.ID)
	catp := fmt.Sprintf("/api/v1/categories/%d", cat.ID)
	long := strings.Repeat("x", 256)
	pid, cid := strconv.FormatInt(p.ID, 10), strconv.FormatInt(cat.ID, 10)

	tests := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"category: empty name", "POST", "/api/v1/categories", `{"name":""}`, 422, "invalid", "name"},
		{"category: blank name", "POST", "/api/v1/categories", `{"name":"   "}`, 422, "invalid", "name"},
		{"category: name too long", "POST", "/api/v1/categories", `{"name":"` + strings.Repeat("n", 51) + `"}`, 422, "invalid", "name"},
		{"category: description too long", "POST", "/api/v1/categories", `{"name":"a","description":"` + strings.Repeat("d", 501) + `"}`, 422, "invalid", "description"},
		{"category: unknown field", "POST", "/api/v1/categories", `{"name":"a","colour":"red"}`, 400, "invalid", "colour"},
		{"category: name not a string", "POST", "/api/v1/categories", `{"name":5}`, 400, "invalid", "name"},
		{"category: not JSON", "POST", "/api/v1/categories", `{"name":`, 400, "invalid", ""},
		{"category: array body", "POST", "/api/v1/categories", `[]`, 400, "invalid", ""},
		{"category: null body", "PATCH", catp, ` null `, 400, "invalid", ""},
		{"category: two objects", "POST", "/api/v1/categories", `{"name":"a"}{"name":"b"}`, 400, "invalid", ""},
		{"category: empty patch", "PATCH", catp, `{}`, 422, "invalid", ""},
		{"category: patch empty name", "PATCH", catp, `{"name":""}`, 422, "invalid", "name"},
		{"category: unknown id", "PATCH", "/api/v1/categories/999", `{"name":"x"}`, 404, "not_found", ""},
		{"category: malformed id", "PATCH", "/api/v1/categories/abc", `{"name":"x"}`, 400, "invalid", "id"},
		{"category: id out of range", "DELETE", "/api/v1/categories/9223372036854775808", ``, 400, "invalid", "id"},
		{"category: id past 2^31 (ids are bigint)", "DELETE", "/api/v1/categories/99999999999", ``, 404, "not_found", ""},
		{"product: empty name", "POST", "/api/v1/products", `{"name":"","price":"1.00"}`, 422, "invalid", "name"},
		{"product: name too long", "POST", "/api/v1/products", `{"name":"` + long + `","price":"1.00"}`, 422, "invalid", "name"},
		{"product: description too long", "POST", "/api/v1/products", `{"name":"a","price":"1","description":"` + strings.Repeat("d", 5001) + `"}`, 422, "invalid", "description"},
		{"product: missing price", "POST", "/api/v1/products", `{"name":"a"}`, 422, "invalid", "price"},
		{"product: negative price", "POST", "/api/v1/products", `{"name":"a","price":"-0.01"}`, 422, "invalid", "price"},
		{"product: three decimals", "POST", "/api/v1/products", `{"name":"a","price":"1.999"}`, 422, "invalid", "price"},
		{"product: float price", "POST", "/api/v1/products", `{"name":"a","price":1.005}`, 422, "invalid", "price"},
		{"product: price words", "POST", "/api/v1/products", `{"name":"a","price":"ten"}`, 422, "invalid", "price"},
		{"product: price exponent", "POST", "/api/v1/products", `{"name":"a","price":"1e3"}`, 422, "invalid", "price"},
		{"product: price null", "POST", "/api/v1/products", `{"name":"a","price":null}`, 422, "invalid", "price"},
		{"product: price with spaces", "POST", "/api/v1/products", `{"name":"a","price":" 1.00 "}`, 422, "invalid", "price"},
		{"product: price with plus sign", "POST", "/api/v1/products", `{"name":"a","price":"+5"}`, 422, "invalid", "price"},
		{"product: price negative zero", "POST", "/api/v1/products", `{"name":"a","price":"-0.00"}`, 422, "invalid", "price"},
		{"product: price negative zero number", "POST", "/api/v1/products", `{"name":"a","price":-0}`, 422, "invalid", "price"},
		{"product: patch price with plus sign", "PATCH", prod, `{"price":"+1.00"}`, 422, "invalid", "price"},
		{"category: patch of nulls only", "PATCH", catp, `{"name":null,"description":null}`, 422, "invalid", ""},
		{"product: price a boolean", "POST", "/api/v1/products", `{"name":"a","price":true}`, 400, "invalid", "price"},
		{"product: price an object", "POST", "/api/v1/products", `{"name":"a","price":{"amount":"1.00"}}`, 400, "invalid", "price"},
		{"product: patch price an array", "PATCH", prod, `{"price":["1.00"]}`, 400, "invalid", "price"},
		{"product: price too large", "POST", "/api/v1/products", `{"name":"a","price":"1000000000.00"}`, 422, "invalid", "price"},
		{"product: unknown category", "POST", "/api/v1/products", `{"name":"a","price":"1","category_id":999}`, 422, "invalid", "category_id"},
		{"product: negative category", "POST", "/api/v1/products", `{"name":"a","price":"1","category_id":-1}`, 422, "invalid", "category_id"},
		{"product: negative stock", "POST", "/api/v1/products", `{"name":"a","price":"1","stock":-1}`, 422, "invalid", "stock"},
		{"product: fractional stock", "POST", "/api/v1/products", `{"name":"a","price":"1","stock":1.5}`, 400, "invalid", "stock"},
		{"product: unknown field", "POST", "/api/v1/products", `{"name":"a","price":"1","sku":"x"}`, 400, "invalid", "sku"},
		{"product: empty body", "POST", "/api/v1/products", ``, 400, "invalid", ""},
		{"product: control character", "POST", "/api/v1/products", `{"name":"a\u0007b","price":"1"}`, 422, "invalid", "name"},
		{"product: empty patch", "PATCH", prod, `{}`, 422, "invalid", ""},
		{"product: patch bad price", "PATCH", prod, `{"price":"abc"}`, 422, "invalid", "price"},
		{"product: patch unknown category", "PATCH", prod, `{"category_id":12345}`, 422, "invalid", "category_id"},
		{"product: patch category as string", "PATCH", prod, `{"category_id":"x"}`, 400, "invalid", "category_id"},
		{"product: unknown id", "PATCH", "/api/v1/products/424242", `{"name":"x"}`, 404, "not_found", ""},
		{"stock: both", "POST", prod + "/stock", `{"delta":1,"quantity":2}`, 422, "invalid", ""},
		{"stock: neither", "POST", prod + "/stock", `{}`, 422, "invalid", ""},
		{"stock: below zero", "POST", prod + "/stock", `{"delta":-2}`, 409, "conflict", ""},
		{"stock: negative quantity", "POST", prod + "/stock", `{"quantity":-2}`, 422, "invalid", "quantity"},
		{"stock: too much", "POST", prod + "/stock", `{"quantity":1000000001}`, 422, "invalid", "quantity"},
		{"stock: delta overflowing", "POST", prod + "/stock", `{"delta":9223372036854775807}`, 422, "invalid", "delta"},
		{"stock: delta underflowing", "POST", prod + "/stock", `{"delta":-9223372036854775808}`, 422, "invalid", "delta"},
		{"stock: unknown product", "POST", "/api/v1/products/4242/stock", `{"delta":1}`, 404, "not_found", ""},
		{"product: id with plus sign", "PATCH", "/api/v1/products/+" + pid, `{"name":"x"}`, 400, "invalid", "id"},
		{"product: id with leading zero", "PATCH", "/api/v1/products/0" + pid, `{"name":"x"}`, 400, "invalid", "id"},
		{"product: id with leading space", "DELETE", "/api/v1/products/%20" + pid, ``, 400, "invalid", "id"},
		{"product: stock id with plus sign", "POST", "/api/v1/products/+" + pid + "/stock", `{"delta":1}`, 400, "invalid", "id"},
		{"product: read id with plus sign", "GET", "/api/v1/products/+" + pid, ``, 400, "invalid", "id"},
		{"product: read id with leading zero", "GET", "/api/v1/products/0" + pid, ``, 400, "invalid", "id"},
		{"product: read id with trailing space", "GET", "/api/v1/products/" + pid + "%20", ``, 400, "invalid", "id"},
		{"category: id with leading zero", "PATCH", "/api/v1/categories/0" + cid, `{"name":"x"}`, 400, "invalid", "id"},
		{"query: bad percent-encoding in cursor", "GET", "/api/v1/products?cursor=%%%garbage", ``, 400, "invalid", ""},
		{"query: bad percent-encoding in q", "GET", "/api/v1/products?q=%zz", ``, 400, "invalid", ""},
		{"query: bad percent-encoding on categories", "GET", "/api/v1/categories?cursor=%zz", ``, 400, "invalid", ""},
		{"query: semicolon separator", "GET", "/api/v1/products?limit=5;in_stock=true", ``, 400, "invalid", ""},
		{"query: a parameter twice", "GET", "/api/v1/products?limit=5&limit=50", ``, 400, "invalid", "limit"},
		{"query: a filter twice", "GET", "/api/v1/products?in_stock=true&sort=name&in_stock=false", ``, 400, "invalid", "in_stock"},
		{"query: bad percent-encoding on a command", "POST", "/api/v1/categories?x=%zz", `{"name":"Q"}`, 400, "invalid", ""},
		{"category: invalid UTF-8", "POST", "/api/v1/categories", "{\"name\":\"a\xff\xfeb\"}", 400, "invalid", ""},
		{"category: lone high surrogate", "POST", "/api/v1/categories", `{"name":"\ud800"}`, 400, "invalid", ""},
		{"category: lone low surrogate", "POST", "/api/v1/categories", `{"name":"x\udc00"}`, 400, "invalid", ""},
		{"category: miscased key", "POST", "/api/v1/categories", `{"NAME":"a"}`, 400, "invalid", "NAME"},
		{"category: duplicate key", "POST", "/api/v1/categories", `{"name":"a","name":"b"}`, 400, "invalid", "name"},
		{"category: patch miscased key", "PATCH", catp, `{"Name":"a"}`, 400, "invalid", "Name"},
		{"product: invalid UTF-8 description", "POST", "/api/v1/products", "{\"name\":\"a\",\"price\":\"1\",\"description\":\"\xff\"}", 400, "invalid", ""},
		{"product: lone surrogate in patch", "PATCH", prod, `{"description":"\udfff"}`, 400, "invalid", ""},
		{"product: miscased price", "POST", "/api/v1/products", `{"name":"a","Price":"1"}`, 400, "invalid", "Price"},
		{"product: duplicate price", "POST", "/api/v1/products", `{"name":"a","price":"1","price":"2"}`, 400, "invalid", "price"},
		{"product: patch duplicate category", "PATCH", prod, `{"category_id":null,"category_id":null}`, 400, "invalid", "category_id"},
		{"stock: miscased key", "POST", prod + "/stock", `{"Delta":1}`, 400, "invalid", "Delta"},
		{"stock: duplicate key", "POST", prod + "/stock", `{"delta":1,"delta":2}`, 400, "invalid", "delta"},
		{"category: name only a zero width space", "POST", "/api/v1/categories", `{"name":"\u200b"}`, 422, "invalid", "name"},
		{"category: name only invisible characters", "POST", "/api/v1/categories", `{"name":" \u200b\ufeff\u2060 "}`, 422, "invalid", "name"},
		{"category: name with right-to-left override", "POST", "/api/v1/categories", `{"name":"abc\u202eexe"}`, 422, "invalid", "name"},
		{"category: description with isolate", "POST", "/api/v1/categories", `{"name":"a","description":"x\u2066y"}`, 422, "invalid", "description"},
		{"category: patch name only BOM", "PATCH", catp, `{"name":"\ufeff"}`, 422, "invalid", "name"},
		{"product: name only a zero width space", "POST", "/api/v1/products", `{"name":" \u200b ","price":"1"}`, 422, "invalid", "name"},
		{"product: name with raw override", "POST", "/api/v1/products", "{\"name\":\"a\u202eb\",\"price\":\"1\"}", 422, "invalid", "name"},
		{"product: patch description with override", "PATCH", prod, `{"description":"\u202d"}`, 422, "invalid", "description"},
		{"product: description with a bell", "POST", "/api/v1/products", `{"name":"a","price":"1","description":"a\u0007b"}`, 422, "invalid", "description"},
		{"product: name with a carriage return", "POST", "/api/v1/products", `{"name":"a\r\nb","price":"1"}`, 422, "invalid", "name"},
		{"product: name with a line separator", "POST", "/api/v1/products", `{"name":"a\u2028b","price":"1"}`, 422, "invalid", "name"},
		{"body too large", "POST", "/api/v1/products", `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "invalid", ""},
	}
	before := h.head()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, tc.path, tc.body, "Authorization", "Bearer "+adminToken)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			var e errorBody
			r.json(t, &e)
			if e.Error.Code != tc.code || e.Error.Field != tc.field || e.Error.Message == "" {
				t.Fatalf("error = %+v, want code %q field %q", e.Error, tc.code, tc.field)
			}
			if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Fatalf("content type %q", r.header.Get("Content-Type"))
			}
		})
	}
	if after := h.head(); after != before {
		t.Fatalf("bad input appended events: head moved from %d to %d", before, after)
	}
}

func TestQueryParameterValidation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tests := []struct {
		query string
		field string
	}{
		{"limit=0", "limit"},
		{"limit=101", "limit"},
		{"limit=abc", "limit"},
		{"sort=cheapest", "sort"},
		{"min_price=abc", "min_price"},
		{"max_price=-1", "max_price"},
		{"min_price=%2B5", "min_price"},
		{"min_price=%201.00", "min_price"},
		{"max_price=-0.00", "max_price"},
		{"min_price=10&max_price=5", "min_price"},
		{"in_stock=maybe", "in_stock"},
		{"category_id=x", "category_id"},
		{"category_id=0", "category_id"},
		{"cursor=%21%21%21", "cursor"},
		{"q=" + strings.Repeat("a", 201), "q"},
		{"q=a%00b", "q"},
		{"q=%ff", "q"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := h.do("GET", "/api/v1/products?"+tc.query, "")
			var e errorBody
			r.json(t, &e)
			if r.status != 400 || e.Error.Field != tc.field {
				t.Fatalf("status %d error %+v, want 400 on %s", r.status, e.Error, tc.field)
			}
		})
	}
	// A cursor from one sort order is refused by another.
	for i := range 3 {
		h.admin("POST", "/api/v1/products", fmt.Sprintf(`{"name":"P%d","price":"%d.00"}`, i, i+1), 201)
	}
	var pg page[product]
	h.read("/api/v1/products?limit=1&sort=price", h.head()).json(t, &pg)
	if pg.NextCursor == "" {
		t.Fatal("no next cursor")
	}
	r := h.do("GET", "/api/v1/products?sort=name&cursor="+url.QueryEscape(pg.NextCursor), "")
	if r.status != 400 {
		t.Fatalf("foreign cursor: %d %s", r.status, r.body)
	}
	// Ids are int64 written canonically: a large one that names nothing is not found, one past
	// int64 cannot be read.
	for path, want := range map[string]int{"/api/v1/products/9223372036854775807": 404, "/api/v1/products/9223372036854775808": 400,
		"/api/v1/categories/2147483648": 404, "/api/v1/products?category_id=2147483648": 200} {
		if r := h.do("GET", path, ""); r.status != want {
			t.Errorf("GET %s: %d %s, want %d", path, r.status, r.body, want)
		}
	}
	for _, hdr := range []string{"abc", "-1", "999999"} {
		if r := h.do("GET", "/api/v1/products", "", "X-Min-Position", hdr); r.status != 400 {
			t.Fatalf("X-Min-Position %q: %d", hdr, r.status)
		}
	}
	if r := h.do("GET", "/api/v1/categories?limit=500", ""); r.status != 400 {
		t.Fatalf("categories limit: %d", r.status)
	}
}

func TestAdminAuth(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tests := []struct {
		name   string
		h      *harness
		header []string
		status int
		code   string
	}{
		{"no token", h, nil, 401, "unauthenticated"},
		{"wrong token", h, []string{"Authorization", "Bearer nope"}, 401, "unauthenticated"},
		{"not bearer", h, []string{"Authorization", "Basic " + adminToken}, 401, "unauthenticated"},
		{"empty bearer", h, []string{"Authorization", "Bearer "}, 401, "unauthenticated"},
		{"a customer", h, []string{"Authorization", "Bearer " + accessToken(7, "customer")}, 403, "forbidden"},
		{"an auditor", h, []string{"Authorization", "Bearer " + accessToken(8, "auditor")}, 403, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, route := range [][2]string{{"POST", "/api/v1/categories"}, {"GET", "/api/v1/admin/projections"}, {"DELETE", "/api/v1/products/1"}} {
				r := tc.h.do(route[0], route[1], `{"name":"x"}`, tc.header...)
				var e errorBody
				r.json(t, &e)
				if r.status != tc.status || e.Error.Code != tc.code {
					t.Fatalf("%s %s: %d %s", route[0], route[1], r.status, r.body)
				}
			}
		})
	}
	if h.head() != 0 {
		t.Fatal("refused requests appended events")
	}
}

func TestRequestIDs(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := h.do("GET", "/healthz", "", "X-Request-Id", "client-id-123")
	if r.header.Get("X-Request-Id") != "client-id-123" {
		t.Fatalf("request id not echoed: %q", r.header.Get("X-Request-Id"))
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 200)} {
		r := h.do("GET", "/api/v1/nothing-here", "", "X-Request-Id", bad)
		if id := r.header.Get("X-Request-Id"); id == "" || id == bad {
			t.Fatalf("request id for %q = %q", bad, id)
		}
		if r.status != 404 {
			t.Fatalf("unknown route: %d", r.status)
		}
	}
	if r := h.do("PUT", "/api/v1/products", ""); r.status != 405 {
		t.Fatalf("wrong method: %d %s", r.status, r.body)
	}
}

// Concurrent stock adjustments all apply: the command re-decides on a version clash.
func TestConcurrentStockAdjustments(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var p product
	h.admin("POST", "/api/v1/products", `{"name":"NVMe","price":"50","stock":0}`, 201).json(t, &p)
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.do("POST", fmt.Sprintf("/api/v1/products/%d/stock", p.ID), `{"delta":1}`, "Authorization", "Bearer "+adminToken)
			if r.status != 200 {
				t.Errorf("adjust: %d %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	var got product
	h.read(fmt.Sprintf("/api/v1/products/%d", p.ID), h.head()).json(t, &got)
	if got.Stock != n {
		t.Fatalf("stock = %d, want %d", got.Stock, n)
	}
}

// With Redis unreachable every query is answered from Postgres; when Redis comes back the
// product cards catch up and serve again.
func TestRedisDownAndBack(t *testing.T) {
	t.Run("dead address", func(t *testing.T) {
		dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
		t.Cleanup(func() { _ = dead.Close() })
		h := newHarness(t, harnessOpts{redis: dead, prefix: "dead:"})
		var p product
		h.admin("POST", "/api/v1/products", `{"name":"Keyboard","price":"99.00","stock":2}`, 201).json(t, &p)
		eventually(t, "product visible", func() bool {
			return h.do("GET", fmt.Sprintf("/api/v1/products/%d", p.ID), "").status == 200
		})
		r := h.do("GET", fmt.Sprintf("/api/v1/products/%d", p.ID), "")
		if r.header.Get("X-Read-Source") != "postgres" {
			t.Fatalf("read source %q", r.header.Get("X-Read-Source"))
		}
		for _, path := range []string{"/api/v1/products", "/api/v1/categories", "/api/v1/products?q=keyb"} {
			if r := h.do("GET", path, ""); r.status != 200 {
				t.Fatalf("GET %s with Redis down: %d %s", path, r.status, r.body)
			}
		}
		var ready struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		r = h.do("GET", "/readyz", "")
		r.json(t, &ready)
		if r.status != 200 || ready.Status != "degraded" || !strings.HasPrefix(ready.Checks["redis"], "down") ||
			ready.Checks["redis_view"] != "down" {
			t.Fatalf("readyz: %d %s", r.status, r.body)
		}
	})

	t.Run("redis returns", func(t *testing.T) {
		upstream, prefix := testdb.Redis(t)
		px := newProxy(t, upstream.Options().Addr)
		client := redis.NewClient(&redis.Options{Addr: px.addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = client.Close() })
		h := newHarness(t, harnessOpts{redis: client, prefix: prefix})
		var p product
		h.admin("POST", "/api/v1/products", `{"name":"Mouse","price":"49.00","stock":5}`, 201).json(t, &p)
		path := fmt.Sprintf("/api/v1/products/%d", p.ID)
		eventually(t, "card served from Redis", func() bool {
			return h.do("GET", path, "").header.Get("X-Read-Source") == "redis"
		})

		px.setUp(false)
		var changed product
		h.admin("PATCH", path, `{"price":"39.00"}`, 200).json(t, &changed)
		eventually(t, "fallback to Postgres with the new price", func() bool {
			r := h.do("GET", path, "")
			var got product
			r.json(t, &got)
			return r.status == 200 && got.Price == "39.00" && r.header.Get("X-Read-Source") == "postgres"
		})

		px.setUp(true)
		eventually(t, "card caught up in Redis", func() bool {
			r := h.do("GET", path, "")
			var got product
			r.json(t, &got)
			return r.header.Get("X-Read-Source") == "redis" && got.Price == "39.00"
		})
	})
}

func TestAdminProjections(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var p product
	h.admin("POST", "/api/v1/products", `{"name":"Router","price":"129.00","stock":4}`, 201).json(t, &p)
	type status struct {
		Name       string  `json:"name"`
		Position   int64   `json:"position"`
		LagEvents  int64   `json:"lag_events"`
		LagSeconds float64 `json:"lag_seconds"`
		Rebuilding bool    `json:"rebuilding"`
	}
	var st struct {
		Items []status `json:"items"`
	}
	eventually(t, "projectors caught up", func() bool {
		h.admin("GET", "/api/v1/admin/projections", "", 200).json(t, &st)
		for _, s := range st.Items {
			catalog := s.Name == catalogproj.CategoriesProjector || s.Name == catalogproj.ProductsProjector
			if s.LagEvents != 0 || (catalog && s.Position != p.Position) {
				return false
			}
		}
		return len(st.Items) == len(app.Projectors())
	})

	h.admin("POST", "/api/v1/admin/projections/nope/rebuild", "", 404)
	h.admin("POST", "/api/v1/admin/projections/products/rebuild", "", 202)
	eventually(t, "rebuild finished", func() bool {
		h.admin("GET", "/api/v1/admin/projections", "", 200).json(t, &st)
		for _, s := range st.Items {
			if s.Rebuilding {
				return false
			}
		}
		return true
	})
	// The rebuilt table serves the same product, and commands keep projecting into it.
	var got product
	h.read(fmt.Sprintf("/api/v1/products/%d", p.ID), p.Position).json(t, &got)
	if got.Name != "Router" || got.Stock != 4 {
		t.Fatalf("after rebuild: %+v", got)
	}
	h.admin("POST", fmt.Sprintf("/api/v1/products/%d/stock", p.ID), `{"delta":2}`, 200).json(t, &p)
	h.read(fmt.Sprintf("/api/v1/products/%d", p.ID), p.Position).json(t, &got)
	if got.Stock != 6 {
		t.Fatalf("after rebuild and adjust: %+v", got)
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, harnessOpts{cors: []string{"https://shop.example.com"}})
	r := h.do("OPTIONS", "/api/v1/products", "", "Origin", "https://shop.example.com", "Access-Control-Request-Method", "POST")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	r = h.do("GET", "/api/v1/products", "", "Origin", "https://shop.example.com")
	if r.status != 200 || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Fatalf("simple request: %d %v", r.status, r.header)
	}
	r = h.do("GET", "/api/v1/products", "", "Origin", "https://evil.example.com")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin allowed: %v", r.header)
	}
}
