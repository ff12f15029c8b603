package orderproj

import (
	"fmt"
	"strings"
	"time"

	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// Carts projects carts (one row per user, with the applied promo) and cart_items (one row per
// line, remembering the unit price it was added at). A cart row stays after a checkout, empty.
type Carts struct{}

// Name implements projections.Projector.
func (Carts) Name() string { return CartsProjector }

// Tables implements projections.Projector.
func (Carts) Tables() []string { return []string{"carts", "cart_items"} }

// StreamTypes implements projections.Projector.
func (Carts) StreamTypes() []string { return []string{cart.StreamType} }

// CartsChannel is the NOTIFY channel on which the carts projector announces the users whose cart
// a batch changed (after its commit), for the in-process cart caches.
const CartsChannel = "techvault_carts"

// NotifyChannel implements projections.Notifier.
func (Carts) NotifyChannel() string { return CartsChannel }

// Notifications are the ids of the users whose cart a batch changed.
func (Carts) Notifications(batch []eventstore.Event) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range batch {
		id, ok := strings.CutPrefix(e.StreamID, "cart-")
		if e.StreamType == cart.StreamType && ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// cartRow is a cart's state at the end of a batch.
type cartRow struct {
	id            int64
	promoSet      bool // the batch applied or removed the promo (nil: removed)
	promoID       *int64
	code          *string
	reset         int64 // version of the last CartCleared or CartCheckedOut of the batch (0: none)
	version       int64
	createdAt, at time.Time // createdAt: the batch's first event (used only if the row is new)
	lines         []lineKey
}

type lineKey struct{ cart, product int64 }

// lineState is what the batch says of a line's row.
type lineState int

const (
	// lineUnknown: no event of the batch told yet whether the row existed before it.
	lineUnknown lineState = iota
	lineAbsent
	linePresent
)

// lineRow is a cart line's state at the end of a batch. A line whose first event in the batch
// is a CartItemAdded either creates the row or grows it: the fold keeps both readings (newID,
// price, createdAt for the insert; the added quantities for the update) and SQL picks the one
// that matches the table.
type lineRow struct {
	key       lineKey
	state     lineState
	reset     bool   // removed (or the cart emptied) in the batch: the row at its start no longer counts
	newID     int64  // position of the CartItemAdded that creates the row if it does not exist (0: none)
	price     int64  // remembered unit price (cents), with newID
	name      string // the product's name when added, with newID
	createdAt time.Time
	qty       int64 // the quantity: absolute when qtyKnown, else the sum of adds
	qtyKnown  bool  // a removal, a reset or a CartQuantityChanged fixed it in the batch
	repriced  bool  // a CartLinePriceUpdated set price in the batch
	adds      []delta
	version   int64
	at        time.Time
}

type cartFold struct {
	carts     map[int64]*cartRow
	cartOrder []int64
	lines     map[lineKey]*lineRow
	lineOrder []lineKey
}

func (f *cartFold) cart(id int64, e eventstore.Event) *cartRow {
	c, ok := f.carts[id]
	if !ok {
		c = &cartRow{id: id, createdAt: e.RecordedAt}
		f.carts[id] = c
		f.cartOrder = append(f.cartOrder, id)
	}
	c.version, c.at = e.Version, e.RecordedAt
	return c
}

func (f *cartFold) line(c *cartRow, productID int64, e eventstore.Event) *lineRow {
	k := lineKey{cart: c.id, product: productID}
	l, ok := f.lines[k]
	if !ok {
		l = &lineRow{key: k}
		if c.reset > 0 { // the cart was emptied earlier in the batch: the line starts absent
			l.state, l.reset, l.qtyKnown = lineAbsent, true, true
		}
		f.lines[k] = l
		f.lineOrder = append(f.lineOrder, k)
		c.lines = append(c.lines, k)
	}
	l.version, l.at = e.Version, e.RecordedAt
	return l
}

// remove marks a line gone as of the current event.
func (l *lineRow) remove() {
	l.state, l.reset, l.qty, l.qtyKnown, l.adds, l.newID = lineAbsent, true, 0, true, nil, 0
}

func (f *cartFold) apply(e eventstore.Event, d any) {
	switch d := d.(type) {
	case cart.ItemAdded:
		l := f.line(f.cart(d.UserID, e), d.ProductID, e)
		switch l.state {
		case lineAbsent, lineUnknown:
			if l.state == lineUnknown {
				l.adds = []delta{{version: e.Version, by: d.Quantity}}
			} else {
				l.qtyKnown = true
			}
			l.state, l.qty = linePresent, d.Quantity
			l.newID, l.price, l.name, l.createdAt = e.Position, d.UnitPrice.Cents(), d.Name, e.RecordedAt
		case linePresent:
			l.qty += d.Quantity
			if !l.qtyKnown {
				l.adds = append(l.adds, delta{version: e.Version, by: d.Quantity})
			}
		}
	case cart.QuantityChanged:
		l := f.line(f.cart(d.UserID, e), d.ProductID, e)
		l.state, l.qty, l.qtyKnown, l.adds = linePresent, d.Quantity, true, nil
	case cart.LinePriceUpdated:
		l := f.line(f.cart(d.UserID, e), d.ProductID, e)
		if l.state == lineUnknown {
			l.state = linePresent // the line exists: only a present line is repriced
		}
		l.price, l.repriced = d.NewPrice.Cents(), true
	case cart.ItemRemoved:
		f.line(f.cart(d.UserID, e), d.ProductID, e).remove()
	case cart.Cleared:
		f.empty(f.cart(d.UserID, e), e)
	case cart.CheckedOut:
		f.empty(f.cart(d.UserID, e), e)
	case cart.PromoApplied:
		c := f.cart(d.UserID, e)
		id, code := d.PromoID, d.Code
		c.promoSet, c.promoID, c.code = true, &id, &code
	case cart.PromoRemoved:
		c := f.cart(d.UserID, e)
		c.promoSet, c.promoID, c.code = true, nil, nil
	}
}

// empty removes every line of the cart and its promo (a clear or a checkout).
func (f *cartFold) empty(c *cartRow, e eventstore.Event) {
	c.reset = e.Version
	c.promoSet, c.promoID, c.code = true, nil, nil
	for _, k := range c.lines {
		l := f.lines[k]
		l.remove()
		l.version, l.at = e.Version, e.RecordedAt
	}
}

// Apply implements projections.Projector: at most six statements whatever the batch.
func (Carts) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	f := &cartFold{carts: map[int64]*cartRow{}, lines: map[lineKey]*lineRow{}}
	for _, e := range batch {
		if e.StreamType != cart.StreamType {
			continue
		}
		d, err := cart.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		f.apply(e, d)
	}
	var out []projections.Stmt
	out = append(out, f.lineStmts(t)...)
	out = append(out, f.cartStmts(t)...)
	return out, nil
}

// lineStmts writes the lines: rows of emptied carts and removed lines go (unless a later version
// is already there), lines (re)created after a removal are written whole, and the other lines
// are updated if their row exists or inserted if it does not.
func (f *cartFold) lineStmts(t projections.Tables) []projections.Stmt {
	var (
		resetCarts, resetVersions []int64
		del                       struct{ carts, products, versions []int64 }
		full                      struct {
			ids, carts, products, qtys, prices, versions []int64
			names                                        []string
			created, at                                  []time.Time
		}
		upd struct {
			carts, products, qtys, versions []int64
			known                           []bool
			prices                          []*int64
			at                              []time.Time
		}
		ins struct {
			ids, carts, products, qtys, prices, versions []int64
			names                                        []string
			created, at                                  []time.Time
		}
		adds deltaArgs
	)
	for _, id := range f.cartOrder {
		if c := f.carts[id]; c.reset > 0 {
			resetCarts, resetVersions = append(resetCarts, id), append(resetVersions, c.reset)
		}
	}
	for _, k := range f.lineOrder {
		l := f.lines[k]
		switch {
		case l.state == lineAbsent:
			del.carts, del.products, del.versions = append(del.carts, k.cart), append(del.products, k.product), append(del.versions, l.version)
		case l.reset && l.newID != 0:
			full.ids, full.carts, full.products = append(full.ids, l.newID), append(full.carts, k.cart), append(full.products, k.product)
			full.qtys, full.prices, full.versions = append(full.qtys, l.qty), append(full.prices, l.price), append(full.versions, l.version)
			full.names = append(full.names, l.name)
			full.created, full.at = append(full.created, utc(l.createdAt)), append(full.at, utc(l.at))
		case l.state == linePresent:
			upd.carts, upd.products, upd.qtys = append(upd.carts, k.cart), append(upd.products, k.product), append(upd.qtys, l.qty)
			upd.known, upd.versions, upd.at = append(upd.known, l.qtyKnown), append(upd.versions, l.version), append(upd.at, utc(l.at))
			var price *int64
			if l.repriced {
				price = &l.price
			}
			upd.prices = append(upd.prices, price)
			if !l.qtyKnown {
				adds.add(k.cart, k.product, l.adds)
			}
			if l.newID != 0 {
				ins.ids, ins.carts, ins.products = append(ins.ids, l.newID), append(ins.carts, k.cart), append(ins.products, k.product)
				ins.qtys, ins.prices, ins.versions = append(ins.qtys, l.qty), append(ins.prices, l.price), append(ins.versions, l.version)
				ins.names = append(ins.names, l.name)
				ins.created, ins.at = append(ins.created, utc(l.createdAt)), append(ins.at, utc(l.at))
			}
		}
	}
	var out []projections.Stmt
	if len(resetCarts) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {cart_items} AS ci
			USING unnest($1::bigint[], $2::bigint[]) AS r(cart_id, version)
			WHERE ci.cart_id = r.cart_id AND ci.version < r.version`), Args: []any{resetCarts, resetVersions}})
	}
	if len(del.carts) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {cart_items} AS ci
			USING unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(cart_id, product_id, version)
			WHERE ci.cart_id = d.cart_id AND ci.product_id = d.product_id AND ci.version < d.version`),
			Args: []any{del.carts, del.products, del.versions}})
	}
	if len(full.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {cart_items} AS ci
				(id, cart_id, product_id, quantity, unit_price, version, created_at, updated_at, name)
			SELECT u.id, u.cart_id, u.product_id, u.quantity, u.price::numeric / 100, u.version, u.created_at, u.at, u.name
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
				$7::timestamp[], $8::timestamp[], $9::text[]) AS u(id, cart_id, product_id, quantity, price, version, created_at, at, name)
			ON CONFLICT (cart_id, product_id) DO UPDATE SET id = excluded.id, quantity = excluded.quantity,
				unit_price = excluded.unit_price, version = excluded.version, created_at = excluded.created_at,
				updated_at = excluded.updated_at, name = excluded.name
			WHERE ci.version < excluded.version`),
			Args: []any{full.ids, full.carts, full.products, full.qtys, full.prices, full.versions, full.created, full.at, full.names}})
	}
	if len(upd.carts) > 0 {
		// A relative line adds the quantities added after the row's version; an absolute one
		// takes its quantity. A repriced line takes its new price.
		out = append(out, projections.Stmt{SQL: t.Sub(`WITH b AS (
				SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::bigint[], $5::bigint[], $6::timestamp[], $11::bigint[])
					AS b(cart_id, product_id, known, quantity, version, at, price)),
			a AS (
				SELECT * FROM unnest($7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[]) AS a(cart_id, product_id, version, by)),
			s AS (
				SELECT ci.cart_id, ci.product_id, sum(a.by)::bigint AS by
				FROM {cart_items} ci JOIN a ON a.cart_id = ci.cart_id AND a.product_id = ci.product_id AND a.version > ci.version
				GROUP BY ci.cart_id, ci.product_id)
			UPDATE {cart_items} AS ci SET
				quantity = CASE WHEN b.known THEN b.quantity ELSE ci.quantity + coalesce(s.by, 0) END,
				unit_price = coalesce(b.price::numeric / 100, ci.unit_price),
				version = b.version, updated_at = b.at
			FROM b LEFT JOIN s ON s.cart_id = b.cart_id AND s.product_id = b.product_id
			WHERE ci.cart_id = b.cart_id AND ci.product_id = b.product_id AND ci.version < b.version`),
			Args: []any{upd.carts, upd.products, upd.known, upd.qtys, upd.versions, upd.at,
				adds.keys1, adds.keys2, adds.versions, adds.amounts, upd.prices}})
	}
	if len(ins.ids) > 0 {
		// Lines whose first event in the batch added them and whose row did not exist: the add
		// created them.
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {cart_items}
				(id, cart_id, product_id, quantity, unit_price, version, created_at, updated_at, name)
			SELECT u.id, u.cart_id, u.product_id, u.quantity, u.price::numeric / 100, u.version, u.created_at, u.at, u.name
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
				$7::timestamp[], $8::timestamp[], $9::text[]) AS u(id, cart_id, product_id, quantity, price, version, created_at, at, name)
			ON CONFLICT (cart_id, product_id) DO NOTHING`),
			Args: []any{ins.ids, ins.carts, ins.products, ins.qtys, ins.prices, ins.versions, ins.created, ins.at, ins.names}})
	}
	return out
}

// cartStmts inserts new carts and updates the others (the promo only where the batch set it).
func (f *cartFold) cartStmts(t projections.Tables) []projections.Stmt {
	if len(f.cartOrder) == 0 {
		return nil
	}
	var (
		ids, versions     []int64
		promoSet          []bool
		promoIDs          []*int64
		codes             []*string
		created, updateAt []time.Time
	)
	for _, id := range f.cartOrder {
		c := f.carts[id]
		ids, versions, promoSet = append(ids, id), append(versions, c.version), append(promoSet, c.promoSet)
		promoIDs, codes = append(promoIDs, c.promoID), append(codes, c.code)
		created, updateAt = append(created, utc(c.createdAt)), append(updateAt, utc(c.at))
	}
	return []projections.Stmt{{SQL: t.Sub(`WITH b AS (
			SELECT * FROM unnest($1::bigint[], $2::bool[], $3::bigint[], $4::text[], $5::bigint[], $6::timestamp[], $7::timestamp[])
				AS b(id, promo_set, promo_id, code, version, created_at, at)),
		ins AS (
			INSERT INTO {carts} (id, user_id, promo_id, promo_code, version, created_at, updated_at)
			SELECT b.id, b.id, b.promo_id, left(b.code, 50), b.version, b.created_at, b.at FROM b
			ON CONFLICT (id) DO NOTHING)
		UPDATE {carts} AS c SET
			promo_id = CASE WHEN b.promo_set THEN b.promo_id ELSE c.promo_id END,
			promo_code = CASE WHEN b.promo_set THEN left(b.code, 50) ELSE c.promo_code END,
			version = b.version, updated_at = b.at
		FROM b WHERE c.id = b.id AND c.version < b.version`),
		Args: []any{ids, promoSet, promoIDs, codes, versions, created, updateAt}}}
}
