package orderproj

import (
	"fmt"
	"strings"
	"time"

	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// PromoCodes projects promo_codes: a promo's terms, its usage count (uses taken by orders minus
// uses given back by cancellations) and its active flag; a deleted promo's row is deleted. The
// code reservation streams (promo_code) are not read: the promo's own events carry its code.
type PromoCodes struct{}

// Name implements projections.Projector.
func (PromoCodes) Name() string { return PromoCodesProjector }

// Tables implements projections.Projector.
func (PromoCodes) Tables() []string { return []string{"promo_codes"} }

// StreamTypes implements projections.Projector.
func (PromoCodes) StreamTypes() []string { return []string{promo.StreamType} }

// PromoCodesChannel is the NOTIFY channel on which the promo_codes projector announces that a
// batch changed promo codes (after its commit): cart views show their discounts.
const PromoCodesChannel = "techvault_promo_codes"

// NotifyChannel implements projections.Notifier.
func (PromoCodes) NotifyChannel() string { return PromoCodesChannel }

// Notifications: one "changed" per batch that changed a code (carts re-read them all).
func (PromoCodes) Notifications(batch []eventstore.Event) []string {
	for _, e := range batch {
		if e.StreamType == promo.StreamType {
			return []string{"changed"}
		}
	}
	return nil
}

// promoRow is a promo's state at the end of a batch.
type promoRow struct {
	id            int64
	created       bool // created in the batch: every column is known
	deleted       bool
	code          string
	terms         *promo.Terms // kind, value, expiry and limit set in the batch
	active        *bool        // the active flag set in the batch
	usage         int64        // uses taken minus uses released in the batch
	uses          []delta
	version       int64
	createdAt, at time.Time
}

type promoFold struct {
	rows  map[int64]*promoRow
	order []int64
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
		r.usage, r.uses = 0, nil
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
		r := f.row(d.PromoID, e)
		r.usage++
		r.uses = append(r.uses, delta{version: e.Version, by: 1})
	case promo.UseReleased:
		r := f.row(d.PromoID, e)
		r.usage--
		r.uses = append(r.uses, delta{version: e.Version, by: -1})
	}
}

// Apply implements projections.Projector: at most three statements whatever the batch.
func (PromoCodes) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	f := &promoFold{rows: map[int64]*promoRow{}}
	for _, e := range batch {
		if e.StreamType != promo.StreamType {
			continue
		}
		d, err := promo.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		f.apply(e, d)
	}
	var (
		deleted []int64
		ins     struct {
			ids, values, limits, usage, versions []int64
			codes, kinds                         []string
			expires                              []*time.Time
			active                               []bool
			created, at                          []time.Time
		}
		upd struct {
			ids, values, limits, versions []int64
			termsSet                      []bool
			kinds                         []string
			expires                       []*time.Time
			active                        []*bool
			at                            []time.Time
		}
		uses deltaArgs
	)
	for _, id := range f.order {
		r := f.rows[id]
		switch {
		case r.deleted:
			deleted = append(deleted, id)
		case r.created:
			ins.ids, ins.codes, ins.kinds = append(ins.ids, id), append(ins.codes, strings.ToUpper(r.code)), append(ins.kinds, r.terms.Kind)
			ins.values, ins.expires, ins.limits = append(ins.values, r.terms.Value), append(ins.expires, utcPtr(r.terms.ExpiresAt)), append(ins.limits, r.terms.UsageLimit)
			ins.active, ins.usage, ins.versions = append(ins.active, *r.active), append(ins.usage, r.usage), append(ins.versions, r.version)
			ins.created, ins.at = append(ins.created, utc(r.createdAt)), append(ins.at, utc(r.at))
		default:
			var terms promo.Terms
			if r.terms != nil {
				terms = *r.terms
			}
			upd.ids, upd.termsSet, upd.kinds = append(upd.ids, id), append(upd.termsSet, r.terms != nil), append(upd.kinds, terms.Kind)
			upd.values, upd.expires, upd.limits = append(upd.values, terms.Value), append(upd.expires, utcPtr(terms.ExpiresAt)), append(upd.limits, terms.UsageLimit)
			upd.active, upd.versions, upd.at = append(upd.active, r.active), append(upd.versions, r.version), append(upd.at, utc(r.at))
			uses.add(id, 0, r.uses)
		}
	}
	var out []projections.Stmt
	if len(deleted) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {promo_codes} WHERE id = ANY($1::bigint[])`), Args: []any{deleted}})
	}
	if len(ins.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {promo_codes} AS p (id, code, kind, discount, expiration_date,
				usage_limit, usage_count, is_active, version, created_at, updated_at)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamp[], $6::bigint[], $7::bigint[],
				$8::bool[], $9::bigint[], $10::timestamp[], $11::timestamp[])
			ON CONFLICT (id) DO UPDATE SET code = excluded.code, kind = excluded.kind, discount = excluded.discount,
				expiration_date = excluded.expiration_date, usage_limit = excluded.usage_limit, usage_count = excluded.usage_count,
				is_active = excluded.is_active, version = excluded.version, created_at = excluded.created_at,
				updated_at = excluded.updated_at
			WHERE p.version < excluded.version`),
			Args: []any{ins.ids, ins.codes, ins.kinds, ins.values, ins.expires, ins.limits, ins.usage, ins.active, ins.versions, ins.created, ins.at}})
	}
	if len(upd.ids) > 0 {
		// The usage count adds the uses recorded after the row's version.
		out = append(out, projections.Stmt{SQL: t.Sub(`WITH b AS (
				SELECT * FROM unnest($1::bigint[], $2::bool[], $3::text[], $4::bigint[], $5::timestamp[], $6::bigint[],
					$7::bool[], $8::bigint[], $9::timestamp[])
					AS b(id, terms_set, kind, value, expires, usage_limit, active, version, at)),
			a AS (SELECT * FROM unnest($10::bigint[], $11::bigint[], $12::bigint[]) AS a(id, version, by)),
			s AS (
				SELECT p.id, sum(a.by)::bigint AS by
				FROM {promo_codes} p JOIN a ON a.id = p.id AND a.version > p.version GROUP BY p.id)
			UPDATE {promo_codes} AS p SET
				kind = CASE WHEN b.terms_set THEN b.kind ELSE p.kind END,
				discount = CASE WHEN b.terms_set THEN b.value ELSE p.discount END,
				expiration_date = CASE WHEN b.terms_set THEN b.expires ELSE p.expiration_date END,
				usage_limit = CASE WHEN b.terms_set THEN b.usage_limit ELSE p.usage_limit END,
				is_active = coalesce(b.active, p.is_active),
				usage_count = p.usage_count + coalesce(s.by, 0),
				version = b.version, updated_at = b.at
			FROM b LEFT JOIN s ON s.id = b.id
			WHERE p.id = b.id AND p.version < b.version`),
			Args: []any{upd.ids, upd.termsSet, upd.kinds, upd.values, upd.expires, upd.limits, upd.active, upd.versions, upd.at,
				uses.keys1, uses.versions, uses.amounts}})
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
