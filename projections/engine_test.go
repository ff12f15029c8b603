package projections_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// The live engine is stopped in the middle of a stream of catalog commands (many small batches,
// appends continuing while it is down) and started again. Once caught up, the read tables hold
// exactly what the domain says, and rebuilding every projector from the log (with the engine
// still running) reproduces them row for row, column for column.
func TestStopRestartEqualsRebuild(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d := newDriver(e, 1)

	eng1 := startEngine(t, e, 7) // small batches: many offset commits, and Close lands mid-batch
	const products, steps, deleteCategoryAt = 40, 90, 60
	work := make(chan error, 1)
	go func() {
		work <- func() error {
			for range 3 {
				if err := d.createCategory(ctx); err != nil {
					return err
				}
			}
			for range products {
				if err := d.createProduct(ctx); err != nil {
					return err
				}
			}
			for i := range steps {
				if i == deleteCategoryAt {
					if err := d.deleteCategory(ctx, d.cats[0]); err != nil {
						return err
					}
				}
				if err := d.step(ctx); err != nil {
					return err
				}
			}
			return nil
		}()
	}()

	// Stop the engine while appends go on, let the log grow while it is down, start a new one.
	waitOps(t, d, 30, work)
	eng1.stop(t)
	stoppedAt := d.ops.Load()
	if st, err := e.ck.Status(ctx, allProjectors...); err == nil {
		t.Logf("engine stopped after %d commands: %+v", stoppedAt, st)
	}
	waitOps(t, d, stoppedAt+25, work)
	startEngine(t, e, 7)
	if err := <-work; err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, e, allProjectors...)
	if len(d.orphans) == 0 {
		t.Fatal("the history left no product of the deleted category: the test does not cover category deletion")
	}

	liveCats, liveProducts := snapshot(t, e, "categories"), snapshot(t, e, "products")
	if len(liveProducts) < products/2 {
		t.Fatalf("only %d products left: the history deleted too much to be a useful test", len(liveProducts))
	}
	d.checkAgainstModel(t)

	// Rebuild every projector from the log while the engine keeps running.
	rebuildAll(t, e)
	st := waitCaughtUp(t, e, allProjectors...)
	for _, s := range st {
		if s.Position != d.last {
			t.Errorf("%s checkpoint at %d after the rebuild, want the last appended position %d", s.Name, s.Position, d.last)
		}
	}
	requireSameRows(t, "categories: live vs rebuilt", liveCats, snapshot(t, e, "categories"))
	requireSameRows(t, "products: live vs rebuilt", liveProducts, snapshot(t, e, "products"))
	// The live engine goes on projecting into the swapped-in tables.
	if err := d.step(ctx); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, e, allProjectors...)
	d.checkAgainstModel(t)
}

// waitOps waits until the driver has run at least n commands, or its work ended.
func waitOps(t *testing.T, d *catalogDriver, n int64, work chan error) {
	t.Helper()
	eventually(t, "commands appended", func() (bool, string) {
		if len(work) > 0 {
			return true, "" // finished (or failed: the caller reads the error)
		}
		return d.ops.Load() >= n, ""
	})
}

// The products projector is rebuilt while commands keep appending product events and the live
// engine runs. Nothing appended meanwhile is lost or doubled: once caught up, the table equals a
// second, quiet rebuild and what the domain says, and the checkpoint is at the last appended
// position.
func TestRebuildWhileAppending(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d := newDriver(e, 2)
	for range 2 {
		if err := d.createCategory(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A log long enough that the rebuild reads it in several chunks.
	for id, p := range bulkProducts(t, e, 60, 40) {
		d.ids = append(d.ids, id)
		d.products[id] = p
	}
	for range 10 {
		if err := d.createProduct(ctx); err != nil {
			t.Fatal(err)
		}
	}
	startEngine(t, e, 50)
	waitCaughtUp(t, e, allProjectors...)

	stopAppending := make(chan struct{})
	work := make(chan error, 1)
	go func() {
		work <- func() error {
			for {
				select {
				case <-stopAppending:
					return nil
				default:
				}
				if err := d.step(ctx); err != nil {
					return err
				}
			}
		}()
	}()
	waitOps(t, d, d.ops.Load()+20, work)
	before := d.ops.Load()
	st, err := projections.Rebuild(ctx, e.pool, projections.Products{}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	during := d.ops.Load() - before
	waitOps(t, d, d.ops.Load()+20, work) // and appends go on after the swap
	close(stopAppending)
	if err := <-work; err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuild read %d events in %v; %d commands ran during it", st.Events, st.Duration, during)

	status := waitCaughtUp(t, e, projections.ProductsProjector)
	if got, h := status[0].Position, head(t, e); got != d.last || got != h {
		t.Errorf("products checkpoint at %d once caught up, want the last appended position %d (head %d)", got, d.last, h)
	}
	live := snapshot(t, e, "products")
	d.checkAgainstModel(t)
	rebuild(t, e, projections.Products{})
	waitCaughtUp(t, e, projections.ProductsProjector)
	requireSameRows(t, "products: after a rebuild under load vs a quiet rebuild", live, snapshot(t, e, "products"))
}

// Status reports lag before the engine runs and none after; WaitFor returns true once a position
// is processed and false on timeout while nothing processes it.
func TestStatusAndWaitFor(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d := newDriver(e, 3)
	if err := d.createCategory(ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := d.createProduct(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A failed append burns positions: a gap in the log, below its head.
	_, err := e.store.Append(ctx, testMD, eventstore.StreamAppend{StreamID: catalog.ProductStreamID(d.ids[0]),
		StreamType: catalog.ProductStreamType, Events: []eventstore.NewEvent{{Type: "ProductDeleted", SchemaVersion: 1,
			Data: []byte(fmt.Sprintf(`{"product_id":%d}`, d.ids[0]))}}})
	if !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("clashing append: %v", err)
	}
	if err := d.createProduct(ctx); err != nil {
		t.Fatal(err)
	}
	var gap int64
	if err := e.pool.QueryRow(ctx, `SELECT min(g) FROM generate_series(1, $1::bigint) g
		WHERE NOT EXISTS (SELECT 1 FROM events WHERE "offset" = g)`, d.last).Scan(&gap); err != nil || gap == 0 {
		t.Fatalf("no gap in the log below %d: %v", d.last, err)
	}
	events := eventCount(t, e)

	st, err := e.ck.Status(ctx, allProjectors...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range st {
		if s.Name != allProjectors[i] || s.Position != 0 || s.LagEvents != events || s.LagSeconds <= 0 {
			t.Errorf("before the engine ran: %+v, want position 0, lag %d events and some seconds", s, events)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		position int64
		timeout  time.Duration
		want     bool
		wantErr  error
	}{
		{"no position asked", ctx, 0, time.Millisecond, true, nil},
		{"unprocessed position times out", ctx, d.last, 50 * time.Millisecond, false, nil},
		{"first event, unprocessed, times out", ctx, 1, 50 * time.Millisecond, false, nil},
		{"gap left by a failed append", ctx, gap, time.Millisecond, true, nil},
		{"position beyond the log", ctx, d.last + 1000, time.Millisecond, false, projections.ErrPositionBeyondLog},
		{"cancelled context", cancelled, d.last, time.Second, false, context.Canceled},
	}
	for _, name := range allProjectors {
		for _, tc := range tests {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				got, err := e.ck.WaitFor(tc.ctx, e.store, name, tc.position, tc.timeout)
				if got != tc.want || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
					t.Errorf("WaitFor(%d) = %v, %v; want %v, %v", tc.position, got, err, tc.want, tc.wantErr)
				}
			})
		}
	}

	eng := startEngine(t, e, 0)
	for _, name := range allProjectors {
		ok, err := e.ck.WaitFor(ctx, e.store, name, d.last, waitTimeout)
		if err != nil || !ok {
			t.Fatalf("WaitFor(%s, %d) with the engine running = %v, %v", name, d.last, ok, err)
		}
	}
	st = waitCaughtUp(t, e, allProjectors...)
	for _, s := range st {
		if s.Position != d.last || s.LagSeconds != 0 {
			t.Errorf("caught up: %+v, want position %d and no lag", s, d.last)
		}
	}

	// Stopped again: a new event is lag, and waiting for it times out.
	eng.stop(t)
	before, err := e.store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One command: one event, or two when it names a category (CategoryReferenced).
	if err := d.step(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := e.store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err = e.ck.Status(ctx, allProjectors...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.LagEvents != after-before || s.Position == d.last {
			t.Errorf("after one more command with the engine stopped: %+v, want lag %d", s, after-before)
		}
	}
	if ok, err := e.ck.WaitFor(ctx, e.store, projections.ProductsProjector, d.last, 50*time.Millisecond); ok || err != nil {
		t.Errorf("WaitFor an event appended while the engine is stopped = %v, %v; want false, nil", ok, err)
	}
}

// Each projector's Apply is idempotent: rebuilding twice gives the same tables, and applying
// every event's statements twice in a row gives the same rows as applying them once (and as the
// rebuild).
func TestApplyIsIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	d := newDriver(e, 4)
	for range 3 {
		if err := d.createCategory(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 15 {
		if err := d.createProduct(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		if i == 40 {
			if err := d.deleteCategory(ctx, d.cats[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.step(ctx); err != nil {
			t.Fatal(err)
		}
	}

	rebuildAll(t, e)
	rebuilt := map[string][]string{}
	for _, p := range projections.All() {
		for _, table := range p.Tables() {
			rebuilt[table] = snapshot(t, e, table)
		}
	}
	d.checkAgainstModel(t)
	t.Run("rebuild twice", func(t *testing.T) {
		rebuildAll(t, e)
		for table, want := range rebuilt {
			requireSameRows(t, table+": second rebuild", want, snapshot(t, e, table))
		}
	})

	for _, p := range projections.All() {
		t.Run("every event applied twice/"+p.Name(), func(t *testing.T) {
			once, twice := projections.Tables{}, projections.Tables{}
			for _, table := range p.Tables() {
				once[table], twice[table] = table+"_once", table+"_twice"
				for _, scratch := range []string{once[table], twice[table]} {
					if _, err := e.pool.Exec(ctx, `CREATE TABLE `+scratch+` (LIKE `+table+` INCLUDING ALL)`); err != nil {
						t.Fatal(err)
					}
				}
			}
			err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				var evs []eventstore.Event
				if _, err := eventstore.Scan(ctx, tx, eventstore.Cursor{}, func(ev eventstore.Event) error {
					evs = append(evs, ev)
					return nil
				}); err != nil {
					return err
				}
				for _, ev := range evs {
					for _, run := range []struct {
						tables projections.Tables
						times  int
					}{{once, 1}, {twice, 2}} {
						stmts, err := p.Apply(run.tables, []eventstore.Event{ev})
						if err != nil {
							t.Fatalf("apply event %d (%s): %v", ev.Position, ev.Type, err)
						}
						for range run.times {
							for _, s := range stmts {
								if _, err := tx.Exec(ctx, s.SQL, s.Args...); err != nil {
									t.Fatalf("event %d (%s): %s: %v", ev.Position, ev.Type, s.SQL, err)
								}
							}
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range p.Tables() {
				requireSameRows(t, table+": each event applied once vs twice", snapshot(t, e, once[table]), snapshot(t, e, twice[table]))
				requireSameRows(t, table+": applied once vs rebuilt", rebuilt[table], snapshot(t, e, once[table]))
			}
		})
	}
}

// A category deletion makes its products uncategorised (catalog.CategoryDeleted, and the
// products projector follows it). A later update of such a product must keep it uncategorised.
func TestProductUpdateAfterCategoryDelete(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	startEngine(t, e, 0)
	c, err := e.cat.CreateCategory(ctx, testMD, commands.CreateCategory{Name: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.cat.CreateProduct(ctx, testMD, commands.CreateProduct{Name: "lamp", Price: 1000, CategoryID: &c.ID, Stock: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.DeleteCategory(ctx, testMD, c.ID); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, e, allProjectors...)
	got, err := e.q.Product(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CategoryID != nil {
		t.Fatalf("after the category was deleted the product is in category %d, want none", *got.CategoryID)
	}

	name := "desk lamp"
	res, err := e.cat.UpdateProduct(ctx, testMD, commands.UpdateProduct{ID: p.ID, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, e, allProjectors...)
	got, err = e.q.Product(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CategoryID != nil || res.CategoryID != nil {
		t.Errorf("renaming a product of a deleted category put it back in that category: "+
			"command result category %s, products row category %s; want none (category %d no longer exists)",
			idStr(res.CategoryID), idStr(got.CategoryID), c.ID)
	}
	if _, err := e.q.Category(ctx, c.ID); err == nil || !isNotFound(err) {
		t.Errorf("deleted category %d: err = %v, want not found", c.ID, err)
	}
	page, err := e.q.Products(ctx, projections.ProductFilter{CategoryID: &c.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("listing the deleted category %d returns %d products", c.ID, len(page.Items))
	}
}

func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
