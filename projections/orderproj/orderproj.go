// Package orderproj is the order platform's read model: the carts projector (carts, cart_items),
// the orders projector (orders, order_items, order_status_history) and the promo_codes
// projector. Like the other read models, each Apply folds a batch per entity in Go and writes the
// fold with a fixed number of set-based statements, guarded by stream versions.
//
// Two event kinds carry deltas rather than absolute values: CartItemAdded (a line grows by a
// quantity) and PromoUsed/PromoUseReleased (the usage count moves by one). Their statements add
// only the deltas whose stream version is above the row's version, so a delta is never counted
// twice, whatever batch it arrives in.
package orderproj

import (
	"time"

	"github.com/techvault/techvault/projections"
)

// Projector names: consumer groups and checkpoint keys, fixed for ever.
const (
	CartsProjector      = "carts"
	OrdersProjector     = "orders"
	PromoCodesProjector = "promo_codes"
)

// Projectors returns the read model's projectors, in a stable order.
func Projectors() []projections.Projector {
	return []projections.Projector{Carts{}, Orders{}, PromoCodes{}}
}

// delta is one relative change of a counter (a cart line's quantity, a promo's usage count) at
// a stream version.
type delta struct {
	version, by int64
}

// deltaArgs flattens the deltas of a fold into parallel arrays: key columns, version, amount.
type deltaArgs struct {
	keys1, keys2, versions, amounts []int64
}

func (d *deltaArgs) add(k1, k2 int64, ds []delta) {
	for _, x := range ds {
		d.keys1, d.keys2 = append(d.keys1, k1), append(d.keys2, k2)
		d.versions, d.amounts = append(d.versions, x.version), append(d.amounts, x.by)
	}
}

func utc(t time.Time) time.Time { return t.UTC() }
