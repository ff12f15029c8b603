package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A pool and a Redis client given in the config belong to the caller: Close leaves them open,
// whether or not the application was started.
func TestCloseLeavesGivenPoolAndRedisOpen(t *testing.T) {
	for _, start := range []bool{false, true} {
		t.Run(map[bool]string{false: "never started", true: "started"}[start], func(t *testing.T) {
			db := testdb.New(t)
			rdb, prefix := testdb.Redis(t)
			a, err := app.New(t.Context(), app.Config{Pool: db.Pool, Redis: rdb, RedisPrefix: prefix, Secret: testSecret}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			if start {
				if err := a.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(a.Handler())
				res, err := http.Get(srv.URL + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				_ = res.Body.Close()
				srv.Close()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("healthz: %d", res.StatusCode)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil { // a second Close does nothing
				t.Fatal(err)
			}
			if err := db.Pool.Ping(context.Background()); err != nil {
				t.Fatalf("the given pool was closed: %v", err)
			}
			if err := rdb.Ping(context.Background()).Err(); err != nil {
				t.Fatalf("the given Redis client was closed: %v", err)
			}
		})
	}
}

var testSecret = []byte("app-test-secret-app-test-secret-app-test")

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  app.Config
	}{
		{"no database", app.Config{RedisURL: "redis://127.0.0.1:6379/0", Secret: testSecret}},
		{"no redis", app.Config{DatabaseURL: "postgres://127.0.0.1/x", Secret: testSecret}},
		{"no secret", app.Config{DatabaseURL: "postgres://127.0.0.1/x", RedisURL: "redis://127.0.0.1:6379/0"}},
		{"short secret", app.Config{DatabaseURL: "postgres://127.0.0.1/x", RedisURL: "redis://127.0.0.1:6379/0", Secret: []byte("short")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err == nil {
				t.Fatal("Validate accepted it")
			}
			if _, err := app.New(t.Context(), tt.cfg, quiet()); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}
