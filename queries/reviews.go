package queries

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
)

// ReviewView is a review as queries return it.
type ReviewView struct {
	ID        int64
	ProductID int64
	UserID    int64
	// Author is the author's first name and the initial of their last name ("Ada L."); "" once
	// the account is erased.
	Author           string
	Rating           int
	Title            string
	Text             string
	Hidden           bool
	VerifiedPurchase bool
	HelpfulCount     int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ReviewViewer is who lists reviews: hidden reviews are listed to admins, and to their author.
type ReviewViewer struct {
	UserID int64 // 0: anonymous
	Admin  bool
}

// ReviewFilter selects a page of a product's reviews.
type ReviewFilter struct {
	ProductID int64
	// Sort is one of ReviewSorts ("" is newest first).
	Sort   string
	Limit  int
	Cursor string
	Viewer ReviewViewer
}

// reviewSort is one order of a product's reviews: its ORDER BY, the keyset condition after a
// cursor (uses $V, the sort value, and $ID), how a row's value is written into a cursor, and
// how a cursor's value is checked (it must be exactly what value writes).
type reviewSort struct {
	orderBy, after string
	value          func(ReviewView) string
	norm           func(string) (string, error)
}

func countValue(v string) (string, error) {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return "", errors.New("bad count")
	}
	return canonical(v, strconv.FormatInt(n, 10))
}

var newestReviews = reviewSort{"r.created_at DESC, r.id DESC", "(r.created_at, r.id) < ($V::timestamp, $ID)",
	func(r ReviewView) string { return r.CreatedAt.Format(cursorTimeLayout) }, timeValue}

// ReviewSorts are the orders GET /products/{id}/reviews accepts: newest first (the default) and
// most helpful first (the newer first among equals).
var ReviewSorts = map[string]reviewSort{
	"":            newestReviews,
	"-created_at": newestReviews,
	"-helpful": {"r.helpful_count DESC, r.id DESC", "(r.helpful_count, r.id) < ($V::integer, $ID)",
		func(r ReviewView) string { return strconv.FormatInt(r.HelpfulCount, 10) }, countValue},
}

// ReviewQueries reads the reviews read table.
type ReviewQueries struct {
	pool *pgxpool.Pool
}

// NewReviewQueries returns the reviews' queries.
func NewReviewQueries(pool *pgxpool.Pool) *ReviewQueries { return &ReviewQueries{pool: pool} }

// ProductReviews lists a product's reviews, one keyset page at a time. An unknown or deleted
// product is domain.ErrNotFound; a lost database connection is domain.ErrUnavailable.
func (q *ReviewQueries) ProductReviews(ctx context.Context, f ReviewFilter) (Page[ReviewView], error) {
	v, err := q.productReviews(ctx, f)
	return v, eventstore.Unavailable(err)
}

func (q *ReviewQueries) productReviews(ctx context.Context, f ReviewFilter) (Page[ReviewView], error) {
	if f.Limit < 1 {
		return Page[ReviewView]{}, domain.Invalid("limit", "limit must be at least 1")
	}
	s, ok := ReviewSorts[f.Sort]
	if !ok {
		return Page[ReviewView]{}, domain.Invalid("sort", "unknown sort %q", f.Sort)
	}
	// The cursor names its order by the sort's canonical name: "" and -created_at are one order.
	sortName := f.Sort
	if sortName == "" {
		sortName = "-created_at"
	}
	cur, err := decodeCursor(f.Cursor, sortName)
	if err != nil {
		return Page[ReviewView]{}, err
	}
	if cur != nil {
		if cur.Value, err = s.norm(cur.Value); err != nil {
			return Page[ReviewView]{}, domain.Invalid("cursor", "cursor is malformed")
		}
	}
	var exists bool
	if err := q.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)`, f.ProductID).Scan(&exists); err != nil {
		return Page[ReviewView]{}, fmt.Errorf("reading product %d: %w", f.ProductID, err)
	}
	if !exists {
		return Page[ReviewView]{}, domain.NotFound("product %d not found", f.ProductID)
	}

	args := []any{f.ProductID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := []string{"r.product_id = $1"}
	if !f.Viewer.Admin {
		where = append(where, "(NOT r.hidden OR r.user_id = "+arg(f.Viewer.UserID)+")")
	}
	if cur != nil {
		cond := strings.ReplaceAll(s.after, "$ID", arg(cur.ID))
		where = append(where, strings.ReplaceAll(cond, "$V", arg(cur.Value)))
	}
	sql := `SELECT r.id, r.product_id, r.user_id, coalesce(u.first_name, ''), coalesce(u.last_name, ''), r.rating, r.title,
			r.comment, r.hidden, r.verified_purchase, r.helpful_count, r.created_at, r.updated_at
		FROM reviews r LEFT JOIN users u ON u.id = r.user_id
		WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + s.orderBy + ` LIMIT ` + arg(f.Limit+1)
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return Page[ReviewView]{}, fmt.Errorf("listing reviews: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReviewView, error) {
		var (
			r           ReviewView
			first, last string
		)
		err := row.Scan(&r.ID, &r.ProductID, &r.UserID, &first, &last, &r.Rating, &r.Title, &r.Text, &r.Hidden,
			&r.VerifiedPurchase, &r.HelpfulCount, &r.CreatedAt, &r.UpdatedAt)
		r.Author = displayName(first, last)
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		return r, err
	})
	if err != nil {
		return Page[ReviewView]{}, fmt.Errorf("listing reviews: %w", err)
	}
	page := Page[ReviewView]{Items: items}
	if len(items) > f.Limit {
		last := items[f.Limit-1]
		page.Items = items[:f.Limit]
		page.NextCursor = encodeCursor(cursor{Sort: sortName, Value: s.value(last), ID: last.ID})
	}
	return page, nil
}

// displayName is how an author is shown on their reviews: "Ada L."; "" when the account is gone.
func displayName(first, last string) string {
	first = strings.TrimSpace(first)
	if first == "" {
		return ""
	}
	if r, _ := utf8.DecodeRuneInString(strings.TrimSpace(last)); r != utf8.RuneError {
		return first + " " + string(r) + "."
	}
	return first
}
