package catalogproj

import (
	"fmt"

	"github.com/techvault/techvault/domain/review"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// The products projector keeps each product's rating (average, count and 1–5 histogram) from the
// review events. Review events carry no aggregate, so the projector keeps each review's
// contribution in a table of its own (product_review_ratings: rating, hidden, deleted, version),
// updated under the review stream's version, and recomputes the aggregate of the products a batch
// touched from that table. Applying a batch twice therefore equals applying it once, and a
// rebuild of the products projector reproduces the ratings.

// ratingRow is a review's contribution at the end of a batch, folded from its events there.
type ratingRow struct {
	id, productID int64
	created       bool // the batch creates it: every field is known
	hasRating     bool
	rating        int
	hidden        *bool
	deleted       bool
	version       int64
}

// ratingFold accumulates the rating-changing review events of a batch.
type ratingFold struct {
	rows     map[int64]*ratingRow
	order    []int64
	products map[int64]bool
}

func (f *ratingFold) row(id, productID int64, e eventstore.Event) *ratingRow {
	if f.rows == nil {
		f.rows, f.products = map[int64]*ratingRow{}, map[int64]bool{}
	}
	r, ok := f.rows[id]
	if !ok {
		r = &ratingRow{id: id, productID: productID}
		f.rows[id] = r
		f.order = append(f.order, id)
	}
	f.products[productID] = true
	r.version = e.Version
	return r
}

// isRatingEvent reports the review events that change a product's rating (a helpful vote does not).
func isRatingEvent(e eventstore.Event) bool {
	if e.StreamType != review.StreamType {
		return false
	}
	switch e.Type {
	case review.Created{}.EventType(), review.Edited{}.EventType(), review.Deleted{}.EventType(),
		review.Hidden{}.EventType(), review.Unhidden{}.EventType():
		return true
	}
	return false
}

// add folds one review event (of any type; those that leave the rating alone are ignored).
func (f *ratingFold) add(e eventstore.Event) error {
	if !isRatingEvent(e) {
		return nil
	}
	d, err := review.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return fmt.Errorf("event %d: %w", e.Position, err)
	}
	yes, no := true, false
	switch d := d.(type) {
	case review.Created:
		r := f.row(d.ReviewID, d.ProductID, e)
		r.created, r.hasRating, r.rating, r.hidden = true, true, d.Rating, &no
	case review.Edited:
		r := f.row(d.ReviewID, d.ProductID, e)
		r.hasRating, r.rating = true, d.Rating
	case review.Deleted:
		f.row(d.ReviewID, d.ProductID, e).deleted = true
	case review.Hidden:
		f.row(d.ReviewID, d.ProductID, e).hidden = &yes
	case review.Unhidden:
		f.row(d.ReviewID, d.ProductID, e).hidden = &no
	}
	return nil
}

// counted is the SQL condition of a review that counts in its product's rating.
const counted = `NOT r.hidden AND NOT r.deleted`

// statements writes the contributions (one insert for the reviews created in the batch, one
// update for the others) and recomputes the touched products' aggregates (one update). They run
// after the batch's product statements, so a product created in the same batch is there.
func (f *ratingFold) statements(t projections.Tables) []projections.Stmt {
	if len(f.order) == 0 {
		return nil
	}
	var (
		ids, products, versions []int64
		created, hasRating      []bool
		ratings                 []int32
		hidden                  []*bool
		deleted                 []bool
		touched                 = make([]int64, 0, len(f.products))
	)
	for _, id := range f.order {
		r := f.rows[id]
		ids, products, versions = append(ids, id), append(products, r.productID), append(versions, r.version)
		created, hasRating, ratings = append(created, r.created), append(hasRating, r.hasRating), append(ratings, int32(r.rating))
		hidden, deleted = append(hidden, r.hidden), append(deleted, r.deleted)
	}
	for id := range f.products {
		touched = append(touched, id)
	}
	const batch = `unnest($1::bigint[], $2::bigint[], $3::bool[], $4::bool[], $5::int[], $6::bool[], $7::bool[], $8::bigint[])
		AS u(id, product_id, created, has_rating, rating, hidden, deleted, version)`
	args := []any{ids, products, created, hasRating, ratings, hidden, deleted, versions}
	hist := ""
	for stars := 1; stars <= 5; stars++ {
		if stars > 1 {
			hist += ", "
		}
		hist += fmt.Sprintf("count(*) FILTER (WHERE r.rating = %d AND %s)", stars, counted)
	}
	return []projections.Stmt{
		{SQL: t.Sub(`INSERT INTO {product_review_ratings} AS r (review_id, product_id, rating, hidden, deleted, version)
			SELECT u.id, u.product_id, u.rating, u.hidden, u.deleted, u.version FROM ` + batch + ` WHERE u.created
			ON CONFLICT (review_id) DO UPDATE SET rating = excluded.rating, hidden = excluded.hidden,
				deleted = excluded.deleted, version = excluded.version
			WHERE r.version < excluded.version`), Args: args},
		{SQL: t.Sub(`UPDATE {product_review_ratings} AS r SET
				rating = CASE WHEN u.has_rating THEN u.rating ELSE r.rating END,
				hidden = coalesce(u.hidden, r.hidden), deleted = r.deleted OR u.deleted, version = u.version
			FROM ` + batch + `
			WHERE NOT u.created AND r.review_id = u.id AND r.version < u.version`), Args: args},
		{SQL: t.Sub(`UPDATE {products} AS p SET rating = a.rating, rating_count = a.n, rating_histogram = a.hist,
				rating_version = a.version
			FROM (SELECT r.product_id,
					coalesce(round(avg(r.rating) FILTER (WHERE ` + counted + `), 2), 0) AS rating,
					count(*) FILTER (WHERE ` + counted + `) AS n,
					ARRAY[` + hist + `]::int[] AS hist,
					sum(r.version)::bigint AS version
				FROM {product_review_ratings} r WHERE r.product_id = ANY($1::bigint[]) GROUP BY r.product_id) AS a
			WHERE p.id = a.product_id`), Args: []any{touched}},
	}
}

// ratingNotifications are the products whose cards a batch's review events changed.
func ratingNotifications(batch []eventstore.Event) []int64 {
	var ids []int64
	for _, e := range batch {
		if !isRatingEvent(e) {
			continue
		}
		d, err := review.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			continue // Apply fails on it and the batch is retried; nothing is notified for it then
		}
		if id, ok := review.ProductOf(d); ok {
			ids = append(ids, id)
		}
	}
	return ids
}
