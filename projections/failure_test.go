package projections_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
)

// picky records the position of every product event in picky_seen. The table refuses one
// position (a CHECK constraint the test drops later), standing in for an event a projector cannot
// apply until the code or the data is fixed.
type picky struct{}

func (picky) Name() string          { return "picky" }
func (picky) Tables() []string      { return []string{"picky_seen"} }
func (picky) StreamTypes() []string { return []string{"product"} }
func (picky) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	positions := make([]int64, 0, len(batch))
	for _, e := range batch {
		positions = append(positions, e.Position)
	}
	return []projections.Stmt{{SQL: t.Sub(`INSERT INTO {picky_seen} (position) SELECT unnest($1::bigint[])
		ON CONFLICT DO NOTHING`), Args: []any{positions}}}, nil
}

// A projector that fails on one event stops there: the status names the event and the error,
// nothing after it is applied, the other projectors keep going, and once the cause is gone the
// event is applied (not skipped) and the failure is cleared.
func TestFailingProjectorRetriesWithoutSkipping(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	products := projtest.BulkProducts(t, e, 5, 0)
	var first int64
	for _, p := range products {
		first = max(first, p.Position)
	}
	poison := first + 3 // the third stock adjustment below
	if _, err := e.Pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE picky_seen (position bigint PRIMARY KEY
		CONSTRAINT picky_refuses CHECK (position <> %d))`, poison)); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for id := range products {
		ids = append(ids, id)
	}

	sqlDB := stdlib.OpenDBFromPool(e.Pool)
	t.Cleanup(func() { _ = sqlDB.Close() })
	eng, err := projections.NewEngine(projections.EngineConfig{
		DB: sqlDB, Logger: e.Log, BatchSize: 50, RetryInterval: 20 * time.Millisecond, MaxRetryInterval: 100 * time.Millisecond,
		Projectors: append(catalogproj.Projectors(), picky{}), Checkpoints: e.Ck,
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = eng.Run(context.Background()) }()
	t.Cleanup(func() { _ = eng.Close() })
	<-eng.Running()

	var last int64
	for i := range 10 {
		r, err := e.Cat.AdjustStock(ctx, projtest.MD, commands.AdjustStock{ID: ids[i%len(ids)], Delta: 1})
		if err != nil {
			t.Fatal(err)
		}
		last = r.Position
	}
	if last <= poison {
		t.Fatalf("poison position %d is not among the appended events (last %d)", poison, last)
	}

	// The catalog projectors are not held back by picky.
	projtest.WaitCaughtUp(t, e, projtest.AllProjectors...)
	var st projections.Status
	projtest.Eventually(t, "picky reports its failure", func() (bool, string) {
		s, err := e.Ck.Status(ctx, "picky")
		if err != nil {
			return false, err.Error()
		}
		st = s[0]
		return st.Failure != nil && st.Failure.Attempts >= 3, fmt.Sprintf("%+v", st)
	})
	if st.Failure.Position != poison || !strings.Contains(st.Failure.Error, "picky_refuses") {
		t.Fatalf("failure = %+v, want position %d and the constraint's error", st.Failure, poison)
	}
	if st.Position >= poison || st.LagEvents == 0 {
		t.Fatalf("status = %+v: the checkpoint must stay before the failing event", st)
	}
	var beyond int64
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM picky_seen WHERE position >= $1`, poison).Scan(&beyond); err != nil {
		t.Fatal(err)
	}
	if beyond != 0 {
		t.Fatalf("%d events at or after the failing one were applied", beyond)
	}

	// Fix the cause: the event is applied, then everything after it, and the failure is cleared.
	if _, err := e.Pool.Exec(ctx, `ALTER TABLE picky_seen DROP CONSTRAINT picky_refuses`); err != nil {
		t.Fatal(err)
	}
	projtest.Eventually(t, "picky caught up", func() (bool, string) {
		s, err := e.Ck.Status(ctx, "picky")
		if err != nil {
			return false, err.Error()
		}
		return s[0].LagEvents == 0 && s[0].Failure == nil, fmt.Sprintf("%+v", s[0])
	})
	var seen, want int64
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM picky_seen`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_type = 'product'`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if seen != want {
		t.Fatalf("picky saw %d product events, the log has %d", seen, want)
	}
}

// A rebuild killed mid-way leaves its shadow tables; they are reported and dropped, unless a
// rebuild is filling them right now.
func TestLeftoverShadows(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	if _, err := e.Pool.Exec(ctx, `CREATE TABLE products_rebuild (LIKE products)`); err != nil {
		t.Fatal(err)
	}
	all := catalogproj.Projectors()
	left, err := projections.LeftoverShadows(ctx, e.Pool, all)
	if err != nil || len(left) != 1 || left[0] != "products_rebuild" {
		t.Fatalf("leftovers = %v, %v; want [products_rebuild]", left, err)
	}

	// While a rebuild of products holds its lock, its tables are not leftovers.
	conn, err := e.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('rebuild:products'))`); err != nil {
		t.Fatal(err)
	}
	if left, err := projections.DropLeftoverShadows(ctx, e.Pool, all); err != nil || len(left) != 0 {
		t.Fatalf("with a rebuild running: dropped %v, %v; want nothing", left, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('rebuild:products'))`); err != nil {
		t.Fatal(err)
	}
	conn.Release()

	if left, err := projections.DropLeftoverShadows(ctx, e.Pool, all); err != nil || len(left) != 1 {
		t.Fatalf("dropped %v, %v; want products_rebuild", left, err)
	}
	var exists bool
	if err := e.Pool.QueryRow(ctx, `SELECT to_regclass('products_rebuild') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("products_rebuild still exists (%v)", err)
	}
}

// A failure recorded by an earlier process (which stopped before the event applied) is cleared by
// the first batch this process handles: status never reports a failure that is over.
func TestFailureLeftByAnEarlierProcessIsCleared(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	if _, err := e.Pool.Exec(ctx, `INSERT INTO projector_failures (projector, position, event_type, error)
		VALUES ('products', 1, 'ProductCreated', 'gone since')`); err != nil {
		t.Fatal(err)
	}
	projtest.StartEngine(t, e, 0)
	projtest.BulkProducts(t, e, 1, 0)
	projtest.Eventually(t, "the stale failure cleared", func() (bool, string) {
		st, err := e.Ck.Status(ctx, catalogproj.ProductsProjector)
		if err != nil {
			return false, err.Error()
		}
		return st[0].Failure == nil && st[0].LagEvents == 0, fmt.Sprintf("%+v", st[0])
	})
}
