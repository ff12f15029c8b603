package eventstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Appends made at the same moment through Append are written together: while groupWriters
// statements are in flight, the appends that arrive wait in a queue, and the next writer to be
// free writes every waiting one (up to groupMaxEvents events) in one statement, one transaction
// and one commit. An append that finds a writer free is written at once, as before: grouping adds
// no wait, it only uses the time appends would spend queueing for the database anyway. Each
// append keeps its own expected versions and its own outcome: when one append's clash fails the
// group's statement, the appends to that stream are written alone and the rest together again.
// AppendWith (the caller's transaction) and AppendWithKey are never grouped.
const (
	groupWriters   = 4
	groupMaxEvents = 256
	// groupTimeout bounds a group's statement: it runs for several callers, so no caller's
	// context may cancel it.
	groupTimeout = 30 * time.Second
)

// pendingAppend is an append waiting in the group queue, and its outcome once written.
type pendingAppend struct {
	ctx  context.Context
	p    *preparedAppend
	res  AppendResult
	err  error
	done chan struct{}
}

// finished reports whether the append has its outcome.
func (a *pendingAppend) finished() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

func (a *pendingAppend) finish(res AppendResult, err error) {
	a.res, a.err = res, err
	close(a.done)
}

// appendGroup is the queue of appends waiting for a writer, and the writers' slots.
type appendGroup struct {
	mu      sync.Mutex
	queue   []*pendingAppend
	writers chan struct{}
}

func newAppendGroup() *appendGroup {
	return &appendGroup{writers: make(chan struct{}, groupWriters)}
}

// appendGrouped writes p, grouped with whatever else waits, and returns its outcome.
func (s *Store) appendGrouped(ctx context.Context, p *preparedAppend) (AppendResult, error) {
	g := s.group
	a := &pendingAppend{ctx: ctx, p: p, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, a)
	g.mu.Unlock()
	select {
	case <-a.done: // another writer wrote it
		return a.res, a.err
	case <-ctx.Done():
		// A writer that takes it now finishes it unwritten; one that took it already may still
		// write it, as a statement cancelled mid-way may still commit.
		return AppendResult{}, ctx.Err()
	case g.writers <- struct{}{}:
	}
	// This caller is a writer now: it writes groups from the queue until its own append is
	// written, or is in another writer's group (the queue no longer holds it).
	for !a.finished() {
		batch := g.take()
		if len(batch) == 0 {
			break
		}
		s.writeGroup(batch)
	}
	<-g.writers
	<-a.done
	return a.res, a.err
}

// take removes appends from the head of the queue, up to groupMaxEvents events (at least one
// append), leaving queued any append to a stream the group already writes: two appends to one
// stream in one group (both decided at the same version, usually) would fail the whole group. An
// append whose caller has gone is finished with its context's error, unwritten.
func (g *appendGroup) take() []*pendingAppend {
	g.mu.Lock()
	defer g.mu.Unlock()
	var (
		batch   []*pendingAppend
		streams = map[string]bool{}
		events  int
		kept    = g.queue[:0]
	)
	for i, a := range g.queue {
		if err := a.ctx.Err(); err != nil {
			a.finish(AppendResult{}, err)
			continue
		}
		if len(batch) > 0 && (events+a.p.len() > groupMaxEvents || a.p.touchesAny(streams)) {
			kept = append(kept, a)
			if events+a.p.len() > groupMaxEvents {
				kept = append(kept, g.queue[i+1:]...)
				break
			}
			continue
		}
		batch = append(batch, a)
		events += a.p.len()
		for _, sa := range a.p.appends {
			streams[sa.StreamID] = true
		}
	}
	clear(g.queue[len(kept):])
	g.queue = kept
	return batch
}

// rejected reports whether a failed append statement certainly wrote nothing: the server refused
// it (a one-statement transaction is then rolled back), or it never reached the server.
func rejected(err error) bool {
	var pgErr *pgconn.PgError
	var ce *ConcurrencyError
	return errors.As(err, &pgErr) || errors.As(err, &ce) || errors.Is(err, ErrDuplicateEvent) || pgconn.SafeToRetry(err)
}

// writeGroup writes the batch in one statement. When that fails on a stream's clash (an append
// decided on a version another process has moved past), the append to that stream is written
// alone (it gets its own outcome) and the others together again, once; on any other refusal by
// the server, or a second one, each append is written alone; a failure that may have committed
// is every append's outcome.
func (s *Store) writeGroup(batch []*pendingAppend) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	for attempt := 0; len(batch) > 1 && attempt < 2; attempt++ {
		all := &preparedAppend{}
		for _, a := range batch {
			all.merge(a.p)
		}
		byID, err := all.insert(ctx, s.pool, nil)
		if err == nil {
			for _, a := range batch {
				a.finish(a.p.result(byID), nil)
			}
			return
		}
		if !rejected(err) {
			// The statement may have committed (the connection dropped after it was sent):
			// writing the appends again would report their own rows as clashes. Each caller
			// gets the error, whose outcome is unknown, as a lone append's would be.
			for _, a := range batch {
				a.finish(AppendResult{}, err)
			}
			return
		}
		var ce *ConcurrencyError
		if !errors.As(err, &ce) || ce.StreamID == "" {
			break
		}
		rest := batch[:0:0]
		for _, a := range batch {
			if a.p.touches(ce.StreamID) {
				a.finish(a.p.run(ctx, s.pool, nil))
			} else {
				rest = append(rest, a)
			}
		}
		if len(rest) == len(batch) {
			break // the clash names no append of the group: write each alone
		}
		batch = rest
	}
	for _, a := range batch {
		a.finish(a.p.run(ctx, s.pool, nil))
	}
}
