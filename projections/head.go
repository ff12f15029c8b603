package projections

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
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
	// typeGen is, per stream type, the last generation whose move carried an event of that
	// type; allGen the last generation whose move was not looked into (too many events, or the
	// first read): it counts as carrying every type.
	typeGen map[string]uint64
	allGen  uint64
	ok      bool // the last read succeeded

	done     chan struct{} // closed by stop: waiters return at once
	stopOnce sync.Once
}

func newSettledHead(db *sql.DB, busy, idle time.Duration) *settledHead {
	return &settledHead{db: db, busy: busy, idle: max(idle, busy), moved: make(chan struct{}), wake: make(chan struct{}, 1),
		typeGen: map[string]uint64{}, done: make(chan struct{})}
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

// reading reports whether the head's last read succeeded: a wait on a head that is not being read
// would last its whole time-out.
func (h *settledHead) reading() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ok
}

// movedFor reports whether a move after gen carried an event of one of types (nil: any event).
// The caller holds mu.
func (h *settledHead) movedFor(gen uint64, types []string) bool {
	if h.gen <= gen {
		return false
	}
	if types == nil || h.allGen > gen {
		return true
	}
	for _, t := range types {
		if h.typeGen[t] > gen {
			return true
		}
	}
	return false
}

// waitFor returns once a move of the head after generation gen has carried an event of one of
// types (nil: any move), or after timeout.
func (h *settledHead) waitFor(gen uint64, types []string, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		h.mu.Lock()
		if h.movedFor(gen, types) {
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
		var over bool
		select {
		case <-moved:
		case <-t.C:
			over = true
		case <-h.done:
			over = true
		}
		h.mu.Lock()
		h.waiters--
		h.mu.Unlock()
		if over {
			return
		}
	}
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

// read queries the head and wakes the waiters when it moved, with the stream types of the events
// it moved over. A failed query wakes nobody: the waiters time out and poll for themselves, as
// they would without it.
func (h *settledHead) read(ctx context.Context) bool {
	var tx, pos int64
	err := h.db.QueryRowContext(ctx, eventstore.SettledHeadQuery).Scan(&tx, &pos)
	h.mu.Lock()
	ok := err == nil || errors.Is(err, sql.ErrNoRows)
	h.ok = ok
	fromTx, fromPos, first := h.tx, h.pos, h.gen == 0
	h.mu.Unlock()
	if !ok {
		return false
	}
	if tx == fromTx && pos == fromPos {
		return false
	}
	var types []string
	all := first
	if !all {
		var n int
		var list sql.NullString
		err := h.db.QueryRowContext(ctx, eventstore.MovedTypesQuery, strconv.FormatInt(fromTx, 10), fromPos,
			strconv.FormatInt(tx, 10), pos, movedTypesLimit).Scan(&n, &list)
		all = err != nil || n >= movedTypesLimit
		if !all && list.Valid && list.String != "" {
			types = strings.Split(list.String, ",")
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tx, h.pos = tx, pos
	h.gen++
	if all {
		h.allGen = h.gen
	}
	for _, t := range types {
		h.typeGen[t] = h.gen
	}
	close(h.moved)
	h.moved = make(chan struct{})
	return true
}

// movedTypesLimit bounds the events a move is looked into: a larger move wakes every waiter.
const movedTypesLimit = 256
