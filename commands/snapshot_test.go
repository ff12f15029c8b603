package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
)

// countingStore counts the events the loader reads, whichever way it reads them.
type countingStore struct {
	*eventstore.Store
	read      atomic.Int64
	failSaves bool
}

func (s *countingStore) Load(ctx context.Context, streamID string) ([]eventstore.Event, error) {
	evs, err := s.Store.Load(ctx, streamID)
	s.read.Add(int64(len(evs)))
	return evs, err
}

func (s *countingStore) LoadFrom(ctx context.Context, streamID string, after int64) ([]eventstore.Event, error) {
	evs, err := s.Store.LoadFrom(ctx, streamID, after)
	s.read.Add(int64(len(evs)))
	return evs, err
}

func (s *countingStore) LoadSnapshotTail(ctx context.Context, streamID, streamType string, schemaVersion int) (eventstore.SnapshotTail, error) {
	st, err := s.Store.LoadSnapshotTail(ctx, streamID, streamType, schemaVersion)
	s.read.Add(int64(len(st.Events)))
	return st, err
}

func (s *countingStore) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if s.failSaves {
		return errors.New("snapshot store unavailable")
	}
	return s.Store.SaveSnapshot(ctx, snap)
}

// fullLoads hides the snapshot methods: every stream is loaded from its first event.
type fullLoads struct{ commands.EventStore }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newCounted(t *testing.T, opts ...commands.Option) (*commands.Catalog, *countingStore) {
	t.Helper()
	db := testdb.New(t)
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: store}
	ids := store.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
	return commands.NewCatalog(cs, ids, append([]commands.Option{commands.WithLogger(quiet)}, opts...)...), cs
}

// step is one command of the script; its outcome is its result and error, printed.
type step struct {
	name string
	run  func(ctx context.Context, c *commands.Catalog) (any, error)
}

func ptr[T any](v T) *T { return &v }

// script exercises every catalog command that loads a stream: long product and category streams,
// rejected commands, a deleted category its product still names, and a deleted product.
func script() []step {
	md := domain.Metadata{ActorID: "admin"}
	var s []step
	add := func(name string, run func(ctx context.Context, c *commands.Catalog) (any, error)) {
		s = append(s, step{name, run})
	}
	add("create category 1", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.CreateCategory(ctx, md, commands.CreateCategory{Name: "GPUs"})
	})
	add("create category 2", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.CreateCategory(ctx, md, commands.CreateCategory{Name: "Storage"})
	})
	add("create product 1", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.CreateProduct(ctx, md, commands.CreateProduct{Name: "RTX 4070", Price: 59900, CategoryID: ptr(int64(1)), Stock: 5})
	})
	add("create product 2", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.CreateProduct(ctx, md, commands.CreateProduct{Name: "SSD 1TB", Price: 8999})
	})
	for i := range int64(40) {
		add(fmt.Sprintf("stock +1 (%d)", i), func(ctx context.Context, c *commands.Catalog) (any, error) {
			return c.AdjustStock(ctx, md, commands.AdjustStock{ID: 1, Delta: 1})
		})
		switch {
		case i%7 == 3:
			add(fmt.Sprintf("stock -1000 (%d)", i), func(ctx context.Context, c *commands.Catalog) (any, error) {
				return c.AdjustStock(ctx, md, commands.AdjustStock{ID: 1, Delta: -1000})
			})
		case i%6 == 1:
			add(fmt.Sprintf("set stock of 2 (%d)", i), func(ctx context.Context, c *commands.Catalog) (any, error) {
				return c.AdjustStock(ctx, md, commands.AdjustStock{ID: 2, Quantity: ptr(i)})
			})
		case i%10 == 5:
			add(fmt.Sprintf("reprice (%d)", i), func(ctx context.Context, c *commands.Catalog) (any, error) {
				return c.UpdateProduct(ctx, md, commands.UpdateProduct{ID: 1, Price: ptr(domain.Money(59900 - i))})
			})
		case i%9 == 4:
			add(fmt.Sprintf("describe category (%d)", i), func(ctx context.Context, c *commands.Catalog) (any, error) {
				return c.UpdateCategory(ctx, md, commands.UpdateCategory{ID: 1, Description: ptr(fmt.Sprint("rev ", i))})
			})
		}
	}
	add("move product 2 into category 2", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.UpdateProduct(ctx, md, commands.UpdateProduct{ID: 2, CategoryID: ptr(int64(2))})
	})
	add("delete category 2", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.DeleteCategory(ctx, md, 2)
	})
	add("rename product 2 (leaves the deleted category)", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.UpdateProduct(ctx, md, commands.UpdateProduct{ID: 2, Name: ptr("SSD 2TB")})
	})
	add("move product 1 into deleted category 2", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.UpdateProduct(ctx, md, commands.UpdateProduct{ID: 1, CategoryID: ptr(int64(2))})
	})
	add("product in deleted category", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.CreateProduct(ctx, md, commands.CreateProduct{Name: "HDD", Price: 1, CategoryID: ptr(int64(2))})
	})
	add("delete product 1", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.DeleteProduct(ctx, md, 1)
	})
	add("stock of deleted product", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.AdjustStock(ctx, md, commands.AdjustStock{ID: 1, Delta: 1})
	})
	add("delete product 1 again", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.DeleteProduct(ctx, md, 1)
	})
	add("update deleted category", func(ctx context.Context, c *commands.Catalog) (any, error) {
		return c.UpdateCategory(ctx, md, commands.UpdateCategory{ID: 2, Name: ptr("x")})
	})
	for i := range int64(12) {
		add(fmt.Sprintf("stock of 2 +1 (%d)", i), func(ctx context.Context, c *commands.Catalog) (any, error) {
			return c.AdjustStock(ctx, md, commands.AdjustStock{ID: 2, Delta: 1})
		})
	}
	return s
}

// tamper changes the stored snapshots before a step; it returns how many it touched.
type tamper func(t *testing.T, ctx context.Context, store *eventstore.Store, stepIndex int) int64

func execTamper(sql string) tamper {
	return func(t *testing.T, ctx context.Context, store *eventstore.Store, _ int) int64 {
		t.Helper()
		tag, err := store.Pool().Exec(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		return tag.RowsAffected()
	}
}

// lie is a state that is plausible but false: used, it would change outcomes.
const lie = `state || CASE stream_type WHEN 'product' THEN '{"name": "stale", "stock": 777}' ELSE '{"name": "stale"}' END::jsonb`

// corruptions cycle over the steps: undecodable, impossible or foreign states.
var corruptions = []string{`'"garbage"'`, `'null'`, `'{}'`, `'[]'`, `state || '{"stock": "many"}'`,
	`state || '{"extra": 1}'`, `state || '{"stock": -5}'`, `state || '{"id": 999}'`, `state || '{"name": ""}'`,
	`state || '{"name": " padded"}'`}

// behind replaces every snapshot by a true one a few versions older.
func behind(t *testing.T, ctx context.Context, store *eventstore.Store, _ int) int64 {
	t.Helper()
	rows, err := store.Pool().Query(ctx, `SELECT stream_id, stream_type, version FROM snapshots`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id, typ string
		version int64
	}
	var snaps []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.typ, &r.version); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range snaps {
		at := r.version - 3
		if at < 1 {
			continue
		}
		stored, err := store.LoadFrom(ctx, r.id, 0)
		if err != nil {
			t.Fatal(err)
		}
		var history []domain.Event
		for _, e := range stored[:at] {
			d, err := catalog.Decode(e.Type, e.SchemaVersion, e.Data)
			if err != nil {
				t.Fatal(err)
			}
			history = append(history, d)
		}
		var state any = catalog.RehydrateCategory(history).Snapshot()
		if r.typ == catalog.ProductStreamType {
			state = catalog.RehydrateProduct(history).Snapshot()
		}
		b, _ := json.Marshal(state)
		if _, err := store.Pool().Exec(ctx, `UPDATE snapshots SET version = $2, state = $3 WHERE stream_id = $1`, r.id, at, string(b)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// runScript runs the script on a fresh store and returns each step's outcome.
func runScript(t *testing.T, snapshots bool, tp tamper) (outcomes []string, touched int64, snapshotsLeft int) {
	t.Helper()
	ctx := context.Background()
	cat, cs := newCounted(t, commands.WithSnapshotEvery(5))
	if !snapshots {
		ids := cs.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
		cat = commands.NewCatalog(fullLoads{cs.Store}, ids, commands.WithLogger(quiet))
	}
	for i, s := range script() {
		if tp != nil {
			touched += tp(t, ctx, cs.Store, i)
		}
		res, err := s.run(ctx, cat)
		b, jerr := json.Marshal(res)
		if jerr != nil {
			t.Fatal(jerr)
		}
		outcomes = append(outcomes, fmt.Sprintf("%s: %s, %v", s.name, b, err))
	}
	if err := cs.Pool().QueryRow(ctx, `SELECT count(*) FROM snapshots`).Scan(&snapshotsLeft); err != nil {
		t.Fatal(err)
	}
	return outcomes, touched, snapshotsLeft
}

// Done when: a snapshot deleted, corrupted, of an old (or newer) schema version, ahead of its
// stream or behind it changes no command's outcome.
func TestSnapshotsChangeNoOutcome(t *testing.T) {
	want, _, left := runScript(t, false, nil)
	if left != 0 {
		t.Fatalf("full loads wrote %d snapshots", left)
	}
	tests := []struct {
		name   string
		tamper tamper
	}{
		{"used as written", nil},
		{"deleted", execTamper(`DELETE FROM snapshots`)},
		{"corrupted", func(t *testing.T, ctx context.Context, store *eventstore.Store, i int) int64 {
			return execTamper(`UPDATE snapshots SET state = `+corruptions[i%len(corruptions)])(t, ctx, store, i)
		}},
		{"old schema version", execTamper(`UPDATE snapshots SET schema_version = schema_version - 1, state = ` + lie)},
		{"newer schema version", execTamper(`UPDATE snapshots SET schema_version = schema_version + 1, state = ` + lie)},
		{"ahead of the stream", execTamper(`UPDATE snapshots SET version = version + 1000, state = ` + lie)},
		{"behind the stream", behind},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, touched, left := runScript(t, true, tc.tamper)
			if tc.tamper == nil && left == 0 || tc.tamper != nil && touched == 0 {
				t.Fatalf("vacuous: %d snapshots left, %d tampered with", left, touched)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("step %d differs from full loads:\n got  %s\n want %s", i, got[i], want[i])
				}
			}
		})
	}
}

// Loading a 10,000-event product stream reads its snapshot and a short tail, not the stream.
func TestLongStreamLoadsReadOnlyTheTail(t *testing.T) {
	ctx := context.Background()
	cat, cs := newCounted(t)
	md := domain.Metadata{ActorID: "admin"}
	p, err := cat.CreateProduct(ctx, md, commands.CreateProduct{Name: "USB cable", Price: 999})
	if err != nil {
		t.Fatal(err)
	}
	const long = 10_000
	for v := int64(1); v < long; v += 1000 {
		evs := make([]eventstore.NewEvent, min(1000, long-v))
		for i := range evs {
			b, _ := json.Marshal(catalog.ProductStockAdjusted{ProductID: p.ID, Delta: 1, Stock: v + int64(i)})
			evs[i] = eventstore.NewEvent{Type: "ProductStockAdjusted", SchemaVersion: 1, Data: b}
		}
		_, err := cs.Append(ctx, eventstore.Metadata(md), eventstore.StreamAppend{StreamID: catalog.ProductStreamID(p.ID),
			StreamType: catalog.ProductStreamType, ExpectedVersion: v, Events: evs})
		if err != nil {
			t.Fatal(err)
		}
	}
	adjust := func() (commands.ProductResult, int64) {
		t.Helper()
		cs.read.Store(0)
		res, err := cat.AdjustStock(ctx, md, commands.AdjustStock{ID: p.ID, Delta: 1})
		if err != nil {
			t.Fatal(err)
		}
		return res, cs.read.Load()
	}
	// No snapshot yet: the first load reads the whole stream, and writes one.
	if _, read := adjust(); read != long {
		t.Fatalf("first load read %d events, want %d", read, long)
	}
	for i := range 2 * commands.DefaultSnapshotEvery {
		res, read := adjust()
		if read > commands.DefaultSnapshotEvery {
			t.Fatalf("load %d read %d events of a %d-event stream; want at most %d", i, read, long+i, commands.DefaultSnapshotEvery)
		}
		if want := int64(long + i + 1); res.Stock != want {
			t.Fatalf("stock = %d, want %d", res.Stock, want)
		}
	}
}

// A snapshot that cannot be written fails no command.
func TestFailedSnapshotWriteFailsNoCommand(t *testing.T) {
	ctx := context.Background()
	cat, cs := newCounted(t, commands.WithSnapshotEvery(2))
	cs.failSaves = true
	md := domain.Metadata{}
	p, err := cat.CreateProduct(ctx, md, commands.CreateProduct{Name: "Fan", Price: 1500})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if res, err := cat.AdjustStock(ctx, md, commands.AdjustStock{ID: p.ID, Delta: 2}); err != nil || res.Stock != int64(2*(i+1)) {
			t.Fatalf("adjust %d: %+v, %v", i, res, err)
		}
	}
}

// Concurrent commands on one stream, loading from snapshots that other commands keep replacing,
// lose no update and apply none twice: the stock is the count of the commands that succeeded
// (a command may give up with a conflict after its bounded retries).
func TestConcurrentCommandsWithSnapshots(t *testing.T) {
	ctx := context.Background()
	cat, _ := newCounted(t, commands.WithSnapshotEvery(3))
	md := domain.Metadata{}
	p, err := cat.CreateProduct(ctx, md, commands.CreateProduct{Name: "Thermal paste", Price: 700})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 6, 15
	var (
		wg        sync.WaitGroup
		succeeded atomic.Int64
	)
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := cat.AdjustStock(ctx, md, commands.AdjustStock{ID: p.ID, Delta: 1})
				switch {
				case err == nil:
					succeeded.Add(1)
				case !errors.Is(err, domain.ErrConflict):
					t.Errorf("adjust: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if succeeded.Load() < workers {
		t.Fatalf("only %d of %d adjustments succeeded", succeeded.Load(), workers*each)
	}
	res, err := cat.AdjustStock(ctx, md, commands.AdjustStock{ID: p.ID, Delta: 1})
	if want := succeeded.Load() + 1; err != nil || res.Stock != want {
		t.Fatalf("stock = %d (%v), want %d", res.Stock, err, want)
	}
}
