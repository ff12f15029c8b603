package commands

import (
	"context"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/review"
)

// ReviewIDs is the id kind of reviews.
const ReviewIDs = "review"

// Reviews handles the commands of product reviews.
type Reviews struct {
	store EventStore
	ids   IDAllocator
	load  loader
}

// NewReviews returns the review command handlers. Transient database failures are retried once
// where that is safe and otherwise reported as domain.ErrUnavailable.
func NewReviews(store EventStore, ids IDAllocator, opts ...Option) *Reviews {
	rs := resilientStore{store}
	l := newLoader(rs, resilientSnapshots(store), opts)
	return &Reviews{store: l.observe(rs), ids: resilientIDs{ids}, load: l}
}

var reviewKind = aggregateKind[*review.Review, review.State]{
	name: "review", streamID: review.StreamID, streamType: review.StreamType,
	schemaVersion: review.SnapshotSchemaVersion, decode: review.Decode,
	rehydrate: review.Rehydrate, rehydrateFrom: review.RehydrateFrom,
	snapshot: (*review.Review).Snapshot, stateID: func(s review.State) int64 { return s.ID },
}

// ReviewResult is a review after a command, and where its last event landed (0: nothing changed).
type ReviewResult struct {
	ID, ProductID, UserID int64
	Rating                int
	Title, Text           string
	Hidden                bool
	Helpful               int64
	Position              int64
}

func withReviewPosition(r ReviewResult, pos int64) ReviewResult { r.Position = pos; return r }

func reviewResult(r *review.Review) ReviewResult {
	c := r.Content()
	return ReviewResult{ID: r.ID(), ProductID: r.ProductID(), UserID: r.UserID(), Rating: c.Rating, Title: c.Title,
		Text: c.Text, Hidden: r.Hidden(), Helpful: r.Helpful()}
}

func reviewChange(r *review.Review) Change {
	return Change{StreamID: review.StreamID(r.ID()), StreamType: review.StreamType, ExpectedVersion: r.Version(), Events: r.Changes()}
}

func (h *Reviews) loadSlot(ctx context.Context, productID, userID int64) (*review.Slot, error) {
	history, err := loadEvents(ctx, h.store, review.SlotStreamID(productID, userID), review.Decode)
	if err != nil {
		return nil, err
	}
	return review.RehydrateSlot(history), nil
}

func slotChange(s *review.Slot, productID, userID int64) Change {
	return Change{StreamID: review.SlotStreamID(productID, userID), StreamType: review.SlotStreamType,
		ExpectedVersion: s.Version(), Events: s.Changes()}
}

// productExists reads the product's stream: a review names a product of the catalog.
func (h *Reviews) productExists(ctx context.Context, id int64) (bool, error) {
	p, err := loadAggregate(ctx, h.load, productKind, id)
	if err != nil {
		return false, err
	}
	return p.Exists(), nil
}

// onReviewOfProduct is onReview for a decision that needs to know whether the review's product
// is still in the catalog (a review of one that left it is shown nowhere, and changes no more).
func (h *Reviews) onReviewOfProduct(ctx context.Context, md domain.Metadata, name string, id, actor int64,
	decide func(r *review.Review, productExists bool) error) (ReviewResult, error) {
	return h.onReview(ctx, md, name, id, actor, func(ctx context.Context, r *review.Review) ([]Change, error) {
		exists, err := h.productExists(ctx, r.ProductID())
		if err != nil {
			return nil, err
		}
		return nil, decide(r, exists)
	})
}

// CreateReview is the command of a customer reviewing a product.
type CreateReview struct {
	ProductID, UserID int64
	Content           review.Content
}

// CreateReview creates the review and takes the author's slot for the product in the same append,
// each stream at the version it was decided on: of concurrent first reviews by one customer, one
// commits and the others, re-decided on the taken slot, are conflicts (409). The product must be
// in the catalog (read from its stream when decided).
func (h *Reviews) CreateReview(ctx context.Context, md domain.Metadata, cmd CreateReview) (ReviewResult, error) {
	// Validate before allocating, so bad input burns no id.
	if _, err := cmd.Content.Clean(); err != nil {
		return ReviewResult{}, err
	}
	id, err := h.ids.NextID(ctx, ReviewIDs)
	if err != nil {
		return ReviewResult{}, err
	}
	return execute(ctx, h.store, md, "CreateReview", redecideOnConflict, withReviewPosition,
		func(ctx context.Context) (ReviewResult, []Change, error) {
			if err := ensureAccount(ctx, h.load, cmd.UserID); err != nil {
				return ReviewResult{}, nil, err
			}
			exists, err := h.productExists(ctx, cmd.ProductID)
			if err != nil {
				return ReviewResult{}, nil, err
			}
			r, err := review.New(review.NewInput{ID: id, ProductID: cmd.ProductID, UserID: cmd.UserID,
				ProductExists: exists, Content: cmd.Content})
			if err != nil {
				return ReviewResult{}, nil, err
			}
			slot, err := h.loadSlot(ctx, cmd.ProductID, cmd.UserID)
			if err != nil {
				return ReviewResult{}, nil, err
			}
			if err := slot.Take(id, cmd.ProductID, cmd.UserID); err != nil {
				return ReviewResult{}, nil, err
			}
			return reviewResult(r), []Change{reviewChange(r), slotChange(slot, cmd.ProductID, cmd.UserID)}, nil
		})
}

// onReview runs a command on one review, re-deciding on a version clash. A customer's command
// (actor not 0) needs the customer's account (ensureAccount).
func (h *Reviews) onReview(ctx context.Context, md domain.Metadata, name string, id, actor int64,
	decide func(ctx context.Context, r *review.Review) ([]Change, error),
) (ReviewResult, error) {
	return execute(ctx, h.store, md, name, redecideOnConflict, withReviewPosition,
		func(ctx context.Context) (ReviewResult, []Change, error) {
			if actor != 0 {
				if err := ensureAccount(ctx, h.load, actor); err != nil {
					return ReviewResult{}, nil, err
				}
			}
			r, err := loadAggregate(ctx, h.load, reviewKind, id)
			if err != nil {
				return ReviewResult{}, nil, err
			}
			if !r.Exists() {
				return ReviewResult{}, nil, domain.NotFound("review %d not found", id)
			}
			extra, err := decide(ctx, r)
			if err != nil {
				return ReviewResult{}, nil, err
			}
			return reviewResult(r), append([]Change{reviewChange(r)}, extra...), nil
		})
}

// EditReview is the author's change of their review; nil fields stay as they are.
type EditReview struct {
	ID    int64
	Actor review.Actor
	Patch review.Patch
}

// EditReview changes the author's review (of a product still in the catalog).
func (h *Reviews) EditReview(ctx context.Context, md domain.Metadata, cmd EditReview) (ReviewResult, error) {
	return h.onReviewOfProduct(ctx, md, "EditReview", cmd.ID, cmd.Actor.UserID, func(r *review.Review, productExists bool) error {
		return r.Edit(cmd.Actor, cmd.Patch, productExists)
	})
}

// DeleteReview deletes the author's review and frees their slot for the product (they may review
// it again), in one append.
func (h *Reviews) DeleteReview(ctx context.Context, md domain.Metadata, id int64, actor review.Actor) (ReviewResult, error) {
	return h.onReview(ctx, md, "DeleteReview", id, actor.UserID, func(ctx context.Context, r *review.Review) ([]Change, error) {
		if err := r.Delete(actor); err != nil {
			return nil, err
		}
		slot, err := h.loadSlot(ctx, r.ProductID(), r.UserID())
		if err != nil {
			return nil, err
		}
		slot.Free(r.ID(), r.ProductID(), r.UserID())
		return []Change{slotChange(slot, r.ProductID(), r.UserID())}, nil
	})
}

// HideReview hides a review (admins): it leaves the public listing and the product's rating.
func (h *Reviews) HideReview(ctx context.Context, md domain.Metadata, id int64) (ReviewResult, error) {
	return h.onReviewOfProduct(ctx, md, "HideReview", id, 0, (*review.Review).Hide)
}

// UnhideReview makes a hidden review public again (admins).
func (h *Reviews) UnhideReview(ctx context.Context, md domain.Metadata, id int64) (ReviewResult, error) {
	return h.onReviewOfProduct(ctx, md, "UnhideReview", id, 0, (*review.Review).Unhide)
}

// MarkReviewHelpful records the actor's helpful vote (once per customer and review).
func (h *Reviews) MarkReviewHelpful(ctx context.Context, md domain.Metadata, id int64, actor review.Actor) (ReviewResult, error) {
	return h.onReviewOfProduct(ctx, md, "MarkReviewHelpful", id, actor.UserID, func(r *review.Review, productExists bool) error {
		return r.MarkHelpful(actor, productExists)
	})
}
