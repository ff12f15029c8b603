package http_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/internal/testdb"
)

// Issue 11 item 3: the database's connections are terminated again and again under command and
// query load. No answer may be a 5xx other than 503, every acknowledged command must be in the log, and a
// client that repeats a 503 with its Idempotency-Key gets its write applied exactly once.
func TestConnectionLossIsA503(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	const writers = 8
	products := make([]product, writers)
	for i := range products {
		h.admin("POST", "/api/v1/products", fmt.Sprintf(`{"name":"Stock %d","price":"1.00"}`, i), 201).json(t, &products[i])
	}

	// The killer: terminate every other connection to the test database, every 200 ms.
	admin, err := pgx.Connect(ctx, testdb.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	stop := make(chan struct{})
	var (
		killed  atomic.Int64
		killErr error
		kwg     sync.WaitGroup
	)
	kwg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			var n int64
			if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = $1 AND pid <> pg_backend_pid()`, h.db.Name).Scan(&n); err != nil {
				killErr = err
				return
			}
			killed.Add(n)
		}
	})

	type ack struct {
		stream, eventType string
		position          int64
	}
	var (
		mu       sync.Mutex
		acks     []ack
		statuses = map[int]int{}
		keyed    []string // keys whose command was finally acknowledged
	)
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				var (
					method, path, body, want string
					stream                   string
				)
				if i%2 == 0 {
					method, path, want = "POST", "/api/v1/products", "ProductCreated"
					body = fmt.Sprintf(`{"name":"Load %d-%d","price":"2.00"}`, w, i)
				} else {
					method, path, want = "POST", fmt.Sprintf("/api/v1/products/%d/stock", products[w].ID), "ProductStockAdjusted"
					body, stream = `{"delta":1}`, fmt.Sprintf("product-%d", products[w].ID)
				}
				key := ""
				if i%4 >= 2 {
					key = fmt.Sprintf("load-%d-%d", w, i)
				}
				for attempt := 0; ; attempt++ {
					headers := []string{"Authorization", "Bearer " + adminToken}
					if key != "" {
						headers = append(headers, "Idempotency-Key", key, "X-Correlation-Id", key)
					}
					r := h.do(method, path, body, headers...)
					mu.Lock()
					statuses[r.status]++
					mu.Unlock()
					if r.status == 503 && r.header.Get("Retry-After") == "" {
						t.Errorf("503 without Retry-After")
					}
					if r.status == 200 || r.status == 201 {
						var p product
						r.json(t, &p)
						s := stream
						if s == "" {
							s = fmt.Sprintf("product-%d", p.ID)
						}
						mu.Lock()
						acks = append(acks, ack{s, want, p.Position})
						if key != "" {
							keyed = append(keyed, key)
						}
						mu.Unlock()
					}
					// A client with a key repeats a 503 until it has an answer.
					if r.status != 503 || key == "" || attempt == 20 {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	// Readers query meanwhile: lists and the read-your-writes path read Postgres directly.
	reads := []struct{ path, minPosition string }{
		{"/api/v1/products?limit=5", ""}, {"/api/v1/categories", ""},
		{fmt.Sprintf("/api/v1/products/%d", products[0].ID), "1"}, {"/api/v1/admin/projections", ""},
	}
	for r := range 4 {
		wg.Go(func() {
			for i := r; time.Now().Before(deadline); i++ {
				q := reads[i%len(reads)]
				headers := []string{"Authorization", "Bearer " + adminToken}
				if q.minPosition != "" {
					headers = append(headers, "X-Min-Position", q.minPosition)
				}
				res := h.do("GET", q.path, "", headers...)
				mu.Lock()
				statuses[res.status]++
				mu.Unlock()
				if res.status == 503 && res.header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After on GET %s", q.path)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	kwg.Wait()
	if killErr != nil {
		t.Fatal(killErr)
	}
	// The pool may still hold connections killed last: the checks below need live ones.
	h.db.Pool.Reset()
	t.Logf("statuses %v; %d connections terminated", statuses, killed.Load())
	for status, n := range statuses {
		if status >= 500 && status != 503 {
			t.Errorf("%d answers with status %d", n, status)
		}
	}
	if killed.Load() == 0 {
		t.Fatal("no connection was terminated: the test proved nothing")
	}

	// Every acknowledged command is in the log, where its answer said.
	for _, a := range acks {
		var stream, typ string
		err := h.db.Pool.QueryRow(ctx, `SELECT stream_id, event_type FROM events WHERE "offset" = $1`, a.position).Scan(&stream, &typ)
		if err != nil || stream != a.stream || typ != a.eventType {
			t.Errorf("acknowledged %s on %s at %d; the log has %q on %q (%v)", a.eventType, a.stream, a.position, typ, stream, err)
		}
	}
	// A keyed command repeated through 503s was applied exactly once.
	for _, k := range keyed {
		var n int
		if err := h.db.Pool.QueryRow(ctx, `SELECT count(*) FROM events
			WHERE metadata->>'correlation_id' = $1 AND stream_type = 'product'`, k).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("key %s: %d product events, want 1", k, n)
		}
	}
	if len(acks) == 0 {
		t.Fatal("no command was acknowledged")
	}
}
