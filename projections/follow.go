package projections

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Follower is what an in-process view does with the projectors' notifications (Follow).
type Follower struct {
	// Name names the view in the log.
	Name string
	// Channels are the NOTIFY channels to LISTEN to.
	Channels []string
	// Live is told true once listening (the view may serve; what it held may have missed
	// notifications, so it starts empty) and false when the listener is lost (it must not).
	Live func(ctx context.Context, live bool)
	// Notified is told the notifications, in order, in batches: each call has every notification
	// that arrived while the call before ran (at least one, at most maxFollowBatch), so that a
	// view can drop what a burst names in one round trip to Redis. The slice is reused after the
	// call returns.
	Notified func(ctx context.Context, batch []*pgconn.Notification)
}

// maxFollowBatch bounds the notifications of one Notified call.
const maxFollowBatch = 512

// Follow listens for f until ctx is done, on a connection of its own from pool; a lost connection
// is reported, and the listener comes back a second later.
func Follow(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, f Follower) {
	for ctx.Err() == nil {
		if err := follow(ctx, pool, f); err != nil && ctx.Err() == nil {
			log.Warn(f.Name+" listener stopped; restarting", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func follow(ctx context.Context, pool *pgxpool.Pool, f Follower) error {
	defer f.Live(context.WithoutCancel(ctx), false)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring listener connection: %w", err)
	}
	defer conn.Release()
	for _, ch := range f.Channels {
		if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listening: %w", err)
		}
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `UNLISTEN *`) }()
	f.Live(ctx, true)
	// A reader takes the notifications off the connection while Notified runs, so that each call
	// gets everything that arrived during the one before.
	readCtx, stopReading := context.WithCancel(ctx)
	arrived := make(chan *pgconn.Notification, maxFollowBatch)
	readErr := make(chan error, 1)
	go func() {
		defer close(arrived)
		for {
			n, err := conn.Conn().WaitForNotification(readCtx)
			if err != nil {
				readErr <- err
				return
			}
			arrived <- n
		}
	}()
	defer func() {
		stopReading()
		for range arrived { // the reader has stopped with the connection once this ends
		}
	}()
	batch := make([]*pgconn.Notification, 0, maxFollowBatch)
	for {
		n, ok := <-arrived
		if !ok {
			if err := <-readErr; ctx.Err() == nil {
				return fmt.Errorf("waiting for notifications: %w", err)
			}
			return nil
		}
		batch = append(batch[:0], n)
	more:
		for len(batch) < maxFollowBatch {
			select {
			case n, ok := <-arrived:
				if !ok {
					break more
				}
				batch = append(batch, n)
			default:
				break more
			}
		}
		f.Notified(ctx, batch)
	}
}
