package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
)

// server is a `techvault serve` child process of the test binary.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
}

func startServer(t *testing.T, env []string, addr string) *server {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "TECHVAULT_TEST_CHILD=serve", "HTTP_ADDR="+addr)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, base: "http://" + addr}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := nethttp.Get(s.base + "/readyz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v %s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill9 kills the server at once: no shutdown, no flush.
func (s *server) kill9() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
}

// post sends a JSON command; status 0 means the request got no answer.
func post(base, token, path, key string, body any) (int, []byte) {
	b, _ := json.Marshal(body)
	req, _ := nethttp.NewRequest("POST", base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	client := &nethttp.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// kill -9 of the server during a checkout burst: every acknowledged order is in the log once, no
// stock or promo use is lost or doubled, and the read tables equal a rebuild.
func TestCheckoutBurstSurvivesKill9(t *testing.T) {
	db := testdb.New(t)
	secret := "crash-test-secret-crash-test-secret-crash"
	env := []string{"DATABASE_URL=" + db.URL, "REDIS_URL=" + testdb.RedisURL(), "TECHVAULT_SECRET=" + secret,
		"LOG_FORMAT=json", "LOG_LEVEL=error"}
	tokens, err := app.NewTokens([]byte(secret), time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	token := func(id int64, role string) string {
		tok, _, err := tokens.IssueAccess(auth.AccessClaims{UserID: id, Role: role, Session: "00000000-0000-7000-8000-000000000001"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	addr := freeAddr(t)
	srv := startServer(t, env, addr)
	admin := token(1_000_000, "admin")
	const stock, uses = 1000, 40
	var product struct{ ID int64 }
	if st, b := post(srv.base, admin, "/api/v1/products", "", map[string]any{"name": "Burst SSD", "price": "50.00", "stock": stock}); st != 201 {
		t.Fatalf("product: %d %s", st, b)
	} else if err := json.Unmarshal(b, &product); err != nil {
		t.Fatal(err)
	}
	if st, b := post(srv.base, admin, "/api/v1/promo-codes", "", map[string]any{"code": "BURST", "kind": "percent", "discount": 10, "usage_limit": uses}); st != 201 {
		t.Fatalf("promo: %d %s", st, b)
	}
	type shopper struct {
		token string
		addr  int64
	}
	const clients = 8 // within the registration limit (10 an hour per address)
	shoppers := make([]shopper, clients)
	for i := range shoppers {
		if st, b := post(srv.base, "", "/api/v1/auth/register", "", map[string]any{"first_name": "Burst", "last_name": fmt.Sprint("Shopper", i),
			"email": fmt.Sprintf("burst%d@example.com", i), "password": "burst passphrase 1"}); st != 201 {
			t.Fatalf("register: %d %s", st, b)
		}
		st, b := post(srv.base, "", "/api/v1/auth/login", "", map[string]any{"email": fmt.Sprintf("burst%d@example.com", i), "password": "burst passphrase 1"})
		var s struct {
			AccessToken string `json:"access_token"`
		}
		if st != 200 || json.Unmarshal(b, &s) != nil {
			t.Fatalf("login: %d %s", st, b)
		}
		var a struct{ ID int64 }
		if st, b := post(srv.base, s.AccessToken, "/api/v1/users/me/addresses", "", map[string]any{"city": "Oslo", "post_code": "0150", "country": "NO"}); st != 201 {
			t.Fatalf("address: %d %s", st, b)
		} else if err := json.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		shoppers[i] = shopper{s.AccessToken, a.ID}
	}

	// The burst: each client checks out again and again, each order under its own key; the
	// server is killed mid-burst and restarted; a request that got no answer is repeated with its
	// key until it gets one.
	var (
		acknowledged sync.Map // key → order id
		killed       atomic.Bool
		wg           sync.WaitGroup
	)
	base := atomic.Pointer[string]{}
	base.Store(&srv.base)
	for i, s := range shoppers {
		wg.Go(func() {
			for n := 0; n < 8; n++ {
				key := fmt.Sprintf("order-%d-%d", i, n)
				steps := []struct {
					path string
					body any
				}{
					{"/api/v1/cart/items", map[string]any{"product_id": product.ID, "quantity": 1 + n%3}},
					{"/api/v1/cart/promo", map[string]any{"code": "burst"}},
					{"/api/v1/orders", map[string]any{"address_id": s.addr}},
				}
				for j, step := range steps {
					stepKey := fmt.Sprintf("%s-step-%d", key, j)
					for attempt := 0; ; attempt++ {
						st, b := post(*base.Load(), s.token, step.path, stepKey, step.body)
						if st == 0 || st == 503 {
							time.Sleep(50 * time.Millisecond) // no answer: the server is down; repeat
							if attempt > 400 {
								t.Errorf("%s: no answer for 20 s", stepKey)
								return
							}
							continue
						}
						if step.path == "/api/v1/orders" && st == 201 {
							var placed struct {
								Order struct{ ID int64 } `json:"order"`
							}
							if err := json.Unmarshal(b, &placed); err != nil {
								t.Errorf("%s: %v", stepKey, err)
							}
							acknowledged.Store(key, placed.Order.ID)
						}
						break // 4xx answers (a used-up code, a promo already on the cart) are fine
					}
				}
			}
		})
	}
	// Kill as soon as a few orders are acknowledged (a fixed delay let a fast machine finish the
	// whole burst first).
	count := func() (n int) {
		acknowledged.Range(func(any, any) bool { n++; return true })
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); count() < 3 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	before := count()
	srv.kill9()
	killed.Store(true)
	srv = startServer(t, env, addr)
	wg.Wait()

	ctx := context.Background()
	pool := db.Pool
	var placed, distinct int
	acked := map[int64]bool{}
	acknowledged.Range(func(_, v any) bool { acked[v.(int64)] = true; return true })
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT payload->>'order_id') FROM events WHERE event_type = 'OrderPlaced'`).Scan(&placed, &distinct); err != nil {
		t.Fatal(err)
	}
	if placed != distinct || placed != len(acked) {
		t.Fatalf("%d OrderPlaced events (%d distinct) for %d acknowledged orders", placed, distinct, len(acked))
	}
	// Stock and promo uses add up with the orders in the log.
	var reserved, lastStock, used, discounted int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum((payload->>'quantity')::bigint), 0) FROM events WHERE event_type = 'ProductStockReserved'`).Scan(&reserved); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT (payload->>'stock')::bigint FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1`,
		fmt.Sprintf("product-%d", product.ID)).Scan(&lastStock); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_type = 'PromoUsed'),
		(SELECT count(*) FROM events WHERE event_type = 'OrderPlaced' AND (payload->>'discount') <> '0.00') FROM events`).Scan(&used, &discounted); err != nil {
		t.Fatal(err)
	}
	if lastStock != stock-reserved || used != discounted || used > uses {
		t.Fatalf("stock %d after reserving %d of %d; %d promo uses for %d discounted orders (limit %d)", lastStock, reserved, stock, used, discounted, uses)
	}
	if !killed.Load() || before == 0 || placed <= before {
		t.Fatalf("the kill did not land mid-burst: %d orders acknowledged before it, %d in all", before, placed)
	}
	t.Logf("%d orders acknowledged before the kill, %d in all; %d units reserved, %d discounted", before, placed, reserved, discounted)
	srv.kill9()
	requireTablesEqualRebuild(t, pool)
}

// requireTablesEqualRebuild waits for the projectors to catch up, snapshots every read table,
// rebuilds every projector and compares.
func requireTablesEqualRebuild(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	log := quietLogger()
	a, err := app.New(ctx, app.Config{Pool: pool, RedisURL: testdb.RedisURL(), Secret: []byte("crash-test-secret-crash-test-secret-crash")}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range app.Projectors() {
		names = append(names, p.Name())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := a.Checkpoints.Status(ctx, names...)
		if err != nil {
			t.Fatal(err)
		}
		behind := false
		for _, s := range st {
			behind = behind || s.LagEvents > 0
		}
		if !behind {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("projectors did not catch up: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = a.Close()
	for _, p := range app.Projectors() {
		before := tableRows(t, pool, p.Tables())
		if _, err := projections.Rebuild(ctx, pool, p, log); err != nil {
			t.Fatalf("rebuilding %s: %v", p.Name(), err)
		}
		if after := tableRows(t, pool, p.Tables()); after != before {
			t.Fatalf("%s: the live tables differ from a rebuild", p.Name())
		}
	}
}

func tableRows(t *testing.T, pool *pgxpool.Pool, tables []string) string {
	t.Helper()
	var all bytes.Buffer
	for _, tb := range tables {
		var rows string
		if err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(r, E'\n' ORDER BY r), '') FROM (SELECT to_jsonb(x)::text AS r FROM `+tb+` x) s`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		all.WriteString(tb + "\n" + rows + "\n")
	}
	return all.String()
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
