package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/eventstore"
)

// Status is a projector's place in the log and how far behind it is.
type Status struct {
	Name string `json:"name"`
	// Position is the checkpoint, the position of the last event the projector has processed (0:
	// none yet). It may stay behind the head for up to a second while LagEvents is 0: the engine
	// wakes a consumer only for events it is given (Given).
	Position int64 `json:"position"`
	// LagEvents counts events appended that the projector is given and has not yet processed.
	LagEvents int64 `json:"lag_events"`
	// LagSeconds is the age of the oldest of them (0 when caught up).
	LagSeconds float64 `json:"lag_seconds"`
	// Failure is set while the projector is stuck on an event it cannot apply (and retries).
	Failure *Failure `json:"failure,omitempty"`
}

// Failure is the event a projector cannot apply, and why.
type Failure struct {
	Position      int64     `json:"position"`
	EventType     string    `json:"event_type"`
	Error         string    `json:"error"`
	Attempts      int       `json:"attempts"`
	FirstFailedAt time.Time `json:"first_failed_at"`
	LastFailedAt  time.Time `json:"last_failed_at"`
}

// Checkpoints reads projector checkpoints.
type Checkpoints struct {
	pool *pgxpool.Pool

	mu    sync.RWMutex
	given map[string]givenTypes // by consumer name
}

// givenTypes are the events a consumer is given: of these stream types (nil: all), except these
// event types.
type givenTypes struct {
	streams, skip []string
}

// NewCheckpoints returns a reader of projector checkpoints.
func NewCheckpoints(pool *pgxpool.Pool) *Checkpoints {
	return &Checkpoints{pool: pool, given: map[string]givenTypes{}}
}

// Consumer is a consumer of the log as Checkpoints measures it: its name and the stream types it
// is given (nil: every type); one that has SkipTypes is not given those event types either.
type Consumer interface {
	Name() string
	StreamTypes() []string
}

// Given tells the checkpoints which events each consumer is given. Its lag then counts only the
// events it has yet to handle, and a position with none of them before it counts as reached:
// the engine polls a consumer when the log moves with events of its types, so its checkpoint may
// stay behind events it has nothing to do with for up to a second. A consumer not told of is
// measured against every event.
func (c *Checkpoints) Given(cs ...Consumer) *Checkpoints {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range cs {
		c.given[x.Name()] = givenTypes{streams: x.StreamTypes(), skip: skipTypes(x)}
	}
	return c
}

// filter returns the consumer's stream types (nil: all) and skipped event types (nil: none), the
// arguments of eventstore.GivenCondition.
func (c *Checkpoints) filter(name string) (streams, skip []string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	g := c.given[name]
	return g.streams, g.skip
}

// cursor returns the projector's checkpoint (zero when it has none yet).
func (c *Checkpoints) cursor(ctx context.Context, name string) (eventstore.Cursor, error) {
	var cur eventstore.Cursor
	err := c.pool.QueryRow(ctx, `SELECT last_processed_transaction_id::text::bigint, coalesce(offset_acked, 0)
		FROM projector_offsets WHERE consumer_group = $1`, name).Scan(&cur.TxID, &cur.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Cursor{}, nil
	}
	if err != nil {
		return cur, fmt.Errorf("reading checkpoint of %s: %w", name, err)
	}
	return cur, nil
}

// Status reports every named projector.
func (c *Checkpoints) Status(ctx context.Context, names ...string) ([]Status, error) {
	st, err := c.status(ctx, names...)
	return st, eventstore.Unavailable(err) // a lost connection is a 503, never a 500
}

func (c *Checkpoints) status(ctx context.Context, names ...string) ([]Status, error) {
	out := make([]Status, 0, len(names))
	for _, name := range names {
		cur, err := c.cursor(ctx, name)
		if err != nil {
			return nil, err
		}
		s := Status{Name: name, Position: cur.Position}
		var oldest *time.Time
		streams, skip := c.filter(name)
		err = c.pool.QueryRow(ctx, `SELECT count(*), min(recorded_at) FROM events
			WHERE (transaction_id, "offset") > ($1::text::xid8, $2) AND `+eventstore.GivenCondition(3, 4),
			fmt.Sprint(cur.TxID), cur.Position, streams, skip).Scan(&s.LagEvents, &oldest)
		if err != nil {
			return nil, fmt.Errorf("measuring lag of %s: %w", name, err)
		}
		if oldest != nil {
			s.LagSeconds = max(0, time.Since(*oldest).Seconds())
		}
		var f Failure
		err = c.pool.QueryRow(ctx, `SELECT position, event_type, error, attempts, first_failed_at, last_failed_at
			FROM projector_failures WHERE projector = $1`, name).Scan(&f.Position, &f.EventType, &f.Error, &f.Attempts,
			&f.FirstFailedAt, &f.LastFailedAt)
		switch {
		case err == nil:
			s.Failure = &f
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("reading failure of %s: %w", name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Reached reports whether the projector has processed the event at position, or every event it is
// given up to it (Given) once no earlier transaction can still add one.
func (c *Checkpoints) Reached(ctx context.Context, name string, position eventstore.Cursor) (bool, error) {
	cur, err := c.cursor(ctx, name)
	if err != nil {
		return false, err
	}
	if !cur.Before(position) {
		return true, nil
	}
	streams, skip := c.filter(name)
	var none bool
	err = c.pool.QueryRow(ctx, `SELECT $3::text::xid8 < pg_snapshot_xmin(pg_current_snapshot()) AND NOT EXISTS (
		SELECT FROM events WHERE (transaction_id, "offset") > ($1::text::xid8, $2)
		  AND (transaction_id, "offset") <= ($3::text::xid8, $4) AND `+eventstore.GivenCondition(5, 6)+`)`,
		fmt.Sprint(cur.TxID), cur.Position, fmt.Sprint(position.TxID), position.Position, streams, skip).Scan(&none)
	if err != nil {
		return false, fmt.Errorf("reading what %s has yet to handle: %w", name, err)
	}
	return none, nil
}

// ErrPositionBeyondLog is returned by WaitFor for a position no append has reached.
var ErrPositionBeyondLog = errors.New("position is beyond the end of the log")

// WaitFor waits until the projector has processed the event at position, or until timeout. It
// returns false on timeout; true at once for a position that names no event (a gap left by a
// failed append); ErrPositionBeyondLog for a position past the end of the log.
func (c *Checkpoints) WaitFor(ctx context.Context, store *eventstore.Store, name string, position int64, timeout time.Duration) (bool, error) {
	if position <= 0 {
		return true, nil
	}
	target, ok, err := store.CursorOf(ctx, position)
	if err != nil {
		return false, err
	}
	if !ok {
		head, err := store.Head(ctx)
		if err != nil {
			return false, err
		}
		if position > head {
			return false, ErrPositionBeyondLog
		}
		return true, nil
	}
	deadline := time.Now().Add(timeout)
	for {
		reached, err := c.Reached(ctx, name, target)
		if err != nil || reached {
			return reached, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Waiter waits on these checkpoints for positions of store's log.
func (c *Checkpoints) Waiter(store *eventstore.Store) *Waiter {
	return &Waiter{checkpoints: c, store: store}
}

// Waiter waits for projectors to reach positions of one event store's log (see WaitFor).
type Waiter struct {
	checkpoints *Checkpoints
	store       *eventstore.Store
}

// WaitFor is Checkpoints.WaitFor on the waiter's store; a lost database connection is
// domain.ErrUnavailable (503).
func (w *Waiter) WaitFor(ctx context.Context, name string, position int64, timeout time.Duration) (bool, error) {
	ok, err := w.checkpoints.WaitFor(ctx, w.store, name, position, timeout)
	return ok, eventstore.Unavailable(err)
}
