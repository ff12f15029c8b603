package projections

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/eventstore"
)

// RebuildStats reports a rebuild.
type RebuildStats struct {
	Projector string
	Events    int64 // events read from the log
	Duration  time.Duration
	Cursor    eventstore.Cursor
}

// EventsPerSecond is the rebuild's throughput.
func (s RebuildStats) EventsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Events) / s.Duration.Seconds()
}

// rebuildBatch is how many events one read of the log carries during a rebuild.
const rebuildBatch = 5000

// applyWindow is how many events a rebuild gives Apply at once. The larger the window, the more
// events fold into one row write (a product's twenty events become one upsert), at the cost of
// holding the window's events in memory, twice (the one being written and the one being read):
// about 80 MB each at 200,000 catalog events.
const applyWindow = 200_000

// Rebuild replays the whole log into fresh shadow tables while the live tables keep serving,
// catches up with what was appended meanwhile, then swaps the shadow tables in and moves the
// projector's checkpoint to where the shadow tables are, in one transaction. The live projector
// (in this or another process) is held back only during that swap.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, p Projector, log *slog.Logger) (RebuildStats, error) {
	start := time.Now()
	stats := RebuildStats{Projector: p.Name()}
	shadow := Tables{}
	for _, t := range p.Tables() {
		shadow[t] = shadowName(t)
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return stats, fmt.Errorf("acquiring connection: %w", err)
	}
	defer conn.Release()
	// One rebuild of a projector at a time, across processes.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('rebuild:' || $1))`, p.Name()); err != nil {
		return stats, fmt.Errorf("taking rebuild lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('rebuild:' || $1))`, p.Name())
	}()

	deferred, err := createShadowTables(ctx, conn.Conn(), shadow)
	if err != nil {
		return stats, err
	}
	defer func() {
		if err != nil { // leave no half-built shadow behind
			for _, s := range shadow {
				_, _ = conn.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+pgx.Identifier{s}.Sanitize())
			}
		}
	}()
	// Shadow rows need not wait for the WAL flush: they are unlogged until the swap anyway. The
	// setting goes back with the connection to the pool, so it is reset on every path.
	if _, err = conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return stats, err
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `RESET synchronous_commit`) }()

	// Bulk load and catch up: read the log in delivery order on one connection, write in
	// pipelined batches (each its own short transaction) on another.
	reader, err := pool.Acquire(ctx)
	if err != nil {
		return stats, fmt.Errorf("acquiring reader: %w", err)
	}
	defer reader.Release()
	var cursor eventstore.Cursor
	for pass := 0; ; pass++ {
		var n int64
		cursor, n, err = replay(ctx, reader.Conn(), conn.Conn(), p, shadow, cursor)
		stats.Events += n
		if err != nil {
			return stats, err
		}
		log.Debug("rebuild pass done", "projector", p.Name(), "pass", pass, "events", n)
		if n < rebuildBatch || pass >= 20 {
			break
		}
	}

	// Make the shadow tables durable and indexed like the live ones before the swap.
	for _, s := range shadow {
		if _, err = conn.Exec(ctx, `ALTER TABLE `+pgx.Identifier{s}.Sanitize()+` SET LOGGED`); err != nil {
			return stats, fmt.Errorf("logging %s: %w", s, err)
		}
	}
	for _, ddl := range deferred {
		if _, err = conn.Exec(ctx, ddl); err != nil {
			return stats, fmt.Errorf("indexing shadow table: %w", err)
		}
	}
	if _, err = conn.Exec(ctx, `RESET synchronous_commit`); err != nil {
		return stats, err
	}

	// Swap: lock the projector's checkpoint (the live subscriber waits), apply the last events,
	// rename, move the checkpoint.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO projector_offsets (consumer_group, offset_acked, last_processed_transaction_id)
			VALUES ($1, 0, '0') ON CONFLICT DO NOTHING`, p.Name()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM projector_offsets WHERE consumer_group = $1 FOR UPDATE`, p.Name()); err != nil {
			return err
		}
		var n int64
		var err error
		cursor, n, err = replay(ctx, tx, tx, p, shadow, cursor)
		stats.Events += n
		if err != nil {
			return err
		}
		for logical, s := range shadow {
			old := pgx.Identifier{logical + "_old"}.Sanitize()
			if _, err := tx.Exec(ctx, `ALTER TABLE `+pgx.Identifier{logical}.Sanitize()+` RENAME TO `+old); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE `+pgx.Identifier{s}.Sanitize()+` RENAME TO `+pgx.Identifier{logical}.Sanitize()); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+old); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE projector_offsets SET offset_acked = $2, last_processed_transaction_id = $3::text::xid8
			WHERE consumer_group = $1`, p.Name(), cursor.Position, fmt.Sprint(cursor.TxID)); err != nil {
			return err
		}
		if n, ok := p.(Notifier); ok {
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, n.NotifyChannel(), ResyncNotification); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return stats, fmt.Errorf("swapping in rebuilt tables: %w", err)
	}
	stats.Cursor = cursor
	stats.Duration = time.Since(start)
	log.Info("projection rebuilt", "projector", p.Name(), "events", stats.Events,
		"duration", stats.Duration.Round(time.Millisecond), "events_per_second", int(stats.EventsPerSecond()))
	return stats, nil
}

// createShadowTables creates each shadow table like its live table, unlogged and with only its
// primary key, and returns the statements that add the other indexes afterwards (bulk loading
// is much faster without them).
func createShadowTables(ctx context.Context, conn *pgx.Conn, shadow Tables) ([]string, error) {
	var deferred []string
	for logical, s := range shadow {
		live := pgx.Identifier{logical}.Sanitize()
		sh := pgx.Identifier{s}.Sanitize()
		if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+sh); err != nil {
			return nil, err
		}
		if _, err := conn.Exec(ctx, `CREATE UNLOGGED TABLE `+sh+` (LIKE `+live+` INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS)`); err != nil {
			return nil, fmt.Errorf("creating %s: %w", s, err)
		}
		rows, err := conn.Query(ctx, `SELECT pg_get_indexdef(i.indexrelid), i.indisprimary
			FROM pg_index i WHERE i.indrelid = $1::regclass ORDER BY i.indisprimary DESC, i.indexrelid`, logical)
		if err != nil {
			return nil, err
		}
		type idx struct {
			def     string
			primary bool
		}
		idxs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idx, error) {
			var x idx
			return x, r.Scan(&x.def, &x.primary)
		})
		if err != nil {
			return nil, err
		}
		for _, x := range idxs {
			if x.primary {
				cols := x.def[strings.LastIndex(x.def, "("):]
				if _, err := conn.Exec(ctx, `ALTER TABLE `+sh+` ADD PRIMARY KEY `+cols); err != nil {
					return nil, fmt.Errorf("primary key of %s: %w", s, err)
				}
				continue
			}
			deferred = append(deferred, shadowIndexDef(x.def, s))
		}
	}
	return deferred, nil
}

// shadowIndexDef rewrites "CREATE INDEX name ON public.table USING ..." for the shadow table, under
// a fresh name (index names are per schema).
func shadowIndexDef(def, shadow string) string {
	on := strings.Index(def, " ON ")
	rest := def[on+4:]
	using := strings.Index(rest, " USING ")
	prefix := "CREATE INDEX"
	if strings.HasPrefix(def, "CREATE UNIQUE INDEX") {
		prefix = "CREATE UNIQUE INDEX"
	}
	return prefix + " ON " + pgx.Identifier{shadow}.Sanitize() + rest[using:]
}

// querier runs queries; batcher runs pipelined batches.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// readChunk appends to into up to rebuildBatch events of the projector's stream types after
// cursor, and returns the cursor of the last one and how many it read; fewer than rebuildBatch
// means the end of the log.
func readChunk(ctx context.Context, r querier, p Projector, cursor eventstore.Cursor, into []eventstore.Event) ([]eventstore.Event, eventstore.Cursor, int, error) {
	rows, err := r.Query(ctx, eventstore.ReadAfterProjectedQuery,
		fmt.Sprint(cursor.TxID), cursor.Position, rebuildBatch, p.StreamTypes())
	if err != nil {
		return into, cursor, 0, fmt.Errorf("reading log: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		e, err := eventstore.ScanProjected(rows)
		if err != nil {
			return into, cursor, n, fmt.Errorf("reading log: %w", err)
		}
		into = append(into, e)
		cursor = eventstore.Cursor{TxID: e.TxID, Position: e.Position}
		n++
	}
	if err := rows.Err(); err != nil {
		return into, cursor, n, fmt.Errorf("reading log: %w", err)
	}
	return into, cursor, n, nil
}

// window is up to applyWindow events read from the log straight into a reused buffer, the cursor
// after them, and whether the log ended there.
type window struct {
	events []eventstore.Event
	end    eventstore.Cursor
	last   bool
	err    error
}

// readWindow reads chunks into buf until it holds applyWindow events or the log ends.
func readWindow(ctx context.Context, r querier, p Projector, cursor eventstore.Cursor, buf []eventstore.Event) window {
	w := window{events: buf[:0], end: cursor}
	for len(w.events) < applyWindow {
		var n int
		w.events, w.end, n, w.err = readChunk(ctx, r, p, w.end, w.events)
		if w.err != nil || n < rebuildBatch {
			w.last = true
			return w
		}
	}
	return w
}

// appliedWindow is a window of events turned into statements, and the cursor after it.
type appliedWindow struct {
	stmts  []Stmt
	events int
	end    eventstore.Cursor
}

// newWindowBuffer holds a window and its last chunk's overshoot.
func newWindowBuffer() []eventstore.Event {
	return make([]eventstore.Event, 0, applyWindow+rebuildBatch)
}

// replay applies every committed event after cursor to the tables and returns the new cursor and
// how many events it read. When r and w are different connections it runs as a pipeline: one
// goroutine reads the log into windows of applyWindow events (straight into two reused buffers,
// never copied), another folds each window with Apply, and this one writes the statements, so a
// product's many events become one row write and reading, folding and writing overlap.
// Statements hold values decoded from the events, never the events, so a buffer is reused as
// soon as Apply returns.
func replay(ctx context.Context, r querier, w batcher, p Projector, t Tables, cursor eventstore.Cursor) (eventstore.Cursor, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var n int64
	write := func(a appliedWindow) error {
		if len(a.stmts) > 0 {
			batch := &pgx.Batch{}
			for _, s := range a.stmts {
				batch.Queue(s.SQL, s.Args...)
			}
			if err := w.SendBatch(ctx, batch).Close(); err != nil {
				return fmt.Errorf("writing rebuilt rows: %w", err)
			}
		}
		n += int64(a.events)
		cursor = a.end
		return nil
	}
	apply := func(win window) (appliedWindow, error) {
		a := appliedWindow{events: len(win.events), end: win.end}
		if len(win.events) == 0 {
			return a, nil
		}
		var err error
		if a.stmts, err = p.Apply(t, win.events); err != nil {
			return a, fmt.Errorf("applying events up to %d: %w", win.end.Position, err)
		}
		return a, nil
	}
	if any(r) == any(w) {
		// One connection (the swap's transaction): read, apply and write in turn.
		buf := newWindowBuffer()
		for cur := cursor; ; {
			win := readWindow(ctx, r, p, cur, buf)
			if win.err != nil {
				return cursor, n, win.err
			}
			a, err := apply(win)
			if err == nil {
				err = write(a)
			}
			if err != nil || win.last {
				return cursor, n, err
			}
			cur = win.end
		}
	}

	free := make(chan []eventstore.Event, 2)
	free <- newWindowBuffer()
	free <- newWindowBuffer()
	windows := make(chan window, 1)
	go func() { // reader
		defer close(windows)
		for cur := cursor; ; {
			var buf []eventstore.Event
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			win := readWindow(ctx, r, p, cur, buf)
			select {
			case windows <- win:
			case <-ctx.Done():
				return
			}
			if win.err != nil || win.last {
				return
			}
			cur = win.end
		}
	}()
	applied := make(chan appliedWindow, 1)
	applyErr := make(chan error, 1)
	go func() { // applier
		defer close(applied)
		for win := range windows {
			if win.err != nil {
				applyErr <- win.err
				return
			}
			a, err := apply(win)
			free <- win.events[:0]
			if err != nil {
				applyErr <- err
				return
			}
			select {
			case applied <- a:
			case <-ctx.Done():
				applyErr <- ctx.Err()
				return
			}
		}
		applyErr <- nil
	}()
	for a := range applied {
		if err := write(a); err != nil {
			return cursor, n, err // the deferred cancel stops the reader and the applier
		}
	}
	if err := <-applyErr; err != nil {
		return cursor, n, err
	}
	return cursor, n, ctx.Err() // a reader stopped by cancellation ends the windows early
}

// shadowName is the table a rebuild of table fills before the swap.
func shadowName(table string) string { return table + "_rebuild" }

// LeftoverShadows returns the shadow tables of the projectors that no rebuild is filling: what a
// rebuild killed mid-way leaves behind. A rebuild running in any process holds the projector's
// rebuild lock, so its tables are never reported.
func LeftoverShadows(ctx context.Context, pool *pgxpool.Pool, projectors []Projector) ([]string, error) {
	return shadows(ctx, pool, projectors, false)
}

// DropLeftoverShadows drops the shadow tables no rebuild is filling (serve calls it at start) and
// returns their names.
func DropLeftoverShadows(ctx context.Context, pool *pgxpool.Pool, projectors []Projector) ([]string, error) {
	return shadows(ctx, pool, projectors, true)
}

func shadows(ctx context.Context, pool *pgxpool.Pool, projectors []Projector, drop bool) ([]string, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquiring connection: %w", err)
	}
	defer conn.Release()
	var found []string
	for _, p := range projectors {
		var names []string
		for _, t := range p.Tables() {
			var exists bool
			if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, shadowName(t)).Scan(&exists); err != nil {
				return nil, err
			}
			if exists {
				names = append(names, shadowName(t))
			}
		}
		if len(names) == 0 {
			continue
		}
		var free bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('rebuild:' || $1))`, p.Name()).Scan(&free); err != nil {
			return nil, err
		}
		if !free {
			continue // a rebuild is filling them
		}
		for _, n := range names {
			if drop {
				if _, err = conn.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{n}.Sanitize()); err != nil {
					break
				}
			}
			found = append(found, n)
		}
		if _, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('rebuild:' || $1))`, p.Name()); uerr != nil && err == nil {
			err = uerr
		}
		if err != nil {
			return nil, fmt.Errorf("dropping leftover shadow tables of %s: %w", p.Name(), err)
		}
	}
	return found, nil
}
