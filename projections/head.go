package projections

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/techvault/techvault/eventstore"
)

// settledHead watches, for every subscriber of an engine, the log's settled head: its last event
// below the snapshot xmin, the end of what a subscriber can be delivered (later events may still
// have an older transaction committing before them). A subscriber whose poll found nothing waits
// here until the head moves (or a time-out), instead of polling again and again, each poll a
// transaction that locks its checkpoint. Under load most polls found nothing: an open write
// transaction holds the xmin back, and while it stays open every subscriber polled in vain every
// few milliseconds. One query here, without a transaction, now stands for all of them.
type settledHead struct {
	db         *sql.DB
	busy, idle time.Duration

	mu      sync.Mutex
	gen     uint64        // counts the moves of the head
	moved   chan struct{} // closed at the next move
	waiters int
	wake    chan struct{} // a waiter arrived (buffered: one pending signal is enough)
	tx, pos int64         // the head

	done     chan struct{} // closed by stop: waiters return at once
	stopOnce sync.Once
}

func newSettledHead(db *sql.DB, busy, idle time.Duration) *settledHead {
	return &settledHead{db: db, busy: busy, idle: max(idle, busy), moved: make(chan struct{}), wake: make(chan struct{}, 1),
		done: make(chan struct{})}
}

// stop releases every waiter, now and later (the engine is closing: its subscribers must not sit
// out a wait).
func (h *settledHead) stop() { h.stopOnce.Do(func() { close(h.done) }) }

// generation is the count of the head's moves so far.
func (h *settledHead) generation() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// waitPast returns once the head has moved more than gen times, or after timeout.
func (h *settledHead) waitPast(gen uint64, timeout time.Duration) {
	h.mu.Lock()
	if h.gen > gen {
		h.mu.Unlock()
		return
	}
	moved := h.moved
	h.waiters++
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(timeout)
	select {
	case <-moved:
	case <-t.C:
	case <-h.done:
	}
	t.Stop()
	h.mu.Lock()
	h.waiters--
	h.mu.Unlock()
}

// run reads the head while anyone waits (every busy interval while it moves, the idle interval
// after a second without a move) until ctx is done.
func (h *settledHead) run(ctx context.Context) {
	lastMove := time.Now()
	for {
		h.mu.Lock()
		waiting := h.waiters > 0
		h.mu.Unlock()
		if !waiting {
			select {
			case <-ctx.Done():
				return
			case <-h.wake:
				continue
			}
		}
		if h.read(ctx) {
			lastMove = time.Now()
		}
		wait := h.busy
		if time.Since(lastMove) >= idleAfter {
			wait = h.idle
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// read queries the head and wakes the waiters when it moved. A failed query wakes nobody: the
// waiters time out and poll for themselves, as they would without it.
func (h *settledHead) read(ctx context.Context) bool {
	var tx, pos int64
	if err := h.db.QueryRowContext(ctx, eventstore.SettledHeadQuery).Scan(&tx, &pos); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if tx == h.tx && pos == h.pos {
		return false
	}
	h.tx, h.pos = tx, pos
	h.gen++
	close(h.moved)
	h.moved = make(chan struct{})
	return true
}
