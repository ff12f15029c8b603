package orderproj

import (
	"fmt"
	"math"
	"time"

	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// ItemIDsPerOrder spaces the ids of order_items: a line's id is order id × ItemIDsPerOrder + its
// index in OrderPlaced (an order has at most cart.MaxLines lines).
const ItemIDsPerOrder = 1000

// Orders projects orders, order_items and order_status_history. The order's copy of the address
// arrives sealed and is opened with the customer's key inside Postgres (pii_open over
// user_keys), so it is empty for an erased customer; the projector also follows UserErased (the
// only user event it reads) to empty the addresses of orders projected before the erasure.
type Orders struct{}

// Name implements projections.Projector.
func (Orders) Name() string { return OrdersProjector }

// Tables implements projections.Projector.
func (Orders) Tables() []string { return []string{"orders", "order_items", "order_status_history"} }

// StreamTypes implements projections.Projector.
func (Orders) StreamTypes() []string { return []string{order.StreamType, user.StreamType} }

// orderRow is an order's state at the end of a batch.
type orderRow struct {
	id            int64
	placed        *order.Placed
	status        *string
	intent        *string
	paidAt        *time.Time
	version       int64
	createdAt, at time.Time
}

type history struct {
	orders, positions []int64
	statuses          []string
	at                []time.Time
}

type orderFold struct {
	rows    map[int64]*orderRow
	order   []int64
	history history
	erased  []int64
}

func (f *orderFold) row(id int64, e eventstore.Event) *orderRow {
	r, ok := f.rows[id]
	if !ok {
		r = &orderRow{id: id}
		f.rows[id] = r
		f.order = append(f.order, id)
	}
	r.version, r.at = e.Version, e.RecordedAt
	return r
}

// setStatus records a status change of the order and its history entry.
func (f *orderFold) setStatus(r *orderRow, status string, e eventstore.Event) {
	r.status = &status
	f.history.orders, f.history.positions = append(f.history.orders, r.id), append(f.history.positions, e.Position)
	f.history.statuses, f.history.at = append(f.history.statuses, status), append(f.history.at, utc(e.RecordedAt))
}

func (f *orderFold) apply(e eventstore.Event, d any) error {
	switch d := d.(type) {
	case order.Placed:
		if d.OrderID < 0 || d.OrderID > math.MaxInt64/ItemIDsPerOrder-1 || len(d.Lines) > ItemIDsPerOrder {
			return fmt.Errorf("order %d with %d lines: its item ids do not fit", d.OrderID, len(d.Lines))
		}
		r := f.row(d.OrderID, e)
		r.placed, r.createdAt = &d, e.RecordedAt
		f.setStatus(r, order.PendingPayment, e)
	case order.PaymentRequested:
		id := d.IntentID
		f.row(d.OrderID, e).intent = &id
	case order.PaymentFailed:
		f.row(d.OrderID, e)
	case order.MarkedPaid:
		r := f.row(d.OrderID, e)
		id, at := d.IntentID, e.RecordedAt.UTC()
		if id != "" { // an order paid as placed (nothing to charge) has no intent
			r.intent = &id
		}
		r.paidAt = &at
		f.setStatus(r, order.Paid, e)
	case order.MarkedShipped:
		f.setStatus(f.row(d.OrderID, e), order.Shipped, e)
	case order.MarkedDelivered:
		f.setStatus(f.row(d.OrderID, e), order.Delivered, e)
	case order.MarkedCancelled:
		f.setStatus(f.row(d.OrderID, e), order.Cancelled, e)
	case order.MarkedRefunded:
		f.setStatus(f.row(d.OrderID, e), order.Refunded, e)
	case order.StripeEventIgnored:
		f.row(d.OrderID, e)
	case user.UserErased:
		f.erased = append(f.erased, d.UserID)
	}
	return nil
}

// Apply implements projections.Projector: at most four statements whatever the batch.
func (Orders) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	f := &orderFold{rows: map[int64]*orderRow{}}
	erasedType := (user.UserErased{}).EventType()
	for _, e := range batch {
		var (
			d   any
			err error
		)
		switch {
		case e.StreamType == order.StreamType:
			d, err = order.Decode(e.Type, e.SchemaVersion, e.Data)
		case e.StreamType == user.StreamType && e.Type == erasedType:
			d, err = user.Decode(e.Type, e.SchemaVersion, e.Data)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		if err := f.apply(e, d); err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
	}
	var out []projections.Stmt
	out = append(out, f.orderStmts(t)...)
	if len(f.history.orders) > 0 {
		h := f.history
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {order_status_history} (order_id, position, status, at)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamp[])
			ON CONFLICT (order_id, position) DO NOTHING`), Args: []any{h.orders, h.positions, h.statuses, h.at}})
	}
	if len(f.erased) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {orders} SET city = '', post_code = '', country = ''
			WHERE user_id = ANY($1::bigint[]) AND (city <> '' OR post_code <> '' OR country <> '')`), Args: []any{f.erased}})
	}
	return out, nil
}

// open is the SQL of a sealed column's plaintext (empty once the key is gone), cut to width.
func open(col string, width int) string {
	return fmt.Sprintf("left(coalesce(pii_open(%s, b.key), ''), %d)", col, width)
}

// orderStmts inserts the orders placed in the batch (with their final status) and their items,
// and updates the others.
func (f *orderFold) orderStmts(t projections.Tables) []projections.Stmt {
	if len(f.order) == 0 {
		return nil
	}
	var (
		o struct {
			ids, users, totals, subtotals, discounts, addressIDs, versions []int64
			placed                                                         []bool
			currencies, cities, postCodes, countries                       []string
			promoIDs                                                       []*int64
			codes, statuses, intents                                       []*string
			paidAt                                                         []*time.Time
			created, at                                                    []time.Time
		}
		it struct {
			ids, orders, products, qtys, prices, totals []int64
			names                                       []string
			at                                          []time.Time
		}
	)
	for _, id := range f.order {
		r := f.rows[id]
		o.ids, o.versions, o.placed = append(o.ids, id), append(o.versions, r.version), append(o.placed, r.placed != nil)
		o.statuses, o.intents, o.paidAt = append(o.statuses, r.status), append(o.intents, r.intent), append(o.paidAt, r.paidAt)
		o.at = append(o.at, utc(r.at))
		var p order.Placed
		var promoID *int64
		var code *string
		if r.placed != nil {
			p = *r.placed
			if p.PromoID != 0 {
				promoID, code = &p.PromoID, &p.PromoCode
			}
			for i, l := range p.Lines {
				it.ids, it.orders, it.products = append(it.ids, id*ItemIDsPerOrder+int64(i)), append(it.orders, id), append(it.products, l.ProductID)
				it.qtys, it.prices, it.totals = append(it.qtys, l.Quantity), append(it.prices, l.UnitPrice.Cents()), append(it.totals, l.Total.Cents())
				it.names, it.at = append(it.names, l.Name), append(it.at, utc(r.createdAt))
			}
		}
		o.users, o.totals, o.subtotals = append(o.users, p.UserID), append(o.totals, p.Total.Cents()), append(o.subtotals, p.Subtotal.Cents())
		o.discounts, o.addressIDs, o.currencies = append(o.discounts, p.Discount.Cents()), append(o.addressIDs, p.AddressID), append(o.currencies, p.Currency)
		o.promoIDs, o.codes = append(o.promoIDs, promoID), append(o.codes, code)
		o.cities, o.postCodes, o.countries = append(o.cities, p.Address.City), append(o.postCodes, p.Address.PostCode), append(o.countries, p.Address.Country)
		o.created = append(o.created, utc(r.createdAt))
	}
	out := []projections.Stmt{{SQL: t.Sub(`WITH b AS (
			SELECT b.*, k.key FROM unnest($1::bigint[], $2::bool[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
				$7::text[], $8::bigint[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[],
				$15::text[], $16::timestamp[], $17::bigint[], $18::timestamp[], $19::timestamp[])
				AS b(id, placed, user_id, total, subtotal, discount, currency, promo_id, promo_code, address_id,
					city, post_code, country, status, intent, paid_at, version, created_at, at)
			LEFT JOIN user_keys k ON k.user_id = b.user_id),
		ins AS (
			INSERT INTO {orders} (id, user_id, total_amount, order_date, address_id, status, subtotal, discount, currency,
				promo_id, promo_code, city, post_code, country, payment_intent_id, paid_at, version, created_at, updated_at)
			SELECT b.id, b.user_id, b.total::numeric / 100, b.created_at, b.address_id, b.status, b.subtotal::numeric / 100,
				b.discount::numeric / 100, b.currency, b.promo_id, left(b.promo_code, 50), ` + open("b.city", 100) + `,
				` + open("b.post_code", 20) + `, ` + open("b.country", 20) + `, b.intent, b.paid_at, b.version, b.created_at, b.at
			FROM b WHERE b.placed
			ON CONFLICT (id) DO NOTHING)
		UPDATE {orders} AS o SET status = coalesce(b.status, o.status),
			payment_intent_id = coalesce(b.intent, o.payment_intent_id), paid_at = coalesce(b.paid_at, o.paid_at),
			version = b.version, updated_at = b.at
		FROM b WHERE NOT b.placed AND o.id = b.id AND o.version < b.version`),
		Args: []any{o.ids, o.placed, o.users, o.totals, o.subtotals, o.discounts, o.currencies, o.promoIDs, o.codes,
			o.addressIDs, o.cities, o.postCodes, o.countries, o.statuses, o.intents, o.paidAt, o.versions, o.created, o.at}}}
	if len(it.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {order_items}
				(id, quantity, price, order_id, product_id, name, total, created_at, updated_at)
			SELECT i.id, i.quantity, i.price::numeric / 100, i.order_id, i.product_id, left(i.name, 255),
				i.total::numeric / 100, i.at, i.at
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::bigint[],
				$8::timestamp[]) AS i(id, order_id, product_id, quantity, price, name, total, at)
			ON CONFLICT (id) DO NOTHING`),
			Args: []any{it.ids, it.orders, it.products, it.qtys, it.prices, it.names, it.totals, it.at}})
	}
	return out
}
