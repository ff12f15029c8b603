package http_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/techvault/techvault/commands"
)

// keyed runs an admin command with an Idempotency-Key.
func (h *harness) keyed(method, path, body, key string) response {
	h.t.Helper()
	return h.do(method, path, body, "Authorization", "Bearer "+adminToken, "Idempotency-Key", key)
}

// countEvents counts the events of a type in the log.
func (h *harness) countEvents(eventType string) int {
	h.t.Helper()
	var n int
	if err := h.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = $1`, eventType).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// stockOf is the product's stock according to its stream (a command that changes nothing answers
// with the current state).
func (h *harness) stockOf(id int64) int64 {
	h.t.Helper()
	var p product
	h.admin("POST", fmt.Sprintf("/api/v1/products/%d/stock", id), `{"delta":0}`, 200).json(h.t, &p)
	return p.Stock
}

func sameAnswer(t *testing.T, a, b response) {
	t.Helper()
	if a.status != b.status || string(a.body) != string(b.body) || a.header.Get("Location") != b.header.Get("Location") {
		t.Fatalf("answers differ:\n%d %s %s\n%d %s %s", a.status, a.header.Get("Location"), a.body,
			b.status, b.header.Get("Location"), b.body)
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var p product
	h.admin("POST", "/api/v1/products", `{"name":"SSD","price":"50.00","stock":8}`, 201).json(t, &p)
	stock := fmt.Sprintf("/api/v1/products/%d/stock", p.ID)

	t.Run("a repeated stock delta applies once", func(t *testing.T) {
		first := h.keyed("POST", stock, `{"delta":1}`, "stock-1")
		second := h.keyed("POST", stock, `{ "delta" : 1 }`, "stock-1")
		if first.status != 200 {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		sameAnswer(t, first, second)
		if got := h.stockOf(p.ID); got != 9 {
			t.Fatalf("stock = %d, want 9", got)
		}
	})

	t.Run("a repeated create makes one product", func(t *testing.T) {
		before := h.countEvents("ProductCreated")
		body := `{"name":"NVMe","price":"80.00","stock":1}`
		first := h.keyed("POST", "/api/v1/products", body, "create-1")
		second := h.keyed("POST", "/api/v1/products", body, "create-1")
		if first.status != 201 {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		sameAnswer(t, first, second)
		if got := h.countEvents("ProductCreated") - before; got != 1 {
			t.Fatalf("%d products created, want 1", got)
		}
	})

	t.Run("a repeated delete answers as the first time", func(t *testing.T) {
		var q product
		h.admin("POST", "/api/v1/products", `{"name":"HDD","price":"40.00"}`, 201).json(t, &q)
		path := fmt.Sprintf("/api/v1/products/%d", q.ID)
		first := h.keyed("DELETE", path, "", "delete-1")
		if first.status != 200 {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		sameAnswer(t, first, h.keyed("DELETE", path, "", "delete-1"))
		if r := h.keyed("DELETE", path, "", "delete-2"); r.status != 404 {
			t.Fatalf("a new key deletes again: %d %s", r.status, r.body)
		}
	})

	t.Run("the same key with another request is a conflict", func(t *testing.T) {
		before := h.head()
		for _, req := range []struct{ method, path, body string }{
			{"POST", stock, `{"delta":2}`},
			{"POST", "/api/v1/products", `{"name":"SSD","price":"50.00","stock":8}`},
			{"PATCH", fmt.Sprintf("/api/v1/products/%d", p.ID), `{"name":"Renamed"}`},
		} {
			r := h.keyed(req.method, req.path, req.body, "stock-1")
			var e errorBody
			r.json(t, &e)
			if r.status != 409 || e.Error.Code != "conflict" || !strings.Contains(e.Error.Message, "Idempotency-Key") {
				t.Fatalf("%s %s: %d %s", req.method, req.path, r.status, r.body)
			}
		}
		if h.head() != before {
			t.Fatal("a refused key appended events")
		}
	})

	t.Run("bad keys are 400 and append nothing", func(t *testing.T) {
		before := h.head()
		for name, key := range map[string]string{
			"too long":  strings.Repeat("k", 256),
			"not ASCII": "clé",
			"empty":     "",
		} {
			r := h.keyed("POST", stock, `{"delta":1}`, key)
			var e errorBody
			r.json(t, &e)
			if r.status != 400 || e.Error.Field != "Idempotency-Key" {
				t.Fatalf("%s: %d %s", name, r.status, r.body)
			}
		}
		if h.head() != before {
			t.Fatal("a bad key appended events")
		}
	})

	t.Run("concurrent duplicates have one effect", func(t *testing.T) {
		start := h.stockOf(p.ID)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			answers []response
		)
		for range 20 {
			wg.Go(func() {
				r := h.keyed("POST", stock, `{"delta":1}`, "concurrent-1")
				mu.Lock()
				answers = append(answers, r)
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, a := range answers {
			if a.status != 200 {
				t.Fatalf("answer %d %s", a.status, a.body)
			}
			sameAnswer(t, answers[0], a)
		}
		if got := h.stockOf(p.ID); got != start+1 {
			t.Fatalf("stock = %d, want %d", got, start+1)
		}
	})

	t.Run("an expired key runs again", func(t *testing.T) {
		start := h.stockOf(p.ID)
		first := h.keyed("POST", stock, `{"delta":1}`, "expiring")
		if _, err := h.db.Pool.Exec(context.Background(),
			`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'expiring'`); err != nil {
			t.Fatal(err)
		}
		second := h.keyed("POST", stock, `{"delta":1}`, "expiring")
		if first.status != 200 || second.status != 200 || string(first.body) == string(second.body) {
			t.Fatalf("answers: %d %s / %d %s", first.status, first.body, second.status, second.body)
		}
		if got := h.stockOf(p.ID); got != start+2 {
			t.Fatalf("stock = %d, want %d", got, start+2)
		}
		if _, err := h.db.Pool.Exec(context.Background(),
			`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'stock-1'`); err != nil {
			t.Fatal(err)
		}
		n, err := commands.DeleteExpiredIdempotencyKeys(context.Background(), h.store)
		if err != nil || n != 1 {
			t.Fatalf("cleanup deleted %d (%v), want 1", n, err)
		}
	})
}

// A command that takes no body refuses one (as an unknown field of a command with a body is
// refused) and appends nothing; an empty body or an empty object goes.
func TestBodilessCommandsRefuseABody(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var cat struct {
		ID int64 `json:"id"`
	}
	h.admin("POST", "/api/v1/categories", `{"name":"Scanners"}`, 201).json(t, &cat)
	customer := []string{"Authorization", "Bearer " + accessToken(5, "customer")}
	admin := []string{"Authorization", "Bearer " + adminToken}
	before := h.head()
	for _, tc := range []struct {
		method, path, body string
		headers            []string
	}{
		{"DELETE", fmt.Sprintf("/api/v1/categories/%d", cat.ID), `{"x":1}`, admin},
		{"DELETE", "/api/v1/cart", `{"x":1}`, customer},
		{"DELETE", "/api/v1/cart", `[]`, customer},
		{"POST", "/api/v1/orders/1/payment", `{"x":1}`, customer},
		{"POST", "/api/v1/orders/1/ship", `null`, admin},
		{"POST", "/api/v1/auth/logout", `"bye"`, customer},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			checkBad(t, h.do(tc.method, tc.path, tc.body, tc.headers...), 400, "invalid", "", "takes no body")
		})
	}
	if h.head() != before {
		t.Fatal("a refused body appended events")
	}
	h.admin("DELETE", fmt.Sprintf("/api/v1/categories/%d", cat.ID), " {} ", 200)
}
