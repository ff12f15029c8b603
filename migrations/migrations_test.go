package migrations_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/migrations"
)

// Several processes starting at once on an empty database apply each migration exactly once.
func TestConcurrentApply(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.NewEmpty(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- migrations.Apply(ctx, pool, log)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent apply: %v", err)
		}
	}
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(all) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(all))
	}
	for _, table := range []string{"events", "projector_offsets", "categories", "products"} {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
			t.Fatalf("table %s missing (%v)", table, err)
		}
	}
}

// Ids are bigint end to end: the sequences hand out ids past 2^31-1 and the read tables hold them.
func TestIDsAreBigint(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	for _, seq := range []string{"category_ids", "product_ids"} {
		var typ string
		if err := db.Pool.QueryRow(ctx, `SELECT data_type FROM information_schema.sequences
			WHERE sequence_name = $1`, seq).Scan(&typ); err != nil {
			t.Fatal(err)
		}
		if typ != "bigint" {
			t.Errorf("sequence %s is %s, want bigint", seq, typ)
		}
	}
	for _, col := range [][2]string{
		{"categories", "id"}, {"products", "id"}, {"products", "category_id"},
		{"products_deleted_categories", "category_id"},
	} {
		var typ string
		if err := db.Pool.QueryRow(ctx, `SELECT data_type FROM information_schema.columns
			WHERE table_name = $1 AND column_name = $2`, col[0], col[1]).Scan(&typ); err != nil {
			t.Fatal(err)
		}
		if typ != "bigint" {
			t.Errorf("%s.%s is %s, want bigint", col[0], col[1], typ)
		}
	}
	var id int64
	if _, err := db.Pool.Exec(ctx, `SELECT setval('product_ids', 2147483647)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT nextval('product_ids')`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 2147483648 {
		t.Fatalf("nextval past 2^31-1 = %d", id)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO categories (id, name, version) VALUES ($1, 'c', 1)`, id); err != nil {
		t.Fatalf("category id %d: %v", id, err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO products (id, name, category_id, version) VALUES ($1, 'p', $1, 1)`, id); err != nil {
		t.Fatalf("product id %d: %v", id, err)
	}
}
