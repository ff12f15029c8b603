package orderproj

import (
	"fmt"
	"strings"
	"time"

	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// PromoCodes projects promo_codes: a promo's terms, its usage count and its active flag; a
// deleted promo's row is deleted. The code reservation streams (promo_code) are not read: the
// promo's own events carry its code. The usage count is counted from the orders (promo_code_uses:
// an OrderPlaced with the code takes a use, its OrderCancelled gives it back), so it is the same
// for every code, whether or not its uses are also recorded on its stream (only codes with a
// usage limit record them there, to check the limit).
type PromoCodes struct{}

// Name implements projections.Projector.
func (PromoCodes) Name() string { return PromoCodesProjector }

// Tables implements projections.Projector.
func (PromoCodes) Tables() []string { return []string{"promo_codes", "promo_code_uses"} }

// StreamTypes implements projections.Projector.
func (PromoCodes) StreamTypes() []string { return []string{promo.StreamType, order.StreamType} }

// PromoCodesChannel is the NOTIFY channel on which the promo_codes projector announces the promo
// codes a batch changed (after its commit): cart views show their discounts.
const PromoCodesChannel = "techvault_promo_codes"

// NotifyChannel implements projections.Notifier.
func (PromoCodes) NotifyChannel() string { return PromoCodesChannel }

// Notifications: the id of every promo whose stream the batch changed, once each.
func (PromoCodes) Notifications(batch []eventstore.Event) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range batch {
		if e.StreamType != promo.StreamType {
			continue
		}
		id := strings.TrimPrefix(e.StreamID, "promo-")
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// promoRow is a promo's state at the end of a batch.
type promoRow struct {
	id            int64
	created       bool // created in the batch: every column is known
	deleted       bool
	code          string
	terms         *promo.Terms // kind, value, expiry and limit set in the batch
	active        *bool        // the active flag set in the batch
	version       int64
	createdAt, at time.Time
}

type promoFold struct {
	rows  map[int64]*promoRow
	order []int64
	// uses: orders placed with a code in the batch, and orders cancelled in it.
	usedOrders, usedPromos, cancelled []int64
}

func (f *promoFold) row(id int64, e eventstore.Event) *promoRow {
	r, ok := f.rows[id]
	if !ok {
		r = &promoRow{id: id}
		f.rows[id] = r
		f.order = append(f.order, id)
	}
	r.version, r.at = e.Version, e.RecordedAt
	return r
}

func (f *promoFold) apply(e eventstore.Event, d any) {
	switch d := d.(type) {
	case promo.Created:
		r := f.row(d.PromoID, e)
		terms, active := d.Terms, d.Active
		r.created, r.code, r.terms, r.active, r.createdAt = true, d.Code, &terms, &active, e.RecordedAt
	case promo.Updated:
		r := f.row(d.PromoID, e)
		terms, active := d.Terms, d.Active
		r.terms, r.active = &terms, &active
	case promo.Expired:
		inactive := false
		f.row(d.PromoID, e).active = &inactive
	case promo.Deleted:
		f.row(d.PromoID, e).deleted = true
	case promo.Used:
		f.row(d.PromoID, e) // counted from the order (promo_code_uses)
	case promo.UseReleased:
		f.row(d.PromoID, e)
	case order.Placed:
		if d.PromoID != 0 {
			f.usedOrders, f.usedPromos = append(f.usedOrders, d.OrderID), append(f.usedPromos, d.PromoID)
		}
	case order.MarkedCancelled:
		f.cancelled = append(f.cancelled, d.OrderID)
	}
}

var (
	placedType    = (order.Placed{}).EventType()
	cancelledType = (order.MarkedCancelled{}).EventType()
)

// Apply implements projections.Projector: at most five statements whatever the batch.
func (PromoCodes) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	f := &promoFold{rows: map[int64]*promoRow{}}
	for _, e := range batch {
		var (
			d   any
			err error
		)
		switch {
		case e.StreamType == promo.StreamType:
			d, err = promo.Decode(e.Type, e.SchemaVersion, e.Data)
		case e.StreamType == order.StreamType && (e.Type == placedType || e.Type == cancelledType):
			d, err = order.Decode(e.Type, e.SchemaVersion, e.Data)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		f.apply(e, d)
	}
	var (
		deleted []int64
		ins     struct {
			ids, values, limits, versions []int64
			codes, kinds                  []string
			expires                       []*time.Time
			active                        []bool
			created, at                   []time.Time
		}
		upd struct {
			ids, values, limits, versions []int64
			termsSet                      []bool
			kinds                         []string
			expires                       []*time.Time
			active                        []*bool
			at                            []time.Time
		}
	)
	for _, id := range f.order {
		r := f.rows[id]
		switch {
		case r.deleted:
			deleted = append(deleted, id)
		case r.created:
			ins.ids, ins.codes, ins.kinds = append(ins.ids, id), append(ins.codes, strings.ToUpper(r.code)), append(ins.kinds, r.terms.Kind)
			ins.values, ins.expires, ins.limits = append(ins.values, r.terms.Value), append(ins.expires, utcPtr(r.terms.ExpiresAt)), append(ins.limits, r.terms.UsageLimit)
			ins.active, ins.versions = append(ins.active, *r.active), append(ins.versions, r.version)
			ins.created, ins.at = append(ins.created, utc(r.createdAt)), append(ins.at, utc(r.at))
		default:
			var terms promo.Terms
			if r.terms != nil {
				terms = *r.terms
			}
			upd.ids, upd.termsSet, upd.kinds = append(upd.ids, id), append(upd.termsSet, r.terms != nil), append(upd.kinds, terms.Kind)
			upd.values, upd.expires, upd.limits = append(upd.values, terms.Value), append(upd.expires, utcPtr(terms.ExpiresAt)), append(upd.limits, terms.UsageLimit)
			upd.active, upd.versions, upd.at = append(upd.active, r.active), append(upd.versions, r.version), append(upd.at, utc(r.at))
		}
	}
	var out []projections.Stmt
	if len(deleted) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {promo_codes} WHERE id = ANY($1::bigint[])`), Args: []any{deleted}})
	}
	if len(ins.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {promo_codes} AS p (id, code, kind, discount, expiration_date,
				usage_limit, usage_count, is_active, version, created_at, updated_at)
			SELECT u.id, u.code, u.kind, u.discount, u.expires, u.usage_limit, 0, u.active, u.version, u.created, u.at
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamp[], $6::bigint[],
				$7::bool[], $8::bigint[], $9::timestamp[], $10::timestamp[])
				AS u(id, code, kind, discount, expires, usage_limit, active, version, created, at)
			ON CONFLICT (id) DO UPDATE SET code = excluded.code, kind = excluded.kind, discount = excluded.discount,
				expiration_date = excluded.expiration_date, usage_limit = excluded.usage_limit,
				is_active = excluded.is_active, version = excluded.version, created_at = excluded.created_at,
				updated_at = excluded.updated_at
			WHERE p.version < excluded.version`),
			Args: []any{ins.ids, ins.codes, ins.kinds, ins.values, ins.expires, ins.limits, ins.active, ins.versions, ins.created, ins.at}})
	}
	if len(upd.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`WITH b AS (
				SELECT * FROM unnest($1::bigint[], $2::bool[], $3::text[], $4::bigint[], $5::timestamp[], $6::bigint[],
					$7::bool[], $8::bigint[], $9::timestamp[])
					AS b(id, terms_set, kind, value, expires, usage_limit, active, version, at))
			UPDATE {promo_codes} AS p SET
				kind = CASE WHEN b.terms_set THEN b.kind ELSE p.kind END,
				discount = CASE WHEN b.terms_set THEN b.value ELSE p.discount END,
				expiration_date = CASE WHEN b.terms_set THEN b.expires ELSE p.expiration_date END,
				usage_limit = CASE WHEN b.terms_set THEN b.usage_limit ELSE p.usage_limit END,
				is_active = coalesce(b.active, p.is_active),
				version = b.version, updated_at = b.at
			FROM b
			WHERE p.id = b.id AND p.version < b.version`),
			Args: []any{upd.ids, upd.termsSet, upd.kinds, upd.values, upd.expires, upd.limits, upd.active, upd.versions, upd.at}})
	}
	// Uses: an order's row is inserted once and released once, whatever batches repeat, and the
	// count moves only with the rows that changed. Takes come before releases (an order placed
	// and cancelled in one batch).
	if len(f.usedOrders) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`WITH ins AS (
				INSERT INTO {promo_code_uses} (order_id, promo_id)
				SELECT * FROM unnest($1::bigint[], $2::bigint[])
				ON CONFLICT (order_id) DO NOTHING
				RETURNING promo_id),
			n AS (SELECT promo_id, count(*) AS n FROM ins GROUP BY promo_id)
			UPDATE {promo_codes} AS p SET usage_count = p.usage_count + n.n FROM n WHERE p.id = n.promo_id`),
			Args: []any{f.usedOrders, f.usedPromos}})
	}
	if len(f.cancelled) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`WITH rel AS (
				UPDATE {promo_code_uses} SET released = true
				WHERE order_id = ANY($1::bigint[]) AND NOT released
				RETURNING promo_id),
			n AS (SELECT promo_id, count(*) AS n FROM rel GROUP BY promo_id)
			UPDATE {promo_codes} AS p SET usage_count = p.usage_count - n.n FROM n WHERE p.id = n.promo_id`),
			Args: []any{f.cancelled}})
	}
	return out, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
