package queries

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/eventstore"
)

// PromoExpiry finds the promo codes DELETE /promo-codes/expired deactivates: active ones whose
// expiry has passed. The read table only proposes them; each is re-checked on its own stream.
type PromoExpiry struct{ pool *pgxpool.Pool }

// NewPromoExpiry returns the query.
func NewPromoExpiry(pool *pgxpool.Pool) *PromoExpiry { return &PromoExpiry{pool: pool} }

// ExpiredActivePromoIDs lists the active codes expired at now.
func (q *PromoExpiry) ExpiredActivePromoIDs(ctx context.Context, now time.Time) ([]int64, error) {
	rows, err := q.pool.Query(ctx, `SELECT id FROM promo_codes
		WHERE is_active AND expiration_date IS NOT NULL AND expiration_date <= $1 ORDER BY id`, now.UTC())
	if err != nil {
		return nil, eventstore.Unavailable(fmt.Errorf("listing expired promo codes: %w", err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, eventstore.Unavailable(err)
}
