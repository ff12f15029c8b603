package commands

import (
	"context"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/wishlist"
)

// Wishlists handles the wishlist commands: one wishlist stream per user.
type Wishlists struct {
	store EventStore
	load  loader
}

// NewWishlists returns the wishlist commands.
func NewWishlists(store EventStore, opts ...Option) *Wishlists {
	rs := resilientStore{store}
	l := newLoader(rs, resilientSnapshots(store), opts)
	return &Wishlists{store: l.observe(rs), load: l}
}

var wishlistKind = aggregateKind[*wishlist.Wishlist, wishlist.State]{
	name: "wishlist", streamID: wishlist.StreamID, streamType: wishlist.StreamType,
	schemaVersion: wishlist.SnapshotSchemaVersion, decode: wishlist.Decode,
	rehydrate: nil, rehydrateFrom: wishlist.RehydrateFrom,
	snapshot: (*wishlist.Wishlist).Snapshot, stateID: func(s wishlist.State) int64 { return s.UserID },
}

func (h *Wishlists) loadWishlist(ctx context.Context, userID int64) (*wishlist.Wishlist, error) {
	k := wishlistKind
	k.rehydrate = func(history []domain.Event) *wishlist.Wishlist { return wishlist.Rehydrate(userID, history) }
	return loadAggregate(ctx, h.load, k, userID)
}

func wishlistChange(w *wishlist.Wishlist) Change {
	return Change{StreamID: wishlist.StreamID(w.UserID()), StreamType: wishlist.StreamType, ExpectedVersion: w.Version(), Events: w.Changes()}
}

// WishlistResult is what a wishlist command did: Changed is false when the wishlist already was
// as asked (a product added twice); Position is then 0.
type WishlistResult struct {
	UserID    int64
	ProductID int64
	Changed   bool
	Position  int64
}

func (r WishlistResult) withPosition(pos int64) WishlistResult { r.Position = pos; return r }

// AddToWishlist puts a product that exists on the user's wishlist; adding it again changes
// nothing. The product is read from its stream, not referenced there: an add that races the
// product's deletion is appended, and the wishlist projector, which has seen the deletion,
// leaves it out (as it takes a deleted product off every wishlist).
func (h *Wishlists) AddToWishlist(ctx context.Context, md domain.Metadata, userID, productID int64) (WishlistResult, error) {
	return execute(ctx, h.store, md, "AddToWishlist", redecideOnConflict, WishlistResult.withPosition,
		func(ctx context.Context) (WishlistResult, []Change, error) {
			if err := ensureAccount(ctx, h.load, userID); err != nil {
				return WishlistResult{}, nil, err
			}
			p, err := loadAggregate(ctx, h.load, productKind, productID)
			if err != nil {
				return WishlistResult{}, nil, err
			}
			w, err := h.loadWishlist(ctx, userID)
			if err != nil {
				return WishlistResult{}, nil, err
			}
			if err := w.Add(wishlist.Product{ID: productID, Exists: p.Exists()}); err != nil {
				return WishlistResult{}, nil, err
			}
			return WishlistResult{UserID: userID, ProductID: productID, Changed: len(w.Changes()) > 0},
				[]Change{wishlistChange(w)}, nil
		})
}

// RemoveFromWishlist takes a product off the user's wishlist.
func (h *Wishlists) RemoveFromWishlist(ctx context.Context, md domain.Metadata, userID, productID int64) (WishlistResult, error) {
	return execute(ctx, h.store, md, "RemoveFromWishlist", redecideOnConflict, WishlistResult.withPosition,
		func(ctx context.Context) (WishlistResult, []Change, error) {
			if err := ensureAccount(ctx, h.load, userID); err != nil {
				return WishlistResult{}, nil, err
			}
			w, err := h.loadWishlist(ctx, userID)
			if err != nil {
				return WishlistResult{}, nil, err
			}
			if err := w.Remove(productID); err != nil {
				return WishlistResult{}, nil, err
			}
			return WishlistResult{UserID: userID, ProductID: productID, Changed: true}, []Change{wishlistChange(w)}, nil
		})
}
