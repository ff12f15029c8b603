package review

import (
	"errors"
	"fmt"
	"slices"

	"github.com/techvault/techvault/domain"
)

// SnapshotSchemaVersion is the version of State. Bump it whenever State's shape or the review's
// apply logic changes: older snapshots are then ignored (and rewritten) instead of trusted.
const SnapshotSchemaVersion = 1

// State is a review's whole state, as a snapshot stores it (a popular review's stream grows with
// every helpful vote).
type State struct {
	ID        int64   `json:"id"`
	ProductID int64   `json:"product_id"`
	UserID    int64   `json:"user_id"`
	Rating    int     `json:"rating"`
	Title     string  `json:"title"`
	Text      string  `json:"text"`
	Hidden    bool    `json:"hidden"`
	Deleted   bool    `json:"deleted"`
	Voters    []int64 `json:"voters"`
}

// ErrBadSnapshot reports a snapshot state no review could be in.
var ErrBadSnapshot = errors.New("review: invalid snapshot")

// Snapshot returns the review's state. Taken right after loading (no recorded changes), it is
// the state at Version().
func (r *Review) Snapshot() State {
	return State{ID: r.id, ProductID: r.productID, UserID: r.userID, Rating: r.content.Rating, Title: r.content.Title,
		Text: r.content.Text, Hidden: r.hidden, Deleted: r.deleted, Voters: slices.Clone(r.voters)}
}

// RehydrateFrom rebuilds a review from a snapshot of its state at version and the events recorded
// after it. A state that no review could be in is an error (the caller then loads the whole stream).
func RehydrateFrom(s State, version int64, tail []domain.Event) (*Review, error) {
	switch {
	case version < 1:
		return nil, fmt.Errorf("%w: version %d", ErrBadSnapshot, version)
	case s.ID < 1 || s.ProductID < 1 || s.UserID < 1:
		return nil, fmt.Errorf("%w: review %d of product %d by user %d", ErrBadSnapshot, s.ID, s.ProductID, s.UserID)
	case !slices.IsSorted(s.Voters) || len(slices.Compact(slices.Clone(s.Voters))) != len(s.Voters):
		return nil, fmt.Errorf("%w: review %d: voters are not a sorted set", ErrBadSnapshot, s.ID)
	}
	c, err := Content{Rating: s.Rating, Title: s.Title, Text: s.Text}.Clean()
	if err != nil || c.Title != s.Title || c.Text != s.Text {
		return nil, fmt.Errorf("%w: review %d: content is not what a review holds", ErrBadSnapshot, s.ID)
	}
	r := &Review{id: s.ID, productID: s.ProductID, userID: s.UserID, content: c, hidden: s.Hidden, deleted: s.Deleted,
		voters: slices.Clone(s.Voters), version: version}
	for _, e := range tail {
		r.apply(e)
		r.version++
	}
	return r, nil
}
