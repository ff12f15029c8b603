package queries

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
)

// WishlistItem is a product on a wishlist, as it is now (price, stock, cover), and when it was
// added.
type WishlistItem struct {
	ID      int64 // the wishlist row (the position of the add)
	AddedAt time.Time
	Product ProductView
}

// WishlistQueries reads the wishlist table, joined at read time with products.
type WishlistQueries struct {
	pool *pgxpool.Pool
}

// NewWishlistQueries returns the wishlist's queries.
func NewWishlistQueries(pool *pgxpool.Pool) *WishlistQueries { return &WishlistQueries{pool: pool} }

// wishlistRow scans the wishlist columns before the product's.
type wishlistRow struct {
	pgx.Row
	id      *int64
	addedAt *time.Time
}

func (r wishlistRow) Scan(dest ...any) error {
	return r.Row.Scan(append([]any{r.id, r.addedAt}, dest...)...)
}

// Wishlist lists a user's wishlist, newest first, one keyset page at a time, each product as it
// is now (a product is read from products at query time; a deleted one is gone from both). A lost
// database connection is domain.ErrUnavailable (503), never a 500.
func (q *WishlistQueries) Wishlist(ctx context.Context, userID int64, limit int, after string) (Page[WishlistItem], error) {
	v, err := q.wishlist(ctx, userID, limit, after)
	return v, eventstore.Unavailable(err)
}

func (q *WishlistQueries) wishlist(ctx context.Context, userID int64, limit int, after string) (Page[WishlistItem], error) {
	if limit < 1 {
		return Page[WishlistItem]{}, domain.Invalid("limit", "limit must be at least 1")
	}
	cur, err := decodeCursor(after, "wishlist")
	if err != nil {
		return Page[WishlistItem]{}, err
	}
	before := int64(1<<63 - 1)
	if cur != nil {
		before = cur.ID
	}
	// ProductColumns' unqualified names resolve to products, the innermost table that has them.
	rows, err := q.pool.Query(ctx, `SELECT w.id, w.created_at, p.*
		FROM wishlist w
		CROSS JOIN LATERAL (SELECT `+ProductColumns+` FROM products WHERE products.id = w.product_id) p
		WHERE w.user_id = $1 AND w.id < $2
		ORDER BY w.id DESC LIMIT $3`, userID, before, limit+1)
	if err != nil {
		return Page[WishlistItem]{}, fmt.Errorf("listing the wishlist of user %d: %w", userID, err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WishlistItem, error) {
		var it WishlistItem
		p, err := ScanProduct(wishlistRow{r, &it.ID, &it.AddedAt})
		it.Product, it.AddedAt = p, it.AddedAt.UTC()
		return it, err
	})
	if err != nil {
		return Page[WishlistItem]{}, fmt.Errorf("listing the wishlist of user %d: %w", userID, err)
	}
	page := Page[WishlistItem]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextCursor = encodeCursor(cursor{Sort: "wishlist", ID: items[limit-1].ID})
	}
	return page, nil
}
