// Package testdb gives integration tests their own freshly migrated database on the real
// PostgreSQL server (and a key prefix of their own on the real Redis), dropped when the test ends.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

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
	templateOnce sync.Once
	templateName string
	templateErr  error
)

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func withDB(raw, db string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	u.Path = "/" + db
	return u.String(), nil
}

func adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// migratedTemplate creates, once per test binary, a migrated database that test databases copy.
func migratedTemplate(ctx context.Context) (string, error) {
	templateOnce.Do(func() {
		templateName = "tv_tmpl_" + randomSuffix()
		if templateErr = adminExec(ctx, "CREATE DATABASE "+templateName); templateErr != nil {
			return
		}
		dsn, err := withDB(AdminURL(), templateName)
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
	_ = adminExec(ctx, "DROP DATABASE IF EXISTS "+templateName+" WITH (FORCE)")
}

// Main runs a package's tests and drops the template afterwards. Use as
// func TestMain(m *testing.M) { testdb.Main(m) }.
func Main(m *testing.M) {
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

// New creates a fresh, migrated database for the test and drops it when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tmpl, err := migratedTemplate(ctx)
	if err != nil {
		t.Fatalf("testdb: creating template database (is PostgreSQL running at %s?): %v", AdminURL(), err)
	}
	name := "tv_test_" + strings.ToLower(randomSuffix())
	if err := adminExec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); err != nil {
		t.Fatalf("testdb: creating database: %v", err)
	}
	dsn, err := withDB(AdminURL(), name)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	cfg.MaxConns = 40
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testdb: connecting: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testdb: dropping %s: %v", name, err)
		}
	})
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
	prefix := "tvtest:" + randomSuffix() + ":"
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
