package review

import (
	"slices"

	"github.com/techvault/techvault/domain"
)

// Limits of a review's fields (the read table's column sizes).
const (
	MinRating = 1
	MaxRating = 5
	MaxTitle  = 120
	MaxText   = 5000
)

// The review's text fields, checked by domain.CleanText (the store's one rule for text). Both may
// be empty: a rating alone is a review.
var (
	titleRule = domain.TextRule{Field: "title", MaxLen: MaxTitle}
	textRule  = domain.TextRule{Field: "text", MaxLen: MaxText, Multiline: true}
)

// CheckRating refuses a rating outside 1 to 5.
func CheckRating(r int) error {
	if r < MinRating || r > MaxRating {
		return domain.Invalid("rating", "rating must be a whole number from %d to %d", MinRating, MaxRating)
	}
	return nil
}

// Content is what an author writes: a rating and an optional title and text.
type Content struct {
	Rating int
	Title  string
	Text   string
}

// Clean checks the content and returns it as it is stored (text trimmed).
func (c Content) Clean() (Content, error) {
	if err := CheckRating(c.Rating); err != nil {
		return Content{}, err
	}
	var err error
	if c.Title, err = domain.CleanText(c.Title, titleRule); err != nil {
		return Content{}, err
	}
	if c.Text, err = domain.CleanText(c.Text, textRule); err != nil {
		return Content{}, err
	}
	return c, nil
}

// Actor is who asks for a change of a review.
type Actor struct {
	UserID int64
	// Admin sees hidden reviews (an author sees their own); it gives no right to edit or delete.
	Admin bool
}

// Review is one customer's review of one product. It changes only by recording events.
type Review struct {
	id, productID, userID int64
	content               Content
	hidden, deleted       bool
	voters                []int64 // sorted: the customers who found it helpful
	version               int64
	changes               []domain.Event
}

// NewInput is what creating a review needs. ProductExists says the product is in the catalog
// (loaded from its stream by the caller).
type NewInput struct {
	ID, ProductID, UserID int64
	ProductExists         bool
	Content               Content
}

// New validates and creates a review. The caller takes the author's slot in the same append
// (Slot.Take).
func New(in NewInput) (*Review, error) {
	c, err := in.Content.Clean()
	if err != nil {
		return nil, err
	}
	if !in.ProductExists {
		return nil, &domain.Error{Kind: domain.ErrNotFound, Field: "product_id", Message: "product not found"}
	}
	r := &Review{}
	r.record(Created{ReviewID: in.ID, ProductID: in.ProductID, UserID: in.UserID, Rating: c.Rating, Title: c.Title, Text: c.Text})
	return r, nil
}

// Rehydrate rebuilds a review from its stream; nil when it is empty.
func Rehydrate(history []domain.Event) *Review {
	if len(history) == 0 {
		return nil
	}
	r := &Review{}
	for _, e := range history {
		r.apply(e)
		r.version++
	}
	return r
}

// Accessors.
func (r *Review) ID() int64               { return r.id }
func (r *Review) ProductID() int64        { return r.productID }
func (r *Review) UserID() int64           { return r.userID }
func (r *Review) Content() Content        { return r.content }
func (r *Review) Hidden() bool            { return r.hidden }
func (r *Review) Helpful() int64          { return int64(len(r.voters)) }
func (r *Review) Version() int64          { return r.version }
func (r *Review) Changes() []domain.Event { return r.changes }

// Exists reports whether the review exists and is not deleted.
func (r *Review) Exists() bool { return r != nil && !r.deleted }

// visibleTo reports whether a reads the review: a hidden review is the author's and the admins'.
func (r *Review) visibleTo(a Actor) bool {
	return r.Exists() && (!r.hidden || a.Admin || a.UserID == r.userID)
}

func notFound() error { return domain.NotFound("review not found") }

// mustBeAuthor allows the author only. A review the actor cannot see does not exist for them
// (404); someone else's public review is theirs to read, not to change (403).
func (r *Review) mustBeAuthor(a Actor, what string) error {
	if !r.visibleTo(a) {
		return notFound()
	}
	if a.UserID != r.userID {
		return &domain.Error{Kind: domain.ErrForbidden, Message: "only the author of a review may " + what + " it"}
	}
	return nil
}

// Patch lists the fields to change; nil leaves a field as it is.
type Patch struct {
	Rating *int
	Title  *string
	Text   *string
}

// Edit changes the author's review. ProductExists says the product is still in the catalog (a
// review of a deleted product is not edited). A patch that changes nothing records nothing.
func (r *Review) Edit(a Actor, p Patch, productExists bool) error {
	if err := r.mustBeAuthor(a, "edit"); err != nil {
		return err
	}
	next := r.content
	if p.Rating != nil {
		next.Rating = *p.Rating
	}
	if p.Title != nil {
		next.Title = *p.Title
	}
	if p.Text != nil {
		next.Text = *p.Text
	}
	next, err := next.Clean()
	if err != nil {
		return err
	}
	if !productExists {
		return productGone()
	}
	if next == r.content {
		return nil
	}
	r.record(Edited{ReviewID: r.id, ProductID: r.productID, UserID: r.userID, Rating: next.Rating, Title: next.Title, Text: next.Text})
	return nil
}

// Delete deletes the author's review; the caller frees the slot in the same append.
func (r *Review) Delete(a Actor) error {
	if err := r.mustBeAuthor(a, "delete"); err != nil {
		return err
	}
	r.record(Deleted{ReviewID: r.id, ProductID: r.productID, UserID: r.userID})
	return nil
}

// productGone refuses a change of a review whose product left the catalog: such a review is
// shown nowhere.
func productGone() error {
	return &domain.Error{Kind: domain.ErrNotFound, Field: "product_id", Message: "the reviewed product is no longer in the catalog"}
}

// Hide hides the review (an admin's decision: the caller checks the role) of a product still in
// the catalog. Hiding a hidden review records nothing.
func (r *Review) Hide(productExists bool) error {
	if !r.Exists() {
		return notFound()
	}
	if !productExists {
		return productGone()
	}
	if !r.hidden {
		r.record(Hidden{ReviewID: r.id, ProductID: r.productID})
	}
	return nil
}

// Unhide makes a hidden review (of a product still in the catalog) public again; a public one
// records nothing.
func (r *Review) Unhide(productExists bool) error {
	if !r.Exists() {
		return notFound()
	}
	if !productExists {
		return productGone()
	}
	if r.hidden {
		r.record(Unhidden{ReviewID: r.id, ProductID: r.productID})
	}
	return nil
}

// MarkHelpful records a's helpful vote: one per customer and review (a second records nothing),
// never the author's own, on a review of a product still in the catalog.
func (r *Review) MarkHelpful(a Actor, productExists bool) error {
	if !r.Exists() || r.hidden {
		return notFound()
	}
	if !productExists {
		return productGone()
	}
	if a.UserID == r.userID {
		return &domain.Error{Kind: domain.ErrForbidden, Message: "you cannot vote for your own review"}
	}
	if _, found := slices.BinarySearch(r.voters, a.UserID); found {
		return nil
	}
	r.record(MarkedHelpful{ReviewID: r.id, ProductID: r.productID, VoterID: a.UserID, Helpful: r.Helpful() + 1})
	return nil
}

func (r *Review) record(e domain.Event) {
	r.apply(e)
	r.changes = append(r.changes, e)
}

func (r *Review) apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		r.id, r.productID, r.userID = e.ReviewID, e.ProductID, e.UserID
		r.content = Content{Rating: e.Rating, Title: e.Title, Text: e.Text}
	case Edited:
		r.content = Content{Rating: e.Rating, Title: e.Title, Text: e.Text}
	case Deleted:
		r.deleted = true
	case Hidden:
		r.hidden = true
	case Unhidden:
		r.hidden = false
	case MarkedHelpful:
		if i, found := slices.BinarySearch(r.voters, e.VoterID); !found {
			r.voters = slices.Insert(r.voters, i, e.VoterID)
		}
	}
}

// Slot is the reservation of one author's review of one product: the review holding it (0: free).
type Slot struct {
	holder  int64
	version int64
	changes []domain.Event
}

// RehydrateSlot rebuilds a slot from its stream (free when empty).
func RehydrateSlot(history []domain.Event) *Slot {
	s := &Slot{}
	for _, e := range history {
		s.apply(e)
		s.version++
	}
	return s
}

// Holder is the review holding the slot (0: free).
func (s *Slot) Holder() int64 { return s.holder }

// Take reserves the slot for a new review: one review per customer and product at a time.
func (s *Slot) Take(reviewID, productID, userID int64) error {
	if s.holder != 0 {
		return domain.Conflict("you have already reviewed this product (review %d): edit that review instead", s.holder)
	}
	s.record(SlotTaken{ReviewID: reviewID, ProductID: productID, UserID: userID})
	return nil
}

// Free releases the slot of a deleted review.
func (s *Slot) Free(reviewID, productID, userID int64) {
	if s.holder == reviewID && reviewID != 0 {
		s.record(SlotFreed{ReviewID: reviewID, ProductID: productID, UserID: userID})
	}
}

func (s *Slot) Version() int64          { return s.version }
func (s *Slot) Changes() []domain.Event { return s.changes }

func (s *Slot) record(e domain.Event) {
	s.apply(e)
	s.changes = append(s.changes, e)
}

func (s *Slot) apply(e domain.Event) {
	switch e := e.(type) {
	case SlotTaken:
		s.holder = e.ReviewID
	case SlotFreed:
		s.holder = 0
	}
}
