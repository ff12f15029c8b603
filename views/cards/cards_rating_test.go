package cards_test

import (
	"encoding/json"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain/review"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/views/cards"
)

// A review changes a product's card without changing the product's stream version: a resync that
// read the row before the review must not put the unrated card back over the rated one a
// notification wrote meanwhile (the card's version counts the reviews' versions too).
func TestProductCardsResyncNeverOverwritesANewerRating(t *testing.T) {
	e := projtest.NewEnv(t)
	projtest.Accounts(t, e, 5)
	ctx := t.Context()
	products := projtest.BulkProducts(t, e, 50, 1)
	ids := slices.Sorted(maps.Keys(products))
	projtest.StartEngine(t, e, 0)
	projtest.WaitCaughtUp(t, e, catalogproj.ProductsProjector)
	rdb, prefix := testdb.Redis(t)
	view := startCards(t, e, rdb, prefix)
	projtest.Eventually(t, "view ready and whole", func() (bool, string) {
		if !view.Ready() {
			return false, "not ready"
		}
		return view.allCardsMatch(e, ids)
	})
	reviews := commands.NewReviews(e.Store, e.Store.Sequences(map[string]string{commands.ReviewIDs: "review_ids"}))

	rated := ids[0]
	var fired atomic.Bool
	hookDone := make(chan struct{})
	cards.SetResyncHook(view.ProductCards, func(page []int64) {
		if !slices.Contains(page, rated) || fired.Swap(true) {
			return
		}
		defer close(hookDone)
		// The resync holds the unrated row. Review the product now and wait until the
		// notification's card is in Redis before letting the resync write.
		r, err := reviews.CreateReview(ctx, projtest.MD, commands.CreateReview{ProductID: rated, UserID: 5,
			Content: review.Content{Rating: 4}})
		if err != nil {
			t.Errorf("reviewing: %v", err)
			return
		}
		if ok, err := e.Ck.WaitFor(ctx, e.Store, catalogproj.ProductsProjector, r.Position, projtest.WaitTimeout); !ok || err != nil {
			t.Errorf("products projector did not catch up: %v, %v", ok, err)
			return
		}
		deadline := time.Now().Add(projtest.WaitTimeout)
		for {
			if ok, _ := view.cardMatches(e, rated); ok {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("the review's notification was not applied during the resync")
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Cleanup(func() { cards.SetResyncHook(view.ProductCards, nil) })

	syncs := view.Syncs()
	flushPrefix(t, rdb, prefix)
	select {
	case <-hookDone:
	case <-time.After(healBound + projtest.WaitTimeout):
		t.Fatal("no resync read the reviewed product's page")
	}
	projtest.Eventually(t, "resync completed", func() (bool, string) {
		return view.Syncs() > syncs && view.Ready(), "state " + view.State()
	})
	if ok, why := view.allCardsMatch(e, ids); !ok {
		t.Fatal(why)
	}
	var got queries.ProductView
	card, ok := view.Get(ctx, rated)
	if !ok || json.Unmarshal(card, &got) != nil || got.RatingCount != 1 || got.Rating != 4 || got.RatingHistogram != [5]int64{0, 0, 0, 1, 0} {
		t.Fatalf("card of the product reviewed during the resync: %s, %v", card, ok)
	}
}
