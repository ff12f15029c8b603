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
	// Notified is told each notification, in order.
	Notified func(ctx context.Context, n *pgconn.Notification)
}

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
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		f.Notified(ctx, n)
	}
}
