package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/testdb"
)

func TestMain(m *testing.M) {
	// The crash test runs the server as a child process of the test binary, to kill it with
	// SIGKILL: the child runs `serve` with the environment it was given, and nothing else.
	if os.Getenv("TECHVAULT_TEST_CHILD") == "serve" {
		if err := run(context.Background(), []string{"serve"}, os.Getenv, io.Discard); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testdb.Main(m)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The binary end to end, as `make run` uses it: seed (twice), serve, list the demo catalog, run a
// command as admin, read it back, then shut down gracefully on cancellation.
func TestSeedServeAndShutdown(t *testing.T) {
	db := testdb.New(t)
	addr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL": db.URL, "REDIS_URL": testdb.RedisURL(), "HTTP_ADDR": addr,
		"TECHVAULT_SECRET": "serve-test-secret-serve-test-secret", "LOG_FORMAT": "json", "LOG_LEVEL": "error",
	}
	getenv := func(k string) string { return env[k] }

	for i, want := range []string{"seeded the demo catalog", "already seeded"} {
		var out strings.Builder
		if err := run(t.Context(), []string{"seed"}, getenv, &out); err != nil {
			t.Fatalf("seed %d: %v", i+1, err)
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("seed %d printed %q, want %q", i+1, out.String(), want)
		}
	}

	// An operator rebuilds every projection from the command line; a name given
	// twice or unknown is refused before anything is rebuilt.
	var rebuilt strings.Builder
	if err := run(t.Context(), []string{"projections", "rebuild", "all"}, getenv, &rebuilt); err != nil {
		t.Fatalf("projections rebuild all: %v: %s", err, rebuilt.String())
	}
	for _, p := range app.Projectors() {
		if !strings.Contains(rebuilt.String(), "rebuilt "+p.Name()+":") {
			t.Fatalf("projections rebuild all printed %q, nothing for %s", rebuilt.String(), p.Name())
		}
	}
	for _, args := range [][]string{{"products", "products"}, {"products", "nope"}} {
		var out strings.Builder
		if err := run(t.Context(), append([]string{"projections", "rebuild"}, args...), getenv, &out); err == nil || out.Len() > 0 {
			t.Fatalf("projections rebuild %v: %v, printed %q; want an error and nothing rebuilt", args, err, out.String())
		}
	}

	var sealed strings.Builder
	if err := run(t.Context(), []string{"events", "seal"}, getenv, &sealed); err != nil ||
		!strings.Contains(sealed.String(), "seal") {
		t.Fatalf("events seal: %v: %s", err, sealed.String())
	}

	var verified strings.Builder
	if err := run(t.Context(), []string{"events", "verify"}, getenv, &verified); err != nil ||
		!strings.Contains(verified.String(), "0 problems") {
		t.Fatalf("events verify: %v: %s", err, verified.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, getenv, io.Discard) }()

	base := "http://" + addr
	get := func(path string, header ...string) (int, []byte) {
		t.Helper()
		req, _ := nethttp.NewRequest("GET", base+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	wantProducts := 0
	for _, c := range commands.DemoCatalog {
		wantProducts += len(c.Products)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := get("/api/v1/products?limit=100")
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if status == 200 && json.Unmarshal(body, &page) == nil && len(page.Items) == wantProducts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo catalog not listed: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The README's way to an admin: register, promote from the command line, sign in.
	post := func(path, body, token string) (int, []byte) {
		t.Helper()
		req, _ := nethttp.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	if status, body := post("/api/v1/auth/register", `{"first_name":"Olga","last_name":"Operator","email":"ops@example.com","password":"operator passphrase"}`, ""); status != 201 {
		t.Fatalf("register: %d %s", status, body)
	}
	var promoted strings.Builder
	if err := run(t.Context(), []string{"users", "promote", "ops@example.com", "admin"}, getenv, &promoted); err != nil ||
		!strings.Contains(promoted.String(), "is now admin") {
		t.Fatalf("users promote: %v: %s", err, promoted.String())
	}
	status, body := post("/api/v1/auth/login", `{"email":"ops@example.com","password":"operator passphrase"}`, "")
	var session struct {
		AccessToken string `json:"access_token"`
		User        struct {
			Role string `json:"role"`
		} `json:"user"`
	}
	if status != 200 || json.Unmarshal(body, &session) != nil || session.User.Role != "admin" {
		t.Fatalf("login as the promoted admin: %d %s", status, body)
	}
	req, _ := nethttp.NewRequest("POST", base+"/api/v1/categories", strings.NewReader(`{"name":"Networking"}`))
	req.Header.Set("Authorization", "Bearer "+session.AccessToken)
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		ID       int64 `json:"id"`
		Position int64 `json:"position"`
	}
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil || res.StatusCode != 201 {
		t.Fatalf("create category: %d %v", res.StatusCode, err)
	}
	res.Body.Close()
	status, body = get(fmt.Sprintf("/api/v1/categories/%d", created.ID), "X-Min-Position", fmt.Sprint(created.Position))
	if status != 200 || !strings.Contains(string(body), "Networking") {
		t.Fatalf("read back: %d %s", status, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if status, _ := get("/healthz"); status != 0 {
		t.Fatalf("still serving after shutdown: %d", status)
	}
}
