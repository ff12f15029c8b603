// Package testdb gives integration tests their own freshly migrated database on the real
// PostgreSQL server (and a key prefix of their own on the real Redis), dropped when the test ends.
package testdb

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/internal/pgadmin"
	"github.com/techvault/techvault/migrations"
)

// AdminURL is the server connection used to create and drop test databases.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL is the Redis used by tests.
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

var (
	inMain       atomic.Bool // Main runs the tests: the template is dropped after them
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// migratedTemplate creates, once per test binary, a migrated database that test databases copy.
func migratedTemplate(ctx context.Context) (string, error) {
	templateOnce.Do(func() {
		templateName = pgadmin.UniqueName("tv_tmpl_")
		dsn, err := pgadmin.Create(ctx, AdminURL(), templateName, "")
		if err != nil {
			templateErr = err
			return
		}
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			templateErr = err
			return
		}
		templateErr = migrations.Apply(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
		pool.Close()
	})
	return templateName, templateErr
}

// DropTemplate removes the template database; call it from TestMain after m.Run.
func DropTemplate() {
	if templateName == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = pgadmin.Drop(ctx, AdminURL(), templateName)
}

// Main runs a package's tests and drops the template afterwards. Use as
// func TestMain(m *testing.M) { testdb.Main(m) }.
func Main(m *testing.M) {
	inMain.Store(true)
	code := m.Run()
	DropTemplate()
	os.Exit(code)
}

// DB is a fresh database for one test.
type DB struct {
	Name string
	URL  string
	Pool *pgxpool.Pool
}

// create makes a database copied from template ("" for an empty one) that is dropped when the
// test ends, and returns its name and URL.
func create(ctx context.Context, t testing.TB, prefix, template string) (string, string) {
	t.Helper()
	name := pgadmin.UniqueName(prefix)
	dsn, err := pgadmin.Create(ctx, AdminURL(), name, template)
	if err != nil {
		t.Fatalf("testdb: %v (is PostgreSQL running at %s?)", err, AdminURL())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pgadmin.Drop(ctx, AdminURL(), name); err != nil {
			t.Logf("testdb: %v", err)
		}
	})
	return name, dsn
}

// NewEmpty creates an empty, unmigrated database for the test (dropped when it ends) and
// returns its URL.
func NewEmpty(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, dsn := create(ctx, t, "tv_empty_", "")
	return dsn
}

// New creates a fresh, migrated database for the test and drops it when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	if !inMain.Load() {
		t.Fatal("testdb: the package's tests must run under testdb.Main (func TestMain(m *testing.M) { testdb.Main(m) }), or its template database outlives them")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tmpl, err := migratedTemplate(ctx)
	if err != nil {
		t.Fatalf("testdb: creating template database (is PostgreSQL running at %s?): %v", AdminURL(), err)
	}
	name, dsn := create(ctx, t, "tv_test_", tmpl)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	cfg.MaxConns = 40
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testdb: connecting: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the drop registered by create
	return &DB{Name: name, URL: dsn, Pool: pool}
}

// Redis returns a client on the test Redis and a key prefix private to this test; keys under the
// prefix are deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("testdb: redis url: %v", err)
	}
	client := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("testdb: Redis is not reachable at %s: %v", RedisURL(), err)
	}
	prefix := pgadmin.UniqueName("tvtest:") + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		_ = client.Close()
	})
	return client, prefix
}
