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
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// The live engine is stopped in the middle of a stream of catalog commands (many small batches,
// appends continuing while it is down) and started again. Once caught up, the read tables hold
// exactly what the domain says, and rebuilding every projector from the log (with the engine
// still running) reproduces them row for row, column for column.
func TestStopRestartEqualsRebuild(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	d := projtest.NewDriver(e, 1)

	eng1 := projtest.StartEngine(t, e, 7) // small batches: many offset commits, and Close lands mid-batch
	const products, steps, deleteCategoryAt = 40, 90, 60
	work := make(chan error, 1)
	go func() {
		work <- func() error {
			for range 3 {
				if err := d.CreateCategory(ctx); err != nil {
					return err
				}
			}
			for range products {
				if err := d.CreateProduct(ctx); err != nil {
					return err
				}
			}
			for i := range steps {
				if i == deleteCategoryAt {
					if err := d.DeleteCategory(ctx, d.Cats[0]); err != nil {
						return err
					}
				}
				if err := d.Step(ctx); err != nil {
					return err
				}
			}
			return nil
		}()
	}()

	// Stop the engine while appends go on, let the log grow while it is down, start a new one.
	waitOps(t, d, 30, work)
	eng1.Stop(t)
	stoppedAt := d.Ops.Load()
	if st, err := e.Ck.Status(ctx, projtest.AllProjectors...); err == nil {
		t.Logf("engine stopped after %d commands: %+v", stoppedAt, st)
	}
	waitOps(t, d, stoppedAt+25, work)
	projtest.StartEngine(t, e, 7)
	if err := <-work; err != nil {
		t.Fatal(err)
	}
	projtest.WaitCaughtUp(t, e, projtest.AllProjectors...)
	if len(d.Orphans) == 0 {
		t.Fatal("the history left no product of the deleted category: the test does not cover category deletion")
	}

	liveCats, liveProducts := projtest.Snapshot(t, e, "categories"), projtest.Snapshot(t, e, "products")
	if len(liveProducts) < products/2 {
		t.Fatalf("only %d products left: the history deleted too much to be a useful test", len(liveProducts))
	}
	d.CheckAgainstModel(t)

	// Rebuild every projector from the log while the engine keeps running.
	projtest.RebuildAll(t, e)
	projtest.WaitAtPosition(t, e, d.Last, projtest.AllProjectors...)
	projtest.RequireSameRows(t, "categories: live vs rebuilt", liveCats, projtest.Snapshot(t, e, "categories"))
	projtest.RequireSameRows(t, "products: live vs rebuilt", liveProducts, projtest.Snapshot(t, e, "products"))
	// Again with a rebuild that writes what it has folded every three rows: products copied,
	// then changed, deleted or left without their category by later flushes.
	projections.SetLoadRows(t, 3)
	projtest.Rebuild(t, e, catalogproj.Products{})
	projtest.WaitAtPosition(t, e, d.Last, catalogproj.ProductsProjector)
	projtest.RequireSameRows(t, "products: live vs rebuilt in flushes of three rows", liveProducts, projtest.Snapshot(t, e, "products"))
	// The live engine goes on projecting into the swapped-in tables.
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	projtest.WaitCaughtUp(t, e, projtest.AllProjectors...)
	d.CheckAgainstModel(t)
}

// waitOps waits until the driver has run at least n commands, or its work ended.
func waitOps(t *testing.T, d *projtest.CatalogDriver, n int64, work chan error) {
	t.Helper()
	projtest.Eventually(t, "commands appended", func() (bool, string) {
		if len(work) > 0 {
			return true, "" // finished (or failed: the caller reads the error)
		}
		return d.Ops.Load() >= n, ""
	})
}

// The products projector is rebuilt while commands keep appending product events and the live
// engine runs. Nothing appended meanwhile is lost or doubled: once caught up, the table equals a
// second, quiet rebuild and what the domain says, and the checkpoint is at the last appended
// position.
func TestRebuildWhileAppending(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	d := projtest.NewDriver(e, 2)
	for range 2 {
		if err := d.CreateCategory(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A log long enough that the rebuild reads it in several chunks.
	for id, p := range projtest.BulkProducts(t, e, 100, 50) {
		d.IDs = append(d.IDs, id)
		d.Products[id] = p
	}
	for range 10 {
		if err := d.CreateProduct(ctx); err != nil {
			t.Fatal(err)
		}
	}
	projtest.StartEngine(t, e, 50)
	projtest.WaitCaughtUp(t, e, projtest.AllProjectors...)

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
				if err := d.Step(ctx); err != nil {
					return err
				}
			}
		}()
	}()
	waitOps(t, d, d.Ops.Load()+20, work)
	before := d.Ops.Load()
	projections.SetLoadRows(t, 64) // the load writes many times while commands append
	st, err := projections.Rebuild(ctx, e.Pool, catalogproj.Products{}, e.Log)
	if err != nil {
		t.Fatal(err)
	}
	during := d.Ops.Load() - before
	waitOps(t, d, d.Ops.Load()+20, work) // and appends go on after the swap
	close(stopAppending)
	if err := <-work; err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuild read %d events in %v; %d commands ran during it", st.Events, st.Duration, during)

	status := projtest.WaitCaughtUp(t, e, catalogproj.ProductsProjector)
	if got, h := status[0].Position, projtest.Head(t, e); got != d.Last || got != h {
		t.Errorf("products checkpoint at %d once caught up, want the last appended position %d (head %d)", got, d.Last, h)
	}
	live := projtest.Snapshot(t, e, "products")
	d.CheckAgainstModel(t)
	projtest.Rebuild(t, e, catalogproj.Products{})
	projtest.WaitCaughtUp(t, e, catalogproj.ProductsProjector)
	projtest.RequireSameRows(t, "products: after a rebuild under load vs a quiet rebuild", live, projtest.Snapshot(t, e, "products"))
}

// Status reports lag before the engine runs and none after; WaitFor returns true once a position
// is processed and false on timeout while nothing processes it.
func TestStatusAndWaitFor(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	d := projtest.NewDriver(e, 3)
	if err := d.CreateCategory(ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := d.CreateProduct(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A failed append burns positions: a gap in the log, below its head.
	_, err := e.Store.Append(ctx, projtest.StoreMD, eventstore.StreamAppend{StreamID: catalog.ProductStreamID(d.IDs[0]),
		StreamType: catalog.ProductStreamType, Events: []eventstore.NewEvent{{Type: "ProductDeleted", SchemaVersion: 1,
			Data: []byte(fmt.Sprintf(`{"product_id":%d}`, d.IDs[0]))}}})
	if !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("clashing append: %v", err)
	}
	if err := d.CreateProduct(ctx); err != nil {
		t.Fatal(err)
	}
	var gap int64
	if err := e.Pool.QueryRow(ctx, `SELECT min(g) FROM generate_series(1, $1::bigint) g
		WHERE NOT EXISTS (SELECT 1 FROM events WHERE "offset" = g)`, d.Last).Scan(&gap); err != nil || gap == 0 {
		t.Fatalf("no gap in the log below %d: %v", d.Last, err)
	}
	events := projtest.EventCount(t, e)

	st, err := e.Ck.Status(ctx, projtest.AllProjectors...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range st {
		if s.Name != projtest.AllProjectors[i] || s.Position != 0 || s.LagEvents != events || s.LagSeconds <= 0 {
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
		{"unprocessed position times out", ctx, d.Last, 50 * time.Millisecond, false, nil},
		{"first event, unprocessed, times out", ctx, 1, 50 * time.Millisecond, false, nil},
		{"gap left by a failed append", ctx, gap, time.Millisecond, true, nil},
		{"position beyond the log", ctx, d.Last + 1000, time.Millisecond, false, projections.ErrPositionBeyondLog},
		{"cancelled context", cancelled, d.Last, time.Second, false, context.Canceled},
	}
	for _, name := range projtest.AllProjectors {
		for _, tc := range tests {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				got, err := e.Ck.WaitFor(tc.ctx, e.Store, name, tc.position, tc.timeout)
				if got != tc.want || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
					t.Errorf("WaitFor(%d) = %v, %v; want %v, %v", tc.position, got, err, tc.want, tc.wantErr)
				}
			})
		}
	}

	eng := projtest.StartEngine(t, e, 0)
	for _, name := range projtest.AllProjectors {
		ok, err := e.Ck.WaitFor(ctx, e.Store, name, d.Last, projtest.WaitTimeout)
		if err != nil || !ok {
			t.Fatalf("WaitFor(%s, %d) with the engine running = %v, %v", name, d.Last, ok, err)
		}
	}
	for _, s := range projtest.WaitAtPosition(t, e, d.Last, projtest.AllProjectors...) {
		if s.LagSeconds != 0 {
			t.Errorf("caught up: %+v, want no lag", s)
		}
	}

	// Stopped again: a new event is lag, and waiting for it times out.
	eng.Stop(t)
	before, err := e.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One command: one event, or two when it names a category (CategoryReferenced).
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := e.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err = e.Ck.Status(ctx, projtest.AllProjectors...)
	if err != nil {
		t.Fatal(err)
	}
	// The lag counts the new events each projector is given (the products projector is given
	// the product's, the categories projector skips CategoryReferenced).
	for _, s := range st {
		p := map[string]projections.Projector{catalogproj.ProductsProjector: catalogproj.Products{},
			catalogproj.CategoriesProjector: catalogproj.Categories{}}[s.Name]
		var skip []string
		if sk, ok := p.(projections.Skipper); ok {
			skip = sk.SkipTypes()
		}
		var want int64
		if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE "offset" > $1 AND "offset" <= $2
			AND stream_type = ANY($3) AND event_type <> ALL(coalesce($4, '{}'::text[]))`, before, after, p.StreamTypes(), skip).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if s.LagEvents != want || s.Position == d.Last && want > 0 {
			t.Errorf("after one more command with the engine stopped: %+v, want lag %d", s, want)
		}
	}
	if ok, err := e.Ck.WaitFor(ctx, e.Store, catalogproj.ProductsProjector, d.Last, 50*time.Millisecond); ok || err != nil {
		t.Errorf("WaitFor an event appended while the engine is stopped = %v, %v; want false, nil", ok, err)
	}
}

// Each projector's Apply is idempotent: rebuilding twice gives the same tables, and applying
// every event's statements twice in a row gives the same rows as applying them once (and as the
// rebuild).
func TestApplyIsIdempotent(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	d := projtest.NewDriver(e, 4)
	for range 3 {
		if err := d.CreateCategory(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 15 {
		if err := d.CreateProduct(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		if i == 40 {
			if err := d.DeleteCategory(ctx, d.Cats[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}

	projtest.RebuildAll(t, e)
	rebuilt := map[string][]string{}
	for _, p := range catalogproj.Projectors() {
		for _, table := range p.Tables() {
			rebuilt[table] = projtest.Snapshot(t, e, table)
		}
	}
	d.CheckAgainstModel(t)
	t.Run("rebuild twice", func(t *testing.T) {
		projtest.RebuildAll(t, e)
		for table, want := range rebuilt {
			projtest.RequireSameRows(t, table+": second rebuild", want, projtest.Snapshot(t, e, table))
		}
	})

	for _, p := range catalogproj.Projectors() {
		t.Run("every event applied twice/"+p.Name(), func(t *testing.T) {
			once, twice := projections.Tables{}, projections.Tables{}
			for _, table := range p.Tables() {
				once[table], twice[table] = table+"_once", table+"_twice"
				for _, scratch := range []string{once[table], twice[table]} {
					if _, err := e.Pool.Exec(ctx, `CREATE TABLE `+scratch+` (LIKE `+table+` INCLUDING ALL)`); err != nil {
						t.Fatal(err)
					}
				}
			}
			err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
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
				projtest.RequireSameRows(t, table+": each event applied once vs twice", projtest.Snapshot(t, e, once[table]), projtest.Snapshot(t, e, twice[table]))
				projtest.RequireSameRows(t, table+": applied once vs rebuilt", rebuilt[table], projtest.Snapshot(t, e, once[table]))
			}
		})
	}
}

// A category deletion makes its products uncategorised (catalog.CategoryDeleted, and the
// products projector follows it). A later update of such a product must keep it uncategorised.
func TestProductUpdateAfterCategoryDelete(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	projtest.StartEngine(t, e, 0)
	c, err := e.Cat.CreateCategory(ctx, projtest.MD, commands.CreateCategory{Name: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: "lamp", Price: 1000, CategoryID: &c.ID, Stock: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cat.DeleteCategory(ctx, projtest.MD, c.ID); err != nil {
		t.Fatal(err)
	}
	projtest.WaitCaughtUp(t, e, projtest.AllProjectors...)
	got, err := e.Q.Product(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CategoryID != nil {
		t.Fatalf("after the category was deleted the product is in category %d, want none", *got.CategoryID)
	}

	name := "desk lamp"
	res, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: p.ID, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	projtest.WaitCaughtUp(t, e, projtest.AllProjectors...)
	got, err = e.Q.Product(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CategoryID != nil || res.CategoryID != nil {
		t.Errorf("renaming a product of a deleted category put it back in that category: "+
			"command result category %s, products row category %s; want none (category %d no longer exists)",
			projtest.IDStr(res.CategoryID), projtest.IDStr(got.CategoryID), c.ID)
	}
	if _, err := e.Q.Category(ctx, c.ID); err == nil || !isNotFound(err) {
		t.Errorf("deleted category %d: err = %v, want not found", c.ID, err)
	}
	page, err := e.Q.Products(ctx, queries.ProductFilter{CategoryID: &c.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("listing the deleted category %d returns %d products", c.ID, len(page.Items))
	}
}

func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
