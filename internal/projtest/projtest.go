// Package projtest holds what the projection tests share (the framework's, the read models',
// the queries' and the views'): a fresh database with an event store and the catalog's commands,
// a running engine, waits on checkpoints, rebuilds, and a reproducible catalog history with its
// model.
package projtest

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
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
)

// WaitTimeout bounds every wait for asynchronous work (projection, view refresh).
const WaitTimeout = 15 * time.Second

// MD is the metadata the tests append with.
var MD = domain.Metadata{ActorID: "tester", CorrelationID: "projections-test"}

// StoreMD is MD as the event store records it, for tests that append events directly.
var StoreMD = eventstore.Metadata(MD)

// Env is a fresh database with an event store, the catalog's command handlers and the readers a
// projection test needs.
type Env struct {
	DB    *testdb.DB
	Pool  *pgxpool.Pool
	Store *eventstore.Store
	IDs   *eventstore.Sequences
	Cat   *commands.Catalog
	Ck    *projections.Checkpoints
	Q     *queries.CatalogQueries
	Log   *slog.Logger
}

func NewEnv(t *testing.T) *Env { t.Helper(); return NewEnvWithClock(t, nil) }

// NewEnvWithClock is newEnv with a store whose recorded_at comes from now (time.Now when nil).
func NewEnvWithClock(t *testing.T, now func() time.Time) *Env {
	t.Helper()
	log := Logger(t)
	db := testdb.New(t)
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ids := store.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
	return &Env{
		DB: db, Pool: db.Pool, Store: store, IDs: ids,
		Cat: commands.NewCatalog(store, ids),
		Ck:  projections.NewCheckpoints(db.Pool),
		Q:   queries.NewCatalogQueries(db.Pool, 0),
		Log: log,
	}
}

// Logger keeps warnings and errors of the code under test and prints them only when the test
// fails (TV_TEST_LOG=1 streams everything to stderr instead). It never calls t.Log from another
// goroutine, so a late log line cannot outlive the test.
func Logger(t *testing.T) *slog.Logger {
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

// RunningEngine is a projection engine running in its own goroutine.
type RunningEngine struct {
	eng  *projections.Engine
	done chan error
	once sync.Once
}

// StartEngine runs every projector live with the given batch size and waits until they are
// subscribed. The engine is stopped when the test ends, if it was not stopped before.
func StartEngine(t *testing.T, e *Env, batchSize int) *RunningEngine {
	t.Helper()
	return StartEngineWith(t, e, catalogproj.Projectors(), batchSize)
}

// StartEngineWith is StartEngine for the given projectors.
func StartEngineWith(t *testing.T, e *Env, ps []projections.Projector, batchSize int) *RunningEngine {
	t.Helper()
	sqlDB := stdlib.OpenDBFromPool(e.Pool)
	eng, err := projections.NewEngine(projections.EngineConfig{
		DB:           sqlDB,
		Projectors:   ps,
		Logger:       e.Log,
		PollInterval: 5 * time.Millisecond,
		BatchSize:    batchSize,
		Checkpoints:  e.Ck,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &RunningEngine{eng: eng, done: make(chan error, 1)}
	go func() { r.done <- eng.Run(context.Background()) }()
	t.Cleanup(func() {
		r.Stop(t)
		_ = sqlDB.Close()
	})
	select {
	case <-eng.Running():
	case err := <-r.done:
		t.Fatalf("engine stopped before running: %v", err)
	case <-time.After(WaitTimeout):
		t.Fatal("engine did not start")
	}
	return r
}

// Stop closes the engine and waits for Run to return.
func (r *RunningEngine) Stop(t *testing.T) {
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
		case <-time.After(WaitTimeout):
			t.Errorf("engine did not stop within %v", WaitTimeout)
		}
	})
}

// Eventually polls cond until it holds, failing the test with cond's last explanation once the
// deadline passes. It must be called from the test goroutine.
func Eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, WaitTimeout, detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var AllProjectors = []string{catalogproj.CategoriesProjector, catalogproj.ProductsProjector}

// WaitCaughtUp waits until every named projector has no lag.
func WaitCaughtUp(t *testing.T, e *Env, names ...string) []projections.Status {
	t.Helper()
	return waitStatus(t, e, "projectors caught up", func(s projections.Status) bool { return s.LagEvents == 0 }, names)
}

// WaitAtPosition waits until every named projector's checkpoint is at position with no lag (a
// projector given none of the events before it gets there within about a second, when its poll
// times out) and returns their statuses.
func WaitAtPosition(t *testing.T, e *Env, position int64, names ...string) []projections.Status {
	t.Helper()
	return waitStatus(t, e, fmt.Sprintf("checkpoints at %d", position), func(s projections.Status) bool {
		return s.Position == position && s.LagEvents == 0
	}, names)
}

// waitStatus waits until every named projector's status satisfies ok and returns the statuses.
func waitStatus(t *testing.T, e *Env, what string, ok func(projections.Status) bool, names []string) []projections.Status {
	t.Helper()
	var last []projections.Status
	Eventually(t, what, func() (bool, string) {
		st, err := e.Ck.Status(context.Background(), names...)
		if err != nil {
			return false, err.Error()
		}
		last = st
		for _, s := range st {
			if !ok(s) {
				return false, fmt.Sprintf("%+v", st)
			}
		}
		return true, ""
	})
	return last
}

// Snapshot returns every row of table, ordered by id, as JSON (all columns).
func Snapshot(t *testing.T, e *Env, table string) []string {
	t.Helper()
	rows, err := e.Pool.Query(context.Background(),
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

// RequireSameRows fails with the first differing row when two snapshots differ.
func RequireSameRows(t *testing.T, what string, want, got []string) {
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

// RebuildAll rebuilds every projector and checks that each read the whole log.
func RebuildAll(t *testing.T, e *Env) {
	t.Helper()
	for _, p := range catalogproj.Projectors() {
		Rebuild(t, e, p)
	}
}

// Rebuild rebuilds p once every event appended so far is visible to readers, and checks that it
// read the whole log. (Visibility is cluster-wide: a write transaction open in any database of
// the server, another test binary's included, holds fresh events back from every reader; a
// Rebuild then rightly stops before them, leaving them to the live engine.)
func Rebuild(t *testing.T, e *Env, p projections.Projector) projections.RebuildStats {
	t.Helper()
	WaitVisible(t, e)
	var total int64
	var skip []string
	if s, ok := p.(projections.Skipper); ok {
		skip = s.SkipTypes()
	}
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events
		WHERE ($1::text[] IS NULL OR stream_type = ANY($1)) AND ($2::text[] IS NULL OR event_type <> ALL($2))`,
		p.StreamTypes(), skip).Scan(&total); err != nil {
		t.Fatal(err)
	}
	before := indexNames(t, e, p)
	st, err := projections.Rebuild(context.Background(), e.Pool, p, e.Log)
	if err != nil {
		t.Fatalf("rebuilding %s: %v", p.Name(), err)
	}
	if after := indexNames(t, e, p); after != before {
		t.Fatalf("rebuild of %s renamed its tables' indexes:\nbefore %s\nafter  %s", p.Name(), before, after)
	}
	if st.Events != total {
		t.Fatalf("rebuild of %s read %d events, the log has %d of its stream types (less those it skips)", p.Name(), st.Events, total)
	}
	return st
}

// indexNames lists the indexes of p's tables with their definitions, table by table.
func indexNames(t *testing.T, e *Env, p projections.Projector) string {
	t.Helper()
	var names string
	if err := e.Pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(c.relname || ' ' || pg_get_indexdef(i.indexrelid), '; '
			ORDER BY c.relname), '')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = ANY(SELECT to_regclass(x) FROM unnest($1::text[]) x)`, p.Tables()).Scan(&names); err != nil {
		t.Fatal(err)
	}
	return names
}

// WaitVisible waits until every event in the log is visible to a reader (no older write
// transaction is open on the server) and returns how many there are.
func WaitVisible(t *testing.T, e *Env) int64 {
	t.Helper()
	var total int64
	Eventually(t, "every appended event visible to readers", func() (bool, string) {
		var visible int64
		err := e.Pool.QueryRow(context.Background(), `SELECT count(*),
			count(*) FILTER (WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())) FROM events`).Scan(&total, &visible)
		if err != nil {
			return false, err.Error()
		}
		return visible == total, fmt.Sprintf("%d of %d events visible", visible, total)
	})
	return total
}

func EventCount(t *testing.T, e *Env) int64 {
	t.Helper()
	var n int64
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func Head(t *testing.T, e *Env) int64 {
	t.Helper()
	h, err := e.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// CatalogDriver appends a pseudo-random but reproducible catalog history through the command
// handlers and keeps the model of what the domain should now hold. It is used by one goroutine
// at a time; ops may be read from any goroutine.
type CatalogDriver struct {
	e        *Env
	rng      *rand.Rand
	Cats     []int64 // live categories, in creation order
	IDs      []int64 // live products, in creation order
	Products map[int64]commands.ProductResult
	// Orphans are live products whose category was deleted. They are not updated afterwards:
	// see TestProductUpdateAfterCategoryDelete for why.
	Orphans map[int64]bool
	Last    int64 // highest position appended
	Ops     atomic.Int64
}

func NewDriver(e *Env, seed uint64) *CatalogDriver {
	return &CatalogDriver{e: e, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		Products: map[int64]commands.ProductResult{}, Orphans: map[int64]bool{}}
}

func (d *CatalogDriver) note(pos int64) {
	d.Last = max(d.Last, pos)
	d.Ops.Add(1)
}

func (d *CatalogDriver) CreateCategory(ctx context.Context) error {
	n := len(d.Cats) + 1
	c, err := d.e.Cat.CreateCategory(ctx, MD, commands.CreateCategory{
		Name: fmt.Sprintf("category %d", n), Description: fmt.Sprintf("things of kind %d", n)})
	if err != nil {
		return fmt.Errorf("creating category: %w", err)
	}
	d.Cats = append(d.Cats, c.ID)
	d.note(c.Position)
	return nil
}

func (d *CatalogDriver) randomCategory() *int64 {
	if len(d.Cats) == 0 || d.rng.IntN(4) == 0 {
		return nil
	}
	id := d.Cats[d.rng.IntN(len(d.Cats))]
	return &id
}

func (d *CatalogDriver) CreateProduct(ctx context.Context) error {
	p, err := d.e.Cat.CreateProduct(ctx, MD, commands.CreateProduct{
		Name:        fmt.Sprintf("gadget %d", d.rng.IntN(1000)),
		Description: fmt.Sprintf("a gadget of series %d", d.rng.IntN(10)),
		Price:       domain.Money(d.rng.IntN(100_000)),
		CategoryID:  d.randomCategory(),
		Stock:       int64(d.rng.IntN(20)),
	})
	if err != nil {
		return fmt.Errorf("creating product: %w", err)
	}
	d.IDs = append(d.IDs, p.ID)
	d.Products[p.ID] = p
	d.note(p.Position)
	return nil
}

// step runs one random command on the catalog: mostly updates and stock changes, some creations
// and deletions.
func (d *CatalogDriver) Step(ctx context.Context) error {
	if len(d.IDs) == 0 {
		return d.CreateProduct(ctx)
	}
	id := d.IDs[d.rng.IntN(len(d.IDs))]
	cur := d.Products[id]
	var (
		res commands.ProductResult
		err error
	)
	switch r := d.rng.IntN(100); {
	case r < 10:
		return d.CreateProduct(ctx)
	case r < 18:
		pos, err := d.e.Cat.DeleteProduct(ctx, MD, id)
		if err != nil {
			return fmt.Errorf("deleting product %d: %w", id, err)
		}
		d.IDs = slices.DeleteFunc(d.IDs, func(x int64) bool { return x == id })
		delete(d.Products, id)
		delete(d.Orphans, id)
		d.note(pos)
		return nil
	case r < 50 && !d.Orphans[id]:
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
		res, err = d.e.Cat.UpdateProduct(ctx, MD, cmd)
	case r < 85:
		delta := int64(d.rng.IntN(21)) - min(cur.Stock, 10)
		if delta == 0 {
			delta = 1
		}
		res, err = d.e.Cat.AdjustStock(ctx, MD, commands.AdjustStock{ID: id, Delta: delta})
	default:
		q := int64(d.rng.IntN(4))
		if q == cur.Stock {
			q++
		}
		res, err = d.e.Cat.AdjustStock(ctx, MD, commands.AdjustStock{ID: id, Quantity: &q})
	}
	if err != nil {
		return fmt.Errorf("changing product %d: %w", id, err)
	}
	if res.Position == 0 {
		return fmt.Errorf("changing product %d recorded nothing", id)
	}
	if d.Orphans[id] {
		// The product aggregate does not learn of its category's deletion, so command results
		// still name it (see TestProductUpdateAfterCategoryDelete); the read model does not.
		res.CategoryID = nil
	}
	d.Products[id] = res
	d.note(res.Position)
	return nil
}

// deleteCategory deletes a category; its products become uncategorised.
func (d *CatalogDriver) DeleteCategory(ctx context.Context, id int64) error {
	pos, err := d.e.Cat.DeleteCategory(ctx, MD, id)
	if err != nil {
		return fmt.Errorf("deleting category %d: %w", id, err)
	}
	d.Cats = slices.DeleteFunc(d.Cats, func(x int64) bool { return x == id })
	for pid, p := range d.Products {
		if p.CategoryID != nil && *p.CategoryID == id {
			p.CategoryID = nil
			d.Products[pid] = p
			d.Orphans[pid] = true
		}
	}
	d.note(pos)
	return nil
}

// checkAgainstModel compares the read tables with what the driver appended: the same categories
// and products, each exactly once, with the names, prices, categories and stocks the domain
// returned.
func (d *CatalogDriver) CheckAgainstModel(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rows, err := d.e.Pool.Query(ctx, `SELECT id FROM categories ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	gotCats, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(d.Cats)); !slices.Equal(gotCats, want) {
		t.Errorf("categories table has ids %v, want %v", gotCats, want)
	}
	rows, err = d.e.Pool.Query(ctx, `SELECT id FROM products ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	gotIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(d.IDs)); !slices.Equal(gotIDs, want) {
		t.Fatalf("products table has %d ids %v, want %d: %v", len(gotIDs), gotIDs, len(want), want)
	}
	for _, id := range d.IDs {
		want := d.Products[id]
		got, err := d.e.Q.Product(ctx, id)
		if err != nil {
			t.Fatalf("product %d: %v", id, err)
		}
		if got.Name != want.Name || got.Description != want.Description || got.Price != want.Price ||
			got.Stock != want.Stock || got.InStock != (want.Stock > 0) || got.Currency != catalog.Currency ||
			!sameID(got.CategoryID, want.CategoryID) {
			t.Errorf("product %d:\n got %+v (category %s)\nwant %+v (category %s)", id, got, IDStr(got.CategoryID), want, IDStr(want.CategoryID))
		}
	}
}

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func IDStr(p *int64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// BulkProducts appends n products straight to the store (one append each), each with a creation
// and adjustments stock changes, to make a long log quickly. It returns the products' final
// state.
func BulkProducts(t *testing.T, e *Env, n, adjustments int) map[int64]commands.ProductResult {
	t.Helper()
	ctx := context.Background()
	out := map[int64]commands.ProductResult{}
	for i := range n {
		id, err := e.IDs.NextID(ctx, commands.ProductIDs)
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
		res, err := e.Store.Append(ctx, StoreMD, eventstore.StreamAppend{StreamID: catalog.ProductStreamID(id),
			StreamType: catalog.ProductStreamType, Events: evs})
		if err != nil {
			t.Fatal(err)
		}
		out[id] = commands.ProductResult{ID: id, Name: p.Name(), Description: p.Description(), Price: p.Price(),
			Currency: catalog.Currency, Stock: p.Stock(), Position: res.LastPosition}
	}
	return out
}

// IsInvalid reports whether err is a domain validation error.
func IsInvalid(err error) bool { return errors.Is(err, domain.ErrInvalid) }

// Accounts opens a customer account under each id, as a registration records it (with empty
// sealed fields: no projection test reads them), for the commands that act on behalf of a
// customer, which refuse an account that does not exist.
func Accounts(t *testing.T, e *Env, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		data, err := json.Marshal(user.UserRegistered{UserID: id, Role: user.Customer, Method: "password"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Store.Append(context.Background(), StoreMD, eventstore.StreamAppend{
			StreamID: user.StreamID(id), StreamType: user.StreamType,
			Events: []eventstore.NewEvent{{Type: user.UserRegistered{}.EventType(), SchemaVersion: user.UserRegistered{}.SchemaVersion(), Data: data}},
		}); err != nil {
			t.Fatalf("opening account %d: %v", id, err)
		}
	}
}
