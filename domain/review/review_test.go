package review_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/review"
)

func newReview(t *testing.T) *review.Review {
	t.Helper()
	r, err := review.New(review.NewInput{ID: 7, ProductID: 3, UserID: 42, ProductExists: true,
		Content: review.Content{Rating: 4, Title: " Solid ", Text: "Works.\n"}})
	if err != nil {
		t.Fatal(err)
	}
	return review.Rehydrate(r.Changes())
}

func TestNewChecksItsInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      review.NewInput
		kind    error
		field   string
		message string
	}{
		{"rating 0", review.NewInput{ProductExists: true, Content: review.Content{Rating: 0}}, domain.ErrInvalid, "rating", "1 to 5"},
		{"rating 6", review.NewInput{ProductExists: true, Content: review.Content{Rating: 6}}, domain.ErrInvalid, "rating", "1 to 5"},
		{"long title", review.NewInput{ProductExists: true, Content: review.Content{Rating: 3, Title: strings.Repeat("x", review.MaxTitle+1)}}, domain.ErrInvalid, "title", ""},
		{"long text", review.NewInput{ProductExists: true, Content: review.Content{Rating: 3, Text: strings.Repeat("x", review.MaxText+1)}}, domain.ErrInvalid, "text", ""},
		{"no product", review.NewInput{Content: review.Content{Rating: 3}}, domain.ErrNotFound, "product_id", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := review.New(tc.in)
			var de *domain.Error
			if !errors.Is(err, tc.kind) || !errors.As(err, &de) || de.Field != tc.field || !strings.Contains(de.Message, tc.message) {
				t.Fatalf("err = %v, want %v about %q", err, tc.kind, tc.field)
			}
		})
	}
	r := newReview(t)
	if c := r.Content(); c.Title != "Solid" || c.Text != "Works." || c.Rating != 4 {
		t.Fatalf("content not cleaned: %+v", c)
	}
}

func TestOnlyTheAuthorChangesAReview(t *testing.T) {
	five := 5
	author, other, admin := review.Actor{UserID: 42}, review.Actor{UserID: 43}, review.Actor{UserID: 1, Admin: true}
	for _, tc := range []struct {
		name  string
		run   func(r *review.Review) error
		kind  error
		after int // events recorded
	}{
		{"the author edits", func(r *review.Review) error { return r.Edit(author, review.Patch{Rating: &five}, true) }, nil, 1},
		{"an edit to the same content", func(r *review.Review) error {
			title := "Solid"
			return r.Edit(author, review.Patch{Title: &title}, true)
		}, nil, 0},
		{"another customer edits", func(r *review.Review) error { return r.Edit(other, review.Patch{Rating: &five}, true) }, domain.ErrForbidden, 0},
		{"an admin edits", func(r *review.Review) error { return r.Edit(admin, review.Patch{Rating: &five}, true) }, domain.ErrForbidden, 0},
		{"an edit of a deleted product's review", func(r *review.Review) error { return r.Edit(author, review.Patch{Rating: &five}, false) }, domain.ErrNotFound, 0},
		{"another customer deletes", func(r *review.Review) error { return r.Delete(other) }, domain.ErrForbidden, 0},
		{"the author deletes", func(r *review.Review) error { return r.Delete(author) }, nil, 1},
		{"the author votes", func(r *review.Review) error { return r.MarkHelpful(author, true) }, domain.ErrForbidden, 0},
		{"a vote for a deleted product's review", func(r *review.Review) error { return r.MarkHelpful(other, false) }, domain.ErrNotFound, 0},
		{"an admin hides a deleted product's review", func(r *review.Review) error { return r.Hide(false) }, domain.ErrNotFound, 0},
		{"an admin unhides a deleted product's review", func(r *review.Review) error { return r.Unhide(false) }, domain.ErrNotFound, 0},
		{"another customer votes twice", func(r *review.Review) error {
			if err := r.MarkHelpful(other, true); err != nil {
				return err
			}
			return r.MarkHelpful(other, true)
		}, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReview(t)
			err := tc.run(r)
			if (tc.kind == nil) != (err == nil) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if len(r.Changes()) != tc.after {
				t.Fatalf("recorded %v, want %d events", r.Changes(), tc.after)
			}
		})
	}
}

func TestAHiddenReviewIsTheAuthorsAndTheAdmins(t *testing.T) {
	r := newReview(t)
	if err := r.Hide(true); err != nil {
		t.Fatal(err)
	}
	if err := r.Hide(true); err != nil || len(r.Changes()) != 1 {
		t.Fatalf("hiding twice: %v, %v", err, r.Changes())
	}
	r = review.Rehydrate(append([]domain.Event{review.Created{ReviewID: 7, ProductID: 3, UserID: 42, Rating: 4}}, r.Changes()...))
	title := "Edited"
	if err := r.Edit(review.Actor{UserID: 43}, review.Patch{Title: &title}, true); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another customer's edit of a hidden review: %v", err)
	}
	if err := r.Edit(review.Actor{UserID: 43, Admin: true}, review.Patch{Title: &title}, true); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("an admin's edit of a hidden review: %v", err)
	}
	if err := r.MarkHelpful(review.Actor{UserID: 43}, true); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a vote for a hidden review: %v", err)
	}
	if err := r.Edit(review.Actor{UserID: 42}, review.Patch{Title: &title}, true); err != nil || !r.Hidden() {
		t.Fatalf("the author's edit of their hidden review: %v (hidden %v)", err, r.Hidden())
	}
}

func TestOneSlotPerAuthorAndProduct(t *testing.T) {
	s := review.RehydrateSlot(nil)
	if err := s.Take(7, 3, 42); err != nil {
		t.Fatal(err)
	}
	s = review.RehydrateSlot(s.Changes())
	if err := s.Take(8, 3, 42); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "review 7") {
		t.Fatalf("a second review: %v", err)
	}
	s.Free(8, 3, 42) // not the holder: nothing
	if len(s.Changes()) != 0 {
		t.Fatalf("freed by another review: %v", s.Changes())
	}
	s.Free(7, 3, 42)
	if err := s.Take(9, 3, 42); err != nil || s.Holder() != 9 {
		t.Fatalf("a review after the deletion: %v, holder %d", err, s.Holder())
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	r := newReview(t)
	if err := r.MarkHelpful(review.Actor{UserID: 50}, true); err != nil {
		t.Fatal(err)
	}
	if err := r.MarkHelpful(review.Actor{UserID: 44}, true); err != nil {
		t.Fatal(err)
	}
	loaded := review.Rehydrate(append([]domain.Event{review.Created{ReviewID: 7, ProductID: 3, UserID: 42, Rating: 4, Title: "Solid", Text: "Works."}}, r.Changes()...))
	back, err := review.RehydrateFrom(loaded.Snapshot(), loaded.Version(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Snapshot().ID != 7 || back.Helpful() != 2 || back.Version() != loaded.Version() {
		t.Fatalf("restored %+v at %d", back.Snapshot(), back.Version())
	}
	if err := back.MarkHelpful(review.Actor{UserID: 44}, true); err != nil || len(back.Changes()) != 0 {
		t.Fatalf("a restored review forgot a voter: %v %v", err, back.Changes())
	}
	bad := loaded.Snapshot()
	bad.Voters = []int64{50, 44}
	if _, err := review.RehydrateFrom(bad, 3, nil); !errors.Is(err, review.ErrBadSnapshot) {
		t.Fatalf("unsorted voters: %v", err)
	}
}

// The stored shape of State is pinned to its schema version: changing the struct without bumping
// SnapshotSchemaVersion (and pinning the new shape here) fails this test.
func TestSnapshotShapeIsPinnedToItsSchemaVersion(t *testing.T) {
	shapes := map[int]string{
		1: `{"id":0,"product_id":0,"user_id":0,"rating":0,"title":"","text":"","hidden":false,"deleted":false,"voters":null}`,
	}
	b, err := json.Marshal(review.State{})
	if err != nil {
		t.Fatal(err)
	}
	if want := shapes[review.SnapshotSchemaVersion]; string(b) != want {
		t.Fatalf("review state shape at schema version %d is %s; pinned: %q", review.SnapshotSchemaVersion, b, want)
	}
}
