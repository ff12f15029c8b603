package queries

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/eventstore"
)

// UnpaidOrders finds the orders still waiting for payment since before a time: the work list of
// the unpaid-order sweeper (each is cancelled through its own stream, where a paid or already
// cancelled order refuses the cancellation).
type UnpaidOrders struct{ pool *pgxpool.Pool }

// NewUnpaidOrders returns the query.
func NewUnpaidOrders(pool *pgxpool.Pool) *UnpaidOrders { return &UnpaidOrders{pool: pool} }

// PlacedBefore lists up to limit orders pending payment placed before t, oldest first.
func (q *UnpaidOrders) PlacedBefore(ctx context.Context, t time.Time, limit int) ([]int64, error) {
	rows, err := q.pool.Query(ctx, `SELECT id FROM orders WHERE status = 'pending_payment' AND created_at < $1
		ORDER BY created_at LIMIT $2`, t.UTC(), limit)
	if err != nil {
		return nil, eventstore.Unavailable(fmt.Errorf("listing unpaid orders: %w", err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, eventstore.Unavailable(err)
}
