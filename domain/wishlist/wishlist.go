// Package wishlist is the wishlist's domain: one list per user of the products they want, each
// at most once.
package wishlist

import (
	"fmt"
	"slices"

	"github.com/techvault/techvault/domain"
)

// StreamType of wishlists.
const StreamType = "wishlist"

// StreamID is the wishlist stream of a user.
func StreamID(userID int64) string { return fmt.Sprintf("wishlist-%d", userID) }

// MaxItems bounds the products of one wishlist.
const MaxItems = 500

// ItemAdded.v1: the user put a product on their wishlist.
type ItemAdded struct {
	UserID    int64 `json:"user_id"`
	ProductID int64 `json:"product_id"`
}

// ItemRemoved.v1: the user took a product off their wishlist.
type ItemRemoved struct {
	UserID    int64 `json:"user_id"`
	ProductID int64 `json:"product_id"`
}

func (ItemAdded) EventType() string    { return "WishlistItemAdded" }
func (ItemRemoved) EventType() string  { return "WishlistItemRemoved" }
func (ItemAdded) SchemaVersion() int   { return 1 }
func (ItemRemoved) SchemaVersion() int { return 1 }

var registry = domain.Registry{
	"WishlistItemAdded":   func() domain.Event { return &ItemAdded{} },
	"WishlistItemRemoved": func() domain.Event { return &ItemRemoved{} },
}

// Decode turns a stored wishlist event into its struct (by value).
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return registry.Decode(eventType, schemaVersion, data)
}

// State is a wishlist's whole state, as a snapshot stores it.
type State struct {
	UserID int64   `json:"user_id"`
	Items  []int64 `json:"items"` // product ids, in the order they were added
}

// SnapshotSchemaVersion is the version of State in snapshots.
const SnapshotSchemaVersion = 1

// Wishlist is a user's wishlist. It changes only by recording events.
type Wishlist struct {
	s       State
	version int64
	changes []domain.Event
}

// New returns the empty wishlist of a user who never had one.
func New(userID int64) *Wishlist { return &Wishlist{s: State{UserID: userID}} }

// Rehydrate rebuilds a wishlist from its stream (empty when the stream is).
func Rehydrate(userID int64, history []domain.Event) *Wishlist {
	w := New(userID)
	for _, e := range history {
		w.apply(e)
		w.version++
	}
	return w
}

// RehydrateFrom rebuilds a wishlist from a snapshot at version and the events after it.
func RehydrateFrom(s State, version int64, tail []domain.Event) (*Wishlist, error) {
	if s.UserID <= 0 || version <= 0 || len(s.Items) > MaxItems {
		return nil, fmt.Errorf("impossible wishlist snapshot of user %d at version %d", s.UserID, version)
	}
	sorted := slices.Clone(s.Items)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(s.Items) || (len(sorted) > 0 && sorted[0] <= 0) {
		return nil, fmt.Errorf("wishlist snapshot of user %d lists a product twice or a bad id", s.UserID)
	}
	w := &Wishlist{s: State{UserID: s.UserID, Items: slices.Clone(s.Items)}, version: version}
	for _, e := range tail {
		w.apply(e)
		w.version++
	}
	return w, nil
}

// Snapshot returns the wishlist's state.
func (w *Wishlist) Snapshot() State {
	return State{UserID: w.s.UserID, Items: slices.Clone(w.s.Items)}
}

// Accessors.
func (w *Wishlist) UserID() int64           { return w.s.UserID }
func (w *Wishlist) Items() []int64          { return slices.Clone(w.s.Items) }
func (w *Wishlist) Version() int64          { return w.version }
func (w *Wishlist) Changes() []domain.Event { return w.changes }

// Has reports whether the product is on the wishlist.
func (w *Wishlist) Has(productID int64) bool { return slices.Contains(w.s.Items, productID) }

// Product is what the wishlist needs to know of a product when it is added.
type Product struct {
	ID     int64
	Exists bool // created and not deleted
}

// Add puts a product on the wishlist. A product already there is no change (nothing is
// recorded); a product that does not exist (or no longer does) cannot be added.
func (w *Wishlist) Add(p Product) error {
	if p.ID <= 0 || !p.Exists {
		return &domain.Error{Kind: domain.ErrNotFound, Field: "product_id", Message: fmt.Sprintf("product %d not found", p.ID)}
	}
	if w.Has(p.ID) {
		return nil
	}
	if len(w.s.Items) >= MaxItems {
		return &domain.Error{Kind: domain.ErrConflict, Field: "product_id",
			Message: fmt.Sprintf("a wishlist holds at most %d products; remove one first", MaxItems)}
	}
	w.record(ItemAdded{UserID: w.s.UserID, ProductID: p.ID})
	return nil
}

// Remove takes a product off the wishlist.
func (w *Wishlist) Remove(productID int64) error {
	if !w.Has(productID) {
		return &domain.Error{Kind: domain.ErrNotFound, Field: "product_id",
			Message: fmt.Sprintf("product %d is not on your wishlist", productID)}
	}
	w.record(ItemRemoved{UserID: w.s.UserID, ProductID: productID})
	return nil
}

func (w *Wishlist) record(e domain.Event) {
	w.apply(e)
	w.changes = append(w.changes, e)
}

func (w *Wishlist) apply(e domain.Event) {
	switch e := e.(type) {
	case ItemAdded:
		if !w.Has(e.ProductID) {
			w.s.Items = append(w.s.Items, e.ProductID)
		}
	case ItemRemoved:
		w.s.Items = slices.DeleteFunc(w.s.Items, func(id int64) bool { return id == e.ProductID })
	}
}
