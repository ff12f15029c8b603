// Package reviewproj is the reviews read model: the reviews projector's apply function (pure:
// event batch → set-based SQL) over the reviews table and review_purchases, what it knows of
// orders to set verified_purchase. (The products' rating aggregate is the products projector's:
// projections/catalogproj.)
package reviewproj

import (
	"fmt"
	"slices"
	"time"

	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/review"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// ReviewsProjector is the projector's name: its consumer group and checkpoint key, fixed for ever.
const ReviewsProjector = "reviews"

// Projectors returns the read model's projectors.
func Projectors() []projections.Projector { return []projections.Projector{Reviews{}} }

// Reviews projects the reviews table. A review is a verified purchase when its author has an
// order containing the product that is paid (paid, shipped or delivered; not once refunded). The
// projector follows the order events for that (review_purchases), so the flag is set whichever
// comes first in the log, the review or the payment, and a rebuild gives the same flags.
type Reviews struct{}

// Name implements projections.Projector.
func (Reviews) Name() string { return ReviewsProjector }

// Tables implements projections.Projector.
func (Reviews) Tables() []string { return []string{"reviews", "review_purchases"} }

// StreamTypes implements projections.Projector.
func (Reviews) StreamTypes() []string { return []string{review.StreamType, order.StreamType} }

// reviewRow is a review's state at the end of a batch, folded from its events there. Every
// review event carries the absolute values it sets, so the fold needs no current row.
type reviewRow struct {
	id                 int64
	created, deleted   bool
	productID, userID  int64
	hasContent         bool
	rating             int
	title, text        string
	hidden             *bool
	helpful            *int64
	version            int64
	createdAt, changed time.Time
}

// purchaseRow is an order's products and paid state at the end of a batch.
type purchaseRow struct {
	id       int64
	placed   bool // the batch places it: its lines and customer are known
	userID   int64
	products []int64
	paid     bool
	version  int64
}

type fold struct {
	reviews   map[int64]*reviewRow
	revOrder  []int64
	orders    map[int64]*purchaseRow
	ordOrder  []int64
	ordersNow []int64 // orders whose paid state the batch changed
}

func (f *fold) review(id int64, e eventstore.Event) *reviewRow {
	r, ok := f.reviews[id]
	if !ok {
		r = &reviewRow{id: id}
		f.reviews[id] = r
		f.revOrder = append(f.revOrder, id)
	}
	r.version = e.Version
	return r
}

func (f *fold) order(id int64, e eventstore.Event) *purchaseRow {
	r, ok := f.orders[id]
	if !ok {
		r = &purchaseRow{id: id}
		f.orders[id] = r
		f.ordOrder = append(f.ordOrder, id)
	}
	r.version = e.Version
	return r
}

// The order events the projector reads: the others leave paid alone.
var orderEvents = map[string]bool{
	order.Placed{}.EventType(): true, order.MarkedPaid{}.EventType(): true, order.MarkedRefunded{}.EventType(): true,
}

func (f *fold) apply(e eventstore.Event) error {
	switch e.StreamType {
	case review.StreamType:
		d, err := review.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return err
		}
		f.applyReview(e, d)
	case order.StreamType:
		if !orderEvents[e.Type] {
			return nil
		}
		d, err := order.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return err
		}
		switch d := d.(type) {
		case order.Placed:
			r := f.order(d.OrderID, e)
			r.placed, r.userID, r.paid = true, d.UserID, false
			for _, l := range d.Lines {
				if !slices.Contains(r.products, l.ProductID) {
					r.products = append(r.products, l.ProductID)
				}
			}
		case order.MarkedPaid:
			f.order(d.OrderID, e).paid = true
		case order.MarkedRefunded:
			f.order(d.OrderID, e).paid = false
		}
	}
	return nil
}

func (f *fold) applyReview(e eventstore.Event, d any) {
	at := e.RecordedAt.UTC()
	switch d := d.(type) {
	case review.Created:
		r, no, zero := f.review(d.ReviewID, e), false, int64(0)
		r.created, r.productID, r.userID, r.createdAt, r.changed = true, d.ProductID, d.UserID, at, at
		r.hasContent, r.rating, r.title, r.text, r.hidden, r.helpful = true, d.Rating, d.Title, d.Text, &no, &zero
	case review.Edited:
		r := f.review(d.ReviewID, e)
		r.hasContent, r.rating, r.title, r.text, r.changed = true, d.Rating, d.Title, d.Text, at
	case review.Deleted:
		f.review(d.ReviewID, e).deleted = true
	case review.Hidden:
		r, yes := f.review(d.ReviewID, e), true
		r.hidden, r.changed = &yes, at
	case review.Unhidden:
		r, no := f.review(d.ReviewID, e), false
		r.hidden, r.changed = &no, at
	case review.MarkedHelpful:
		n := d.Helpful
		f.review(d.ReviewID, e).helpful = &n
	}
}

// Apply implements projections.Projector: at most six statements whatever the batch. Purchases
// are written first, so that a review created in the batch reads its author's payments of the
// same batch; the last statement re-derives verified_purchase for the authors and products of
// the orders whose paid state changed.
func (Reviews) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	f := &fold{reviews: map[int64]*reviewRow{}, orders: map[int64]*purchaseRow{}}
	for _, e := range batch {
		if err := f.apply(e); err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
	}
	out := f.purchaseStmts(t)
	out = append(out, f.reviewStmts(t)...)
	if len(f.ordersNow) > 0 {
		// The reviews of the batch's orders' (author, product) pairs take their flag from that
		// pair's purchases. Written so that its cost follows the reviews it touches: the pairs
		// come from the orders by primary key, each review from its (user, product) index, and
		// each flag from the pair's purchases by theirs (computed per review, never by hashing
		// every paid purchase: the first form read the whole table on every batch).
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {reviews} AS r SET verified_purchase = v.verified
			FROM (SELECT DISTINCT p.user_id, p.product_id FROM {review_purchases} p WHERE p.order_id = ANY($1::bigint[])) AS k,
				LATERAL (SELECT coalesce(bool_or(q.paid), false) AS verified FROM {review_purchases} q
					WHERE q.user_id = k.user_id AND q.product_id = k.product_id) AS v
			WHERE r.user_id = k.user_id AND r.product_id = k.product_id AND r.verified_purchase <> v.verified`),
			Args: []any{f.ordersNow}})
	}
	return out, nil
}

// purchaseStmts inserts the lines of the orders placed in the batch and updates the paid state
// of the others, under the order stream's version.
func (f *fold) purchaseStmts(t projections.Tables) []projections.Stmt {
	var (
		ins struct {
			orders, products, users, versions []int64
			paid                              []bool
		}
		upd struct {
			orders, versions []int64
			paid             []bool
		}
	)
	for _, id := range f.ordOrder {
		r := f.orders[id]
		f.ordersNow = append(f.ordersNow, id)
		if !r.placed {
			upd.orders, upd.paid, upd.versions = append(upd.orders, id), append(upd.paid, r.paid), append(upd.versions, r.version)
			continue
		}
		for _, p := range r.products {
			ins.orders, ins.products, ins.users = append(ins.orders, id), append(ins.products, p), append(ins.users, r.userID)
			ins.paid, ins.versions = append(ins.paid, r.paid), append(ins.versions, r.version)
		}
	}
	var out []projections.Stmt
	if len(ins.orders) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {review_purchases} AS p (order_id, product_id, user_id, paid, version)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bool[], $5::bigint[])
			ON CONFLICT (order_id, product_id) DO UPDATE SET paid = excluded.paid, version = excluded.version
			WHERE p.version < excluded.version`),
			Args: []any{ins.orders, ins.products, ins.users, ins.paid, ins.versions}})
	}
	if len(upd.orders) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {review_purchases} AS p SET paid = u.paid, version = u.version
			FROM unnest($1::bigint[], $2::bool[], $3::bigint[]) AS u(order_id, paid, version)
			WHERE p.order_id = u.order_id AND p.version < u.version`),
			Args: []any{upd.orders, upd.paid, upd.versions}})
	}
	return out
}

// reviewStmts deletes the deleted reviews, inserts the created ones (verified from the purchases
// already written) and updates the others.
func (f *fold) reviewStmts(t projections.Tables) []projections.Stmt {
	var (
		deleted []int64
		ins     struct {
			ids, products, users, versions []int64
			ratings                        []int32
			titles, texts                  []string
			hidden                         []bool
			helpful                        []int64
			created, changed               []time.Time
		}
		upd struct {
			ids, versions []int64
			hasContent    []bool
			ratings       []int32
			titles, texts []string
			hidden        []*bool
			helpful       []*int64
			changed       []*time.Time
		}
	)
	for _, id := range f.revOrder {
		r := f.reviews[id]
		switch {
		case r.deleted:
			deleted = append(deleted, id)
		case r.created:
			ins.ids, ins.products, ins.users, ins.versions = append(ins.ids, id), append(ins.products, r.productID),
				append(ins.users, r.userID), append(ins.versions, r.version)
			ins.ratings, ins.titles, ins.texts = append(ins.ratings, int32(r.rating)), append(ins.titles, r.title), append(ins.texts, r.text)
			ins.hidden, ins.helpful = append(ins.hidden, *r.hidden), append(ins.helpful, *r.helpful)
			ins.created, ins.changed = append(ins.created, r.createdAt), append(ins.changed, r.changed)
		default:
			upd.ids, upd.versions, upd.hasContent = append(upd.ids, id), append(upd.versions, r.version), append(upd.hasContent, r.hasContent)
			upd.ratings, upd.titles, upd.texts = append(upd.ratings, int32(r.rating)), append(upd.titles, r.title), append(upd.texts, r.text)
			upd.hidden, upd.helpful = append(upd.hidden, r.hidden), append(upd.helpful, r.helpful)
			var changed *time.Time
			if !r.changed.IsZero() {
				c := r.changed
				changed = &c
			}
			upd.changed = append(upd.changed, changed)
		}
	}
	var out []projections.Stmt
	if len(deleted) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {reviews} WHERE id = ANY($1::bigint[])`), Args: []any{deleted}})
	}
	if len(ins.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {reviews} AS r (id, user_id, product_id, rating, title, comment,
				hidden, helpful_count, verified_purchase, version, created_at, updated_at)
			SELECT u.id, u.user_id, u.product_id, u.rating, u.title, u.comment, u.hidden, u.helpful,
				EXISTS (SELECT 1 FROM {review_purchases} p WHERE p.user_id = u.user_id AND p.product_id = u.product_id AND p.paid),
				u.version, u.created_at, u.changed
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::text[], $6::text[], $7::bool[], $8::bigint[],
				$9::bigint[], $10::timestamp[], $11::timestamp[])
				AS u(id, user_id, product_id, rating, title, comment, hidden, helpful, version, created_at, changed)
			ON CONFLICT (id) DO UPDATE SET rating = excluded.rating, title = excluded.title, comment = excluded.comment,
				hidden = excluded.hidden, helpful_count = excluded.helpful_count, version = excluded.version,
				updated_at = excluded.updated_at
			WHERE r.version < excluded.version`),
			Args: []any{ins.ids, ins.users, ins.products, ins.ratings, ins.titles, ins.texts, ins.hidden, ins.helpful,
				ins.versions, ins.created, ins.changed}})
	}
	if len(upd.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {reviews} AS r SET
				rating = CASE WHEN u.has_content THEN u.rating ELSE r.rating END,
				title = CASE WHEN u.has_content THEN u.title ELSE r.title END,
				comment = CASE WHEN u.has_content THEN u.comment ELSE r.comment END,
				hidden = coalesce(u.hidden, r.hidden), helpful_count = coalesce(u.helpful, r.helpful_count),
				version = u.version, updated_at = coalesce(u.changed, r.updated_at)
			FROM unnest($1::bigint[], $2::bool[], $3::int[], $4::text[], $5::text[], $6::bool[], $7::bigint[], $8::bigint[],
				$9::timestamp[]) AS u(id, has_content, rating, title, comment, hidden, helpful, version, changed)
			WHERE r.id = u.id AND r.version < u.version`),
			Args: []any{upd.ids, upd.hasContent, upd.ratings, upd.titles, upd.texts, upd.hidden, upd.helpful,
				upd.versions, upd.changed}})
	}
	return out
}
