package projections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
)

// waitTimeout bounds every wait for asynchronous work (projection, view refresh).
const waitTimeout = 15 * time.Second

var testMD = eventstore.Metadata{ActorID: "tester", CorrelationID: "projections-test"}

// env is a fresh database with an event store, the catalog's command handlers and the readers a
// projection test needs.
type env struct {
	db    *testdb.DB
	pool  *pgxpool.Pool
	store *eventstore.Store
	ids   *eventstore.Sequences
	cat   *commands.Catalog
	ck    *projections.Checkpoints
	q     *projections.CatalogQueries
	log   *slog.Logger
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWithClock(t, nil) }

// newEnvWithClock is newEnv with a store whose recorded_at comes from now (time.Now when nil).
func newEnvWithClock(t *testing.T, now func() time.Time) *env {
	t.Helper()
	log := testLogger(t)
	db := testdb.New(t)
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ids := store.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
	return &env{
		db: db, pool: db.Pool, store: store, ids: ids,
		cat: commands.NewCatalog(store, ids),
		ck:  projections.NewCheckpoints(db.Pool),
		q:   projections.NewCatalogQueries(db.Pool),
		log: log,
	}
}

// testLogger keeps warnings and errors of the code under test and prints them only when the test
// fails (TV_TEST_LOG=1 streams everything to stderr instead). It never calls t.Log from another
// goroutine, so a late log line cannot outlive the test.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	buf := &lockedBuffer{}
	var w io.Writer = buf
	level := slog.LevelWarn
	if os.Getenv("TV_TEST_LOG") != "" {
		w, level = os.Stderr, slog.LevelDebug
	}
	t.Cleanup(func() {
		if t.Failed() {
			s := buf.String()
			if len(s) > 20000 {
				s = "…" + s[len(s)-20000:]
			}
			if s != "" {
				t.Logf("log of the code under test:\n%s", s)
			}
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runningEngine is a projection engine running in its own goroutine.
type runningEngine struct {
	eng  *projections.Engine
	done chan error
	once sync.Once
}

// startEngine runs every projector live with the given batch size and waits until they are
// subscribed. The engine is stopped when the test ends, if it was not stopped before.
func startEngine(t *testing.T, e *env, batchSize int) *runningEngine {
	t.Helper()
	sqlDB := stdlib.OpenDBFromPool(e.pool)
	eng, err := projections.NewEngine(projections.EngineConfig{
		DB:           sqlDB,
		Projectors:   projections.All(),
		Logger:       e.log,
		PollInterval: 5 * time.Millisecond,
		BatchSize:    batchSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &runningEngine{eng: eng, done: make(chan error, 1)}
	go func() { r.done <- eng.Run(context.Background()) }()
	t.Cleanup(func() {
		r.stop(t)
		_ = sqlDB.Close()
	})
	select {
	case <-eng.Running():
	case err := <-r.done:
		t.Fatalf("engine stopped before running: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("engine did not start")
	}
	return r
}

// stop closes the engine and waits for Run to return.
func (r *runningEngine) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		if err := r.eng.Close(); err != nil {
			t.Errorf("closing engine: %v", err)
		}
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("engine Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("engine did not stop within %v", waitTimeout)
		}
	})
}

// eventually polls cond until it holds, failing the test with cond's last explanation once the
// deadline passes. It must be called from the test goroutine.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, waitTimeout, detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var allProjectors = []string{projections.CategoriesProjector, projections.ProductsProjector}

// waitCaughtUp waits until every named projector has no lag.
func waitCaughtUp(t *testing.T, e *env, names ...string) []projections.Status {
	t.Helper()
	var last []projections.Status
	eventually(t, "projectors caught up", func() (bool, string) {
		st, err := e.ck.Status(context.Background(), names...)
		if err != nil {
			return false, err.Error()
		}
		last = st
		for _, s := range st {
			if s.LagEvents != 0 {
				return false, fmt.Sprintf("%+v", st)
			}
		}
		return true, ""
	})
	return last
}

// snapshot returns every row of table, ordered by id, as JSON (all columns).
func snapshot(t *testing.T, e *env, table string) []string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(),
		`SELECT to_jsonb(t)::text AS row FROM `+pgx.Identifier{table}.Sanitize()+` t ORDER BY row`)
	if err != nil {
		t.Fatalf("snapshot of %s: %v", table, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("snapshot of %s: %v", table, err)
	}
	return out
}

// requireSameRows fails with the first differing row when two snapshots differ.
func requireSameRows(t *testing.T, what string, want, got []string) {
	t.Helper()
	if slices.Equal(want, got) {
		return
	}
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Fatalf("%s: %d rows vs %d; first difference at row %d:\nwant %s\ngot  %s", what, len(want), len(got), i, w, g)
		}
	}
}

// rebuildAll rebuilds every projector and checks that each read the whole log.
func rebuildAll(t *testing.T, e *env) {
	t.Helper()
	for _, p := range projections.All() {
		rebuild(t, e, p)
	}
}

// rebuild rebuilds p once every event appended so far is visible to readers, and checks that it
// read the whole log. (Visibility is cluster-wide: a write transaction open in any database of
// the server, another test binary's included, holds fresh events back from every reader; a
// rebuild then rightly stops before them, leaving them to the live engine.)
func rebuild(t *testing.T, e *env, p projections.Projector) projections.RebuildStats {
	t.Helper()
	waitVisible(t, e)
	var total int64
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM events
		WHERE $1::text[] IS NULL OR stream_type = ANY($1)`, p.StreamTypes()).Scan(&total); err != nil {
		t.Fatal(err)
	}
	st, err := projections.Rebuild(context.Background(), e.pool, p, e.log)
	if err != nil {
		t.Fatalf("rebuilding %s: %v", p.Name(), err)
	}
	if st.Events != total {
		t.Fatalf("rebuild of %s read %d events, the log has %d of its stream types", p.Name(), st.Events, total)
	}
	return st
}

// waitVisible waits until every event in the log is visible to a reader (no older write
// transaction is open on the server) and returns how many there are.
func waitVisible(t *testing.T, e *env) int64 {
	t.Helper()
	var total int64
	eventually(t, "every appended event visible to readers", func() (bool, string) {
		var visible int64
		err := e.pool.QueryRow(context.Background(), `SELECT count(*),
			count(*) FILTER (WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())) FROM events`).Scan(&total, &visible)
		if err != nil {
			return false, err.Error()
		}
		return visible == total, fmt.Sprintf("%d of %d events visible", visible, total)
	})
	return total
}

func eventCount(t *testing.T, e *env) int64 {
	t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func head(t *testing.T, e *env) int64 {
	t.Helper()
	h, err := e.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// catalogDriver appends a pseudo-random but reproducible catalog history through the command
// handlers and keeps the model of what the domain should now hold. It is used by one goroutine
// at a time; ops may be read from any goroutine.
type catalogDriver struct {
	e        *env
	rng      *rand.Rand
	cats     []int64 // live categories, in creation order
	ids      []int64 // live products, in creation order
	products map[int64]commands.ProductResult
	// orphans are live products whose category was deleted. They are not updated afterwards:
	// see TestProductUpdateAfterCategoryDelete for why.
	orphans map[int64]bool
	last    int64 // highest position appended
	ops     atomic.Int64
}

func newDriver(e *env, seed uint64) *catalogDriver {
	return &catalogDriver{e: e, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		products: map[int64]commands.ProductResult{}, orphans: map[int64]bool{}}
}

func (d *catalogDriver) note(pos int64) {
	d.last = max(d.last, pos)
	d.ops.Add(1)
}

func (d *catalogDriver) createCategory(ctx context.Context) error {
	n := len(d.cats) + 1
	c, err := d.e.cat.CreateCategory(ctx, testMD, commands.CreateCategory{
		Name: fmt.Sprintf("category %d", n), Description: fmt.Sprintf("things of kind %d", n)})
	if err != nil {
		return fmt.Errorf("creating category: %w", err)
	}
	d.cats = append(d.cats, c.ID)
	d.note(c.Position)
	return nil
}

func (d *catalogDriver) randomCategory() *int64 {
	if len(d.cats) == 0 || d.rng.IntN(4) == 0 {
		return nil
	}
	id := d.cats[d.rng.IntN(len(d.cats))]
	return &id
}

func (d *catalogDriver) createProduct(ctx context.Context) error {
	p, err := d.e.cat.CreateProduct(ctx, testMD, commands.CreateProduct{
		Name:        fmt.Sprintf("gadget %d", d.rng.IntN(1000)),
		Description: fmt.Sprintf("a gadget of series %d", d.rng.IntN(10)),
		Price:       domain.Money(d.rng.IntN(100_000)),
		CategoryID:  d.randomCategory(),
		Stock:       int64(d.rng.IntN(20)),
	})
	if err != nil {
		return fmt.Errorf("creating product: %w", err)
	}
	d.ids = append(d.ids, p.ID)
	d.products[p.ID] = p
	d.note(p.Position)
	return nil
}

// step runs one random command on the catalog: mostly updates and stock changes, some creations
// and deletions.
func (d *catalogDriver) step(ctx context.Context) error {
	if len(d.ids) == 0 {
		return d.createProduct(ctx)
	}
	id := d.ids[d.rng.IntN(len(d.ids))]
	cur := d.products[id]
	var (
		res commands.ProductResult
		err error
	)
	switch r := d.rng.IntN(100); {
	case r < 10:
		return d.createProduct(ctx)
	case r < 18:
		pos, err := d.e.cat.DeleteProduct(ctx, testMD, id)
		if err != nil {
			return fmt.Errorf("deleting product %d: %w", id, err)
		}
		d.ids = slices.DeleteFunc(d.ids, func(x int64) bool { return x == id })
		delete(d.products, id)
		delete(d.orphans, id)
		d.note(pos)
		return nil
	case r < 50 && !d.orphans[id]:
		name := fmt.Sprintf("gadget %d mk%d", d.rng.IntN(1000), d.rng.IntN(9)+2)
		price := domain.Money(d.rng.IntN(100_000))
		cmd := commands.UpdateProduct{ID: id, Name: &name, Price: &price}
		switch d.rng.IntN(3) {
		case 0:
			cmd.CategoryID = d.randomCategory()
			cmd.ClearCategory = cmd.CategoryID == nil
		case 1:
			desc := fmt.Sprintf("revised gadget %d", d.rng.IntN(100))
			cmd.Description = &desc
		}
		res, err = d.e.cat.UpdateProduct(ctx, testMD, cmd)
	case r < 85:
		delta := int64(d.rng.IntN(21)) - min(cur.Stock, 10)
		if delta == 0 {
			delta = 1
		}
		res, err = d.e.cat.AdjustStock(ctx, testMD, commands.AdjustStock{ID: id, Delta: delta})
	default:
		q := int64(d.rng.IntN(4))
		if q == cur.Stock {
			q++
		}
		res, err = d.e.cat.AdjustStock(ctx, testMD, commands.AdjustStock{ID: id, Quantity: &q})
	}
	if err != nil {
		return fmt.Errorf("changing product %d: %w", id, err)
	}
	if res.Position == 0 {
		return fmt.Errorf("changing product %d recorded nothing", id)
	}
	if d.orphans[id] {
		// The product aggregate does not learn of its category's deletion, so command results
		// still name it (see TestProductUpdateAfterCategoryDelete); the read model does not.
		res.CategoryID = nil
	}
	d.products[id] = res
	d.note(res.Position)
	return nil
}

// deleteCategory deletes a category; its products become uncategorised.
func (d *catalogDriver) deleteCategory(ctx context.Context, id int64) error {
	pos, err := d.e.cat.DeleteCategory(ctx, testMD, id)
	if err != nil {
		return fmt.Errorf("deleting category %d: %w", id, err)
	}
	d.cats = slices.DeleteFunc(d.cats, func(x int64) bool { return x == id })
	for pid, p := range d.products {
		if p.CategoryID != nil && *p.CategoryID == id {
			p.CategoryID = nil
			d.products[pid] = p
			d.orphans[pid] = true
		}
	}
	d.note(pos)
	return nil
}

// checkAgainstModel compares the read tables with what the driver appended: the same categories
// and products, each exactly once, with the names, prices, categories and stocks the domain
// returned.
func (d *catalogDriver) checkAgainstModel(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rows, err := d.e.pool.Query(ctx, `SELECT id FROM categories ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	gotCats, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(d.cats)); !slices.Equal(gotCats, want) {
		t.Errorf("categories table has ids %v, want %v", gotCats, want)
	}
	rows, err = d.e.pool.Query(ctx, `SELECT id FROM products ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	gotIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(d.ids)); !slices.Equal(gotIDs, want) {
		t.Fatalf("products table has %d ids %v, want %d: %v", len(gotIDs), gotIDs, len(want), want)
	}
	for _, id := range d.ids {
		want := d.products[id]
		got, err := d.e.q.Product(ctx, id)
		if err != nil {
			t.Fatalf("product %d: %v", id, err)
		}
		if got.Name != want.Name || got.Description != want.Description || got.Price != want.Price ||
			got.Stock != want.Stock || got.InStock != (want.Stock > 0) || got.Currency != catalog.Currency ||
			!sameID(got.CategoryID, want.CategoryID) {
			t.Errorf("product %d:\n got %+v (category %s)\nwant %+v (category %s)", id, got, idStr(got.CategoryID), want, idStr(want.CategoryID))
		}
	}
}

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func idStr(p *int64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// bulkProducts appends n products straight to the store (one append each), each with a creation
// and adjustments stock changes, to make a long log quickly. It returns the products' final
// state.
func bulkProducts(t *testing.T, e *env, n, adjustments int) map[int64]commands.ProductResult {
	t.Helper()
	ctx := context.Background()
	out := map[int64]commands.ProductResult{}
	for i := range n {
		id, err := e.ids.NextID(ctx, commands.ProductIDs)
		if err != nil {
			t.Fatal(err)
		}
		p, err := catalog.NewProduct(catalog.NewProductInput{ID: id, Name: fmt.Sprintf("bulk item %d", i),
			Description: "bulk", Price: domain.Money(100 + i), Stock: 5})
		if err != nil {
			t.Fatal(err)
		}
		for j := range adjustments {
			if err := p.AdjustStock(int64(1 - 2*(j%2))); err != nil { // +1, -1, +1, …
				t.Fatal(err)
			}
		}
		evs := make([]eventstore.NewEvent, 0, len(p.Changes()))
		for _, c := range p.Changes() {
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, eventstore.NewEvent{Type: c.EventType(), SchemaVersion: c.SchemaVersion(), Data: b})
		}
		res, err := e.store.Append(ctx, testMD, eventstore.StreamAppend{StreamID: catalog.ProductStreamID(id),
			StreamType: catalog.ProductStreamType, Events: evs})
		if err != nil {
			t.Fatal(err)
		}
		out[id] = commands.ProductResult{ID: id, Name: p.Name(), Description: p.Description(), Price: p.Price(),
			Currency: catalog.Currency, Stock: p.Stock(), Position: res.LastPosition}
	}
	return out
}

// isInvalid reports whether err is a domain validation error.
func isInvalid(err error) bool { return errors.Is(err, domain.ErrInvalid) }
