package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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
	// Where the time went: replaying the log into the unlogged shadow tables, making them durable
	// (SET LOGGED), building their secondary indexes, and the swap (the last events included).
	Load, Durable, Index, Swap time.Duration
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

	indexes, err := createShadowTables(ctx, conn.Conn(), shadow)
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
	extra, release, err := extraWriters(ctx, pool)
	if err != nil {
		return stats, err
	}
	defer release()
	var cursor eventstore.Cursor
	phase := time.Now()
	lap := func(d *time.Duration) { now := time.Now(); *d = now.Sub(phase); phase = now }
	for pass := 0; ; pass++ {
		var n int64
		if l, ok := p.(Loader); ok && pass == 0 {
			cursor, n, err = load(ctx, reader.Conn(), conn.Conn(), extra, p, l, shadow, cursor)
		} else {
			cursor, n, err = replay(ctx, reader.Conn(), conn.Conn(), extra, p, shadow, cursor)
		}
		stats.Events += n
		if err != nil {
			return stats, err
		}
		log.Debug("rebuild pass done", "projector", p.Name(), "pass", pass, "events", n)
		if n < rebuildBatch || pass >= 20 {
			break
		}
	}
	lap(&stats.Load)

	// Make the shadow tables durable and indexed like the live ones before the swap.
	for _, s := range shadow {
		if _, err = conn.Exec(ctx, `ALTER TABLE `+pgx.Identifier{s}.Sanitize()+` SET LOGGED`); err != nil {
			return stats, fmt.Errorf("logging %s: %w", s, err)
		}
	}
	lap(&stats.Durable)
	if err = buildIndexes(ctx, append([]batcher{conn.Conn()}, extra...), indexes); err != nil {
		return stats, err
	}
	if _, err = conn.Exec(ctx, `RESET synchronous_commit`); err != nil {
		return stats, err
	}
	lap(&stats.Index)

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
		cursor, n, err = replay(ctx, tx, tx, nil, p, shadow, cursor)
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
		for _, x := range indexes { // the live tables' indexes went with them: take their names
			if _, err := tx.Exec(ctx, `ALTER INDEX `+pgx.Identifier{x.name}.Sanitize()+` RENAME TO `+pgx.Identifier{x.live}.Sanitize()); err != nil {
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
	lap(&stats.Swap)
	stats.Cursor = cursor
	stats.Duration = time.Since(start)
	log.Info("projection rebuilt", "projector", p.Name(), "events", stats.Events,
		"duration", stats.Duration.Round(time.Millisecond), "events_per_second", int(stats.EventsPerSecond()))
	return stats, nil
}

// RebuildAll rebuilds several projectors one after the other, each as Rebuild does (its own
// shadow tables, catch-up and swap), and returns their stats in the order given. One at a time:
// each already keeps the database busy on several connections, and two at once were slower on two
// cores (88,000 events/s against 96,000 for the catalog's two). A projector that fails leaves the
// others to be rebuilt; the errors are joined. A projector named twice is an error before
// anything starts.
func RebuildAll(ctx context.Context, pool *pgxpool.Pool, ps []Projector, log *slog.Logger) ([]RebuildStats, error) {
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		if seen[p.Name()] {
			return nil, fmt.Errorf("projector %s named twice", p.Name())
		}
		seen[p.Name()] = true
	}
	stats := make([]RebuildStats, len(ps))
	var errs []error
	for i, p := range ps {
		var err error
		if stats[i], err = Rebuild(ctx, pool, p, log); err != nil {
			errs = append(errs, fmt.Errorf("rebuilding %s: %w", p.Name(), err))
		}
	}
	return stats, errors.Join(errs...)
}

// shadowIndex is an index of a shadow table: the statement that builds it (after the bulk load,
// except the primary key), its name on the shadow table, and the live index's name, which it
// takes at the swap so that index names stay the ones the migrations gave.
type shadowIndex struct {
	ddl, name, live string
	primary         bool
}

// createShadowTables creates each shadow table like its live table, unlogged and with only its
// primary key, and returns every index it must have, the primary key first: the others are built
// after the bulk load, which is much faster without them. Shadow indexes are named rb<n>_<live
// name> (n counts the projector's indexes), so that indexes built at the same time never race
// for a generated name.
func createShadowTables(ctx context.Context, conn *pgx.Conn, shadow Tables) ([]shadowIndex, error) {
	var out []shadowIndex
	for logical, s := range shadow {
		live := pgx.Identifier{logical}.Sanitize()
		sh := pgx.Identifier{s}.Sanitize()
		if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+sh); err != nil {
			return nil, err
		}
		if _, err := conn.Exec(ctx, `CREATE UNLOGGED TABLE `+sh+` (LIKE `+live+` INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS)`); err != nil {
			return nil, fmt.Errorf("creating %s: %w", s, err)
		}
		rows, err := conn.Query(ctx, `SELECT pg_get_indexdef(i.indexrelid), c.relname, i.indisprimary
			FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			WHERE i.indrelid = $1::regclass ORDER BY i.indisprimary DESC, i.indexrelid`, logical)
		if err != nil {
			return nil, err
		}
		idxs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (shadowIndex, error) {
			var x shadowIndex
			return x, r.Scan(&x.ddl, &x.live, &x.primary)
		})
		if err != nil {
			return nil, err
		}
		for _, x := range idxs {
			x.name = shadowIndexName(len(out), x.live)
			if x.primary {
				cols := x.ddl[strings.LastIndex(x.ddl, "("):]
				if _, err := conn.Exec(ctx, `ALTER TABLE `+sh+` ADD CONSTRAINT `+pgx.Identifier{x.name}.Sanitize()+` PRIMARY KEY `+cols); err != nil {
					return nil, fmt.Errorf("primary key of %s: %w", s, err)
				}
				x.ddl = ""
			} else {
				x.ddl = shadowIndexDef(x.ddl, s, x.name)
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// shadowIndexName is the name of a projector's n-th shadow index, live the live one's name; it
// fits Postgres's 63 bytes.
func shadowIndexName(n int, live string) string {
	name := fmt.Sprintf("rb%d_%s", n, live)
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// shadowIndexDef rewrites "CREATE [UNIQUE] INDEX name ON public.table USING ..." for the shadow
// table and the given index name.
func shadowIndexDef(def, shadow, name string) string {
	on := strings.Index(def, " ON ")
	rest := def[on+4:]
	using := strings.Index(rest, " USING ")
	prefix := "CREATE INDEX "
	if strings.HasPrefix(def, "CREATE UNIQUE INDEX") {
		prefix = "CREATE UNIQUE INDEX "
	}
	return prefix + pgx.Identifier{name}.Sanitize() + " ON " + pgx.Identifier{shadow}.Sanitize() + rest[using:]
}

// querier runs queries; batcher runs pipelined batches.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// readChunk appends to into up to rebuildBatch events of the projector's stream types after
// cursor, and returns the cursor of the last one and how many it read; fewer than rebuildBatch
// means the end of the log.
func readChunk(ctx context.Context, r querier, p Projector, cursor eventstore.Cursor, into []eventstore.Event) ([]eventstore.Event, eventstore.Cursor, int, error) {
	// Planned for its arguments every time (an unnamed statement, never a cached generic plan):
	// only a plan that knows the stream and event types can take a partial index of the log
	// (migration 0023's, for the categories).
	rows, err := r.Query(ctx, eventstore.ReadAfterProjectedQuery, pgx.QueryExecModeDescribeExec,
		fmt.Sprint(cursor.TxID), cursor.Position, rebuildBatch, p.StreamTypes(), skipTypes(p))
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

// readSettledHead reads the cursor of the log's last event below the snapshot xmin (the zero
// cursor for an empty log): no event can ever be appended at or before it.
func readSettledHead(ctx context.Context, r querier) (eventstore.Cursor, error) {
	rows, err := r.Query(ctx, eventstore.SettledHeadQuery)
	if err != nil {
		return eventstore.Cursor{}, err
	}
	var head eventstore.Cursor
	for rows.Next() {
		if err := rows.Scan(&head.TxID, &head.Position); err != nil {
			rows.Close()
			return eventstore.Cursor{}, err
		}
	}
	return head, rows.Err()
}

// window is up to applyWindow events read from the log straight into a reused buffer, the cursor
// after them, and whether the log ended there.
type window struct {
	events []eventstore.Event
	end    eventstore.Cursor
	last   bool
	err    error
}

// readWindow reads chunks into buf until it holds applyWindow events or the log ends. For a
// projector that reads only some of the log, a window that reaches the end moves on to the log's
// settled head as it was before the window's first read, past the events left out (otherwise the
// next read, the swap's included, would scan them all again): every event up to that head was
// committed below each read's snapshot xmin too, so the reads saw all of them and returned every
// one they select.
func readWindow(ctx context.Context, r querier, p Projector, cursor eventstore.Cursor, buf []eventstore.Event) window {
	w := window{events: buf[:0], end: cursor}
	var head eventstore.Cursor
	if p.StreamTypes() != nil || skipTypes(p) != nil {
		if head, w.err = readSettledHead(ctx, r); w.err != nil {
			w.err, w.last = fmt.Errorf("reading the log's head: %w", w.err), true
			return w
		}
	}
	for len(w.events) < applyWindow {
		var n int
		w.events, w.end, n, w.err = readChunk(ctx, r, p, w.end, w.events)
		if w.err != nil || n < rebuildBatch {
			if w.err == nil && w.end.Before(head) {
				w.end = head
			}
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
func replay(ctx context.Context, r querier, w batcher, extra []batcher, p Projector, t Tables, cursor eventstore.Cursor) (eventstore.Cursor, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var n int64
	write := func(a appliedWindow) error {
		if err := writeStmts(ctx, w, extra, a.stmts); err != nil {
			return fmt.Errorf("writing rebuilt rows: %w", err)
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

// loadRows is how many rows a Load holds before a rebuild writes them (about 80 MB of products).
var loadRows = 200_000

// loadBuffers is how many chunks of events a load reads ahead of its fold.
const loadBuffers = 4

// load folds every committed event after cursor with the projector's Load and writes what the
// fold holds whenever it holds loadRows rows, and at the end; it returns the new cursor and how
// many events it read. One goroutine reads the log in chunks (into reused buffers), another folds
// them as they come, and this one writes, so reading and folding overlap and each row is written
// once however many events it folds. For a projector that reads only some of the log, the end
// moves on to the log's settled head as it was before the first read (see readWindow).
func load(ctx context.Context, r querier, w batcher, extra []batcher, p Projector, l Loader, t Tables, cursor eventstore.Cursor) (eventstore.Cursor, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var head eventstore.Cursor
	if p.StreamTypes() != nil || skipTypes(p) != nil {
		var err error
		if head, err = readSettledHead(ctx, r); err != nil {
			return cursor, 0, fmt.Errorf("reading the log's head: %w", err)
		}
	}
	type chunk struct {
		events []eventstore.Event
		end    eventstore.Cursor
		last   bool
		err    error
	}
	free := make(chan []eventstore.Event, loadBuffers)
	for range loadBuffers {
		free <- make([]eventstore.Event, 0, rebuildBatch)
	}
	chunks := make(chan chunk, loadBuffers)
	go func() { // reader
		defer close(chunks)
		for cur := cursor; ; {
			var c chunk
			select {
			case c.events = <-free:
			case <-ctx.Done():
				return
			}
			var n int
			c.events, c.end, n, c.err = readChunk(ctx, r, p, cur, c.events)
			if c.last = c.err != nil || n < rebuildBatch; c.last && c.err == nil && c.end.Before(head) {
				c.end = head
			}
			select {
			case chunks <- c:
			case <-ctx.Done():
				return
			}
			if c.last {
				return
			}
			cur = c.end
		}
	}()
	type flush struct {
		stmts  []Stmt
		events int64
		end    eventstore.Cursor
	}
	flushes := make(chan flush, 1)
	foldErr := make(chan error, 1)
	go func() { // folder
		defer close(flushes)
		fold := l.Load(t)
		var events int64
		// flushTo hands on what the fold holds, the events folded since the last flush ending at end.
		flushTo := func(end eventstore.Cursor) error {
			stmts, err := fold.Flush()
			if err != nil {
				return fmt.Errorf("folding events up to %d: %w", end.Position, err)
			}
			select {
			case flushes <- flush{stmts: stmts, events: events, end: end}:
			case <-ctx.Done():
				return ctx.Err()
			}
			events = 0
			return nil
		}
		foldErr <- func() error {
			for c := range chunks {
				if c.err != nil {
					return c.err
				}
				// An event adds at most about one row: a chunk is folded in parts that fill the
				// fold up to loadRows, and it is flushed then.
				for evs := c.events; len(evs) > 0; {
					part := evs[:min(len(evs), max(1, loadRows-fold.Rows()))]
					evs = evs[len(part):]
					events += int64(len(part))
					last := part[len(part)-1]
					if err := fold.Add(part); err != nil {
						return fmt.Errorf("folding events up to %d: %w", last.Position, err)
					}
					if fold.Rows() >= loadRows && len(evs) > 0 {
						if err := flushTo(eventstore.Cursor{TxID: last.TxID, Position: last.Position}); err != nil {
							return err
						}
					}
				}
				free <- c.events[:0] // a fold keeps values decoded from the events, never the events
				if fold.Rows() >= loadRows || c.last {
					if err := flushTo(c.end); err != nil {
						return err
					}
				}
			}
			return nil
		}()
	}()
	var n int64
	for f := range flushes {
		if err := writeStmts(ctx, w, extra, f.stmts); err != nil {
			return cursor, n, fmt.Errorf("writing rebuilt rows: %w", err) // the deferred cancel stops the others
		}
		n += f.events
		cursor = f.end
	}
	if err := <-foldErr; err != nil {
		return cursor, n, err
	}
	return cursor, n, ctx.Err() // a reader stopped by cancellation ends the chunks early
}

// buildIndexes runs the index statements, each writer taking the next one when it is done with
// its last: CREATE INDEX takes a lock that lets others build on the same table at the same time.
func buildIndexes(ctx context.Context, writers []batcher, indexes []shadowIndex) error {
	// The GIN indexes first (a search's takes as long as six B-trees), so that the others share
	// the rest of the time.
	next := make(chan string, len(indexes))
	for _, gin := range []bool{true, false} {
		for _, x := range indexes {
			if x.ddl != "" && strings.Contains(x.ddl, " USING gin ") == gin {
				next <- x.ddl
			}
		}
	}
	close(next)
	errs := make([]error, len(writers))
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			for ddl := range next {
				b := &pgx.Batch{}
				b.Queue(ddl)
				if err := w.SendBatch(ctx, b).Close(); err != nil {
					errs[i] = fmt.Errorf("indexing shadow table: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// extraWriterWait is how long a rebuild waits for a connection to write split statements on.
const extraWriterWait = 200 * time.Millisecond

// extraWriters acquires the connections besides the rebuild's own that split statements are
// written on (none when the pool is too small to spare them, or has none free soon enough), each with synchronous_commit off
// like the rebuild's own, and returns them with the function that gives them back.
func extraWriters(ctx context.Context, pool *pgxpool.Pool) ([]batcher, func(), error) {
	var conns []*pgxpool.Conn
	release := func() {
		for _, c := range conns {
			_, _ = c.Exec(context.WithoutCancel(ctx), `RESET synchronous_commit`)
			c.Release()
		}
	}
	if pool.Config().MaxConns < 2+2*(rebuildWriters-1) {
		return nil, release, nil
	}
	var out []batcher
	for range rebuildWriters - 1 {
		// A pool busy serving (or other rebuilds holding its connections) is waited for briefly
		// only: the rebuild then writes on the connections it has.
		actx, cancel := context.WithTimeout(ctx, extraWriterWait)
		c, err := pool.Acquire(actx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				release()
				return nil, func() {}, ctx.Err()
			}
			break
		}
		conns = append(conns, c)
		if _, err := c.Exec(ctx, `SET synchronous_commit = off`); err != nil {
			release()
			return nil, func() {}, err
		}
		out = append(out, c.Conn())
	}
	return out, release, nil
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
