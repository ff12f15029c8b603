// Package wishlistproj is the wishlist read model: the wishlist projector's apply function (pure:
// event batch → set-based SQL) and its name.
package wishlistproj

import (
	"fmt"
	"time"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/domain/wishlist"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// WishlistProjector is the projector's name: its consumer group and checkpoint key, fixed for ever.
const WishlistProjector = "wishlist"

// Wishlist projects the wishlist table (one row per user and product, whose id is the position of
// the WishlistItemAdded event) from the wishlist streams. It also follows product deletions
// without reading the products table: a deleted product leaves every wishlist, and the product
// ids it has seen deleted are kept in wishlist_deleted_products, so that an add that raced the
// deletion (decided before it, delivered after it) is never projected. An erased account's
// wishlist is removed.
type Wishlist struct{}

func (Wishlist) Name() string     { return WishlistProjector }
func (Wishlist) Tables() []string { return []string{"wishlist", "wishlist_deleted_products"} }
func (Wishlist) StreamTypes() []string {
	return []string{wishlist.StreamType, catalog.ProductStreamType, user.StreamType}
}

// SkipTypes implements projections.Skipper: of a product's events the wishlist follows only its
// deletion, so the frequent ones (every stock change and sale) are not read for it.
func (Wishlist) SkipTypes() []string {
	return []string{catalog.ProductCreated{}.EventType(), catalog.ProductUpdated{}.EventType(),
		catalog.ProductStockAdjusted{}.EventType(), catalog.ProductStockReserved{}.EventType(),
		catalog.ProductStockReleased{}.EventType()}
}

// item is a (user, product) pair's state at the end of the batch.
type item struct {
	user, product int64
	present       bool
	id            int64     // the position of the last add (present) or of the removal
	at, addedAt   time.Time // of the last event, of the last add
}

// Apply implements projections.Projector. The batch folds into each pair's final state; then one
// statement each: record the deleted products, delete the rows the batch removed or re-added,
// insert the pairs present (unless their product is deleted), drop the deleted products' and
// erased users' rows. Order in the batch does not matter for deletions: a deleted product never
// comes back, so its rows go whenever they were added.
func (Wishlist) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	var (
		items    = map[[2]int64]*item{}
		order    [][2]int64
		deleted  []int64
		erased   []int64
		deleteEv = (catalog.ProductDeleted{}).EventType()
		eraseEv  = (user.UserErased{}).EventType()
	)
	pair := func(userID, productID int64) *item {
		k := [2]int64{userID, productID}
		it, ok := items[k]
		if !ok {
			it = &item{user: userID, product: productID}
			items[k] = it
			order = append(order, k)
		}
		return it
	}
	for _, e := range batch {
		switch {
		case e.StreamType == catalog.ProductStreamType && e.Type == deleteEv:
			d, err := catalog.Decode(e.Type, e.SchemaVersion, e.Data)
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", e.Position, err)
			}
			deleted = append(deleted, d.(catalog.ProductDeleted).ProductID)
		case e.StreamType == user.StreamType && e.Type == eraseEv:
			d, err := user.Decode(e.Type, e.SchemaVersion, e.Data)
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", e.Position, err)
			}
			erased = append(erased, d.(user.UserErased).UserID)
		case e.StreamType == wishlist.StreamType:
			d, err := wishlist.Decode(e.Type, e.SchemaVersion, e.Data)
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", e.Position, err)
			}
			switch d := d.(type) {
			case wishlist.ItemAdded:
				it := pair(d.UserID, d.ProductID)
				it.present, it.id, it.at, it.addedAt = true, e.Position, e.RecordedAt.UTC(), e.RecordedAt.UTC()
			case wishlist.ItemRemoved:
				it := pair(d.UserID, d.ProductID)
				it.present, it.id, it.at = false, e.Position, e.RecordedAt.UTC()
			}
		}
	}

	var (
		out                              []projections.Stmt
		delUsers, delProducts, delBefore []int64
		insUsers, insProducts, insIDs    []int64
		insCreated                       []time.Time
	)
	for _, k := range order {
		it := items[k]
		// Rows of the pair older than its last event go: a removal, or an add that replaces an
		// earlier row (removed and added again within the batch).
		delUsers, delProducts, delBefore = append(delUsers, it.user), append(delProducts, it.product), append(delBefore, it.id)
		if it.present {
			insUsers, insProducts, insIDs = append(insUsers, it.user), append(insProducts, it.product), append(insIDs, it.id)
			insCreated = append(insCreated, it.addedAt)
		}
	}
	if len(deleted) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {wishlist_deleted_products} (product_id)
			SELECT DISTINCT unnest($1::bigint[]) ON CONFLICT DO NOTHING`), Args: []any{deleted}})
	}
	if len(delUsers) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {wishlist} AS w
			USING unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d(user_id, product_id, before)
			WHERE w.user_id = d.user_id AND w.product_id = d.product_id AND w.id < d.before`),
			Args: []any{delUsers, delProducts, delBefore}})
	}
	if len(insUsers) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {wishlist} (user_id, product_id, id, created_at, updated_at)
			SELECT u.user_id, u.product_id, u.id, u.created_at, u.created_at
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS u(user_id, product_id, id, created_at)
			WHERE NOT EXISTS (SELECT 1 FROM {wishlist_deleted_products} d WHERE d.product_id = u.product_id)
			ON CONFLICT (user_id, product_id) DO NOTHING`),
			Args: []any{insUsers, insProducts, insIDs, insCreated}})
	}
	if len(deleted) > 0 || len(erased) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {wishlist}
			WHERE product_id = ANY($1::bigint[]) OR user_id = ANY($2::bigint[])`), Args: []any{nonNil(deleted), nonNil(erased)}})
	}
	return out, nil
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// Projectors returns the wishlist's projectors.
func Projectors() []projections.Projector { return []projections.Projector{Wishlist{}} }
