// Package review is the product reviews' domain: a customer's rating (1 to 5) of a product with
// an optional title and text, one review per customer and product at a time, edited or deleted
// only by its author, hidden and unhidden by an admin, and voted helpful by other customers.
//
// Two streams: review-<id> is the review itself; review-slot-<product>-<user> reserves the pair
// (product, author) for one review. Creating a review takes the slot in the same append, each
// stream at its expected version, so two concurrent first reviews of one customer cannot both
// commit; deleting a review frees the slot in the same append.
package review

import (
	"fmt"

	"github.com/techvault/techvault/domain"
)

// Stream types.
const (
	StreamType = "review"
	// SlotStreamType reserves a (product, author) pair for one review.
	SlotStreamType = "review_slot"
)

// StreamID is the event stream of one review.
func StreamID(id int64) string { return fmt.Sprintf("review-%d", id) }

// SlotStreamID is the reservation stream of an author's review of a product.
func SlotStreamID(productID, userID int64) string {
	return fmt.Sprintf("review-slot-%d-%d", productID, userID)
}

// Created.v1: a customer reviewed a product.
type Created struct {
	ReviewID  int64  `json:"review_id"`
	ProductID int64  `json:"product_id"`
	UserID    int64  `json:"user_id"`
	Rating    int    `json:"rating"`
	Title     string `json:"title"`
	Text      string `json:"text"`
}

// Edited.v1: the author changed the review; rating, title and text are the whole new state.
type Edited struct {
	ReviewID  int64  `json:"review_id"`
	ProductID int64  `json:"product_id"`
	UserID    int64  `json:"user_id"`
	Rating    int    `json:"rating"`
	Title     string `json:"title"`
	Text      string `json:"text"`
}

// Deleted.v1: the author deleted the review (the slot is freed in the same append).
type Deleted struct {
	ReviewID  int64 `json:"review_id"`
	ProductID int64 `json:"product_id"`
	UserID    int64 `json:"user_id"`
}

// Hidden.v1: an admin hid the review: it is listed to admins only and leaves the product's rating.
type Hidden struct {
	ReviewID  int64 `json:"review_id"`
	ProductID int64 `json:"product_id"`
}

// Unhidden.v1: an admin made a hidden review public again.
type Unhidden struct {
	ReviewID  int64 `json:"review_id"`
	ProductID int64 `json:"product_id"`
}

// MarkedHelpful.v1: a customer (VoterID) found the review helpful; Helpful is the review's
// number of helpful votes after this one.
type MarkedHelpful struct {
	ReviewID  int64 `json:"review_id"`
	ProductID int64 `json:"product_id"`
	VoterID   int64 `json:"voter_id"`
	Helpful   int64 `json:"helpful"`
}

// SlotTaken.v1 (slot stream): the author's review of the product is ReviewID.
type SlotTaken struct {
	ReviewID  int64 `json:"review_id"`
	ProductID int64 `json:"product_id"`
	UserID    int64 `json:"user_id"`
}

// SlotFreed.v1 (slot stream): the review was deleted; the author may review the product again.
type SlotFreed struct {
	ReviewID  int64 `json:"review_id"`
	ProductID int64 `json:"product_id"`
	UserID    int64 `json:"user_id"`
}

var registry = domain.Registry{
	"ReviewCreated": func() domain.Event { return &Created{} }, "ReviewEdited": func() domain.Event { return &Edited{} },
	"ReviewDeleted": func() domain.Event { return &Deleted{} }, "ReviewHidden": func() domain.Event { return &Hidden{} },
	"ReviewUnhidden": func() domain.Event { return &Unhidden{} }, "ReviewMarkedHelpful": func() domain.Event { return &MarkedHelpful{} },
	"ReviewSlotTaken": func() domain.Event { return &SlotTaken{} }, "ReviewSlotFreed": func() domain.Event { return &SlotFreed{} },
}

func (Created) EventType() string       { return "ReviewCreated" }
func (Edited) EventType() string        { return "ReviewEdited" }
func (Deleted) EventType() string       { return "ReviewDeleted" }
func (Hidden) EventType() string        { return "ReviewHidden" }
func (Unhidden) EventType() string      { return "ReviewUnhidden" }
func (MarkedHelpful) EventType() string { return "ReviewMarkedHelpful" }
func (SlotTaken) EventType() string     { return "ReviewSlotTaken" }
func (SlotFreed) EventType() string     { return "ReviewSlotFreed" }

// Every review event is at schema version 1.
func (Created) SchemaVersion() int       { return 1 }
func (Edited) SchemaVersion() int        { return 1 }
func (Deleted) SchemaVersion() int       { return 1 }
func (Hidden) SchemaVersion() int        { return 1 }
func (Unhidden) SchemaVersion() int      { return 1 }
func (MarkedHelpful) SchemaVersion() int { return 1 }
func (SlotTaken) SchemaVersion() int     { return 1 }
func (SlotFreed) SchemaVersion() int     { return 1 }

// Decode turns a stored review event into its struct (by value).
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return registry.Decode(eventType, schemaVersion, data)
}

// ProductOf is the product a review event is about (every event of both stream types names it).
func ProductOf(e domain.Event) (int64, bool) {
	switch e := e.(type) {
	case Created:
		return e.ProductID, true
	case Edited:
		return e.ProductID, true
	case Deleted:
		return e.ProductID, true
	case Hidden:
		return e.ProductID, true
	case Unhidden:
		return e.ProductID, true
	case MarkedHelpful:
		return e.ProductID, true
	case SlotTaken:
		return e.ProductID, true
	case SlotFreed:
		return e.ProductID, true
	}
	return 0, false
}
