package cards_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/views/cards"
)

// healBound is how long a flushed view may take to be whole again: a correctness bound, not a
// speed assertion.
const healBound = 10 * time.Second

// flushPrefix plays FLUSHDB on the test's own keys: it deletes every key under prefix, the
// view's marker included, in one DEL (atomic, as FLUSHDB is); the shared Redis itself is never
// flushed. It returns how many keys it deleted.
func flushPrefix(t *testing.T, rdb *redis.Client, prefix string) int {
	t.Helper()
	ctx := context.Background()
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		return 0
	}
	n, err := rdb.Del(ctx, keys...).Result()
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// After every key of the view is deleted behind its back (a FLUSHDB, or Redis restarted empty),
// the view notices, resynchronises on its own and is whole again within healBound; meanwhile
// every card Get serves equals the products row.
func TestProductCardsHealAfterFlush(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	products := projtest.BulkProducts(t, e, 300, 1)
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
	want := map[int64]string{}
	for _, id := range ids {
		p, err := e.Q.Product(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := encodeCard(p)
		want[id] = string(b)
	}

	for round := range 2 {
		t.Run(fmt.Sprintf("flush %d", round+1), func(t *testing.T) {
			syncs := view.Syncs()
			if n := flushPrefix(t, rdb, prefix); n < len(ids) {
				t.Fatalf("flushed %d keys, want at least the %d cards", n, len(ids))
			}
			deadline := time.Now().Add(healBound)
			served := 0
			for {
				for _, id := range ids {
					if card, ok := view.Get(ctx, id); ok {
						served++
						if string(card) != want[id] {
							t.Fatalf("Get(%d) during the heal = %s, want %s", id, card, want[id])
						}
					}
				}
				whole, why := view.allCardsMatch(e, ids)
				if whole && view.Ready() && view.Syncs() > syncs {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("view not whole %v after the flush (state %s, syncs %d → %d): %s",
						healBound, view.State(), syncs, view.Syncs(), why)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n, err := rdb.Exists(ctx, prefix+"cards:synced").Result(); err != nil || n != 1 {
				t.Fatalf("marker after the heal: %d, %v", n, err)
			}
			t.Logf("%d cards served during the heal, all equal to their rows", served)
		})
	}
}

// A resync reads a page of rows, then writes them: a change (update or deletion) applied by a
// notification in between must win over the older row the resync holds.
func TestProductCardsResyncNeverOverwritesNewer(t *testing.T) {
	e := projtest.NewEnv(t)
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

	updated, deleted := ids[0], ids[1]
	newName := "renamed during the resync"
	var fired atomic.Bool
	hookDone := make(chan struct{})
	cards.SetResyncHook(view.ProductCards, func(page []int64) {
		if !slices.Contains(page, updated) || fired.Swap(true) {
			return
		}
		defer close(hookDone)
		// The resync holds the old rows of this page. Change two of them now and wait until
		// the notifications have been applied to Redis before letting it write.
		r, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: updated, Name: &newName})
		if err != nil {
			t.Errorf("updating: %v", err)
			return
		}
		pos, err := e.Cat.DeleteProduct(ctx, projtest.MD, deleted)
		if err != nil {
			t.Errorf("deleting: %v", err)
			return
		}
		if ok, err := e.Ck.WaitFor(ctx, e.Store, catalogproj.ProductsProjector, max(r.Position, pos), projtest.WaitTimeout); !ok || err != nil {
			t.Errorf("products projector did not catch up: %v, %v", ok, err)
			return
		}
		deadline := time.Now().Add(projtest.WaitTimeout)
		for {
			okU, _ := view.cardMatches(e, updated)
			okD, _ := view.cardMatches(e, deleted)
			if okU && okD {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("notifications not applied during the resync")
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
		t.Fatal("no resync read the updated product's page")
	}
	projtest.Eventually(t, "resync completed", func() (bool, string) {
		return view.Syncs() > syncs && view.Ready(), "state " + view.State()
	})
	// No notification is pending any more (both were applied before the resync wrote), so what
	// Redis holds now is what the resync left.
	if ok, why := view.allCardsMatch(e, ids); !ok {
		t.Fatal(why)
	}
	var got queries.ProductView
	card, ok := view.Get(ctx, updated)
	if !ok || json.Unmarshal(card, &got) != nil || got.Name != newName {
		t.Fatalf("card of the product updated during the resync: %s, %v", card, ok)
	}
	if card, ok := view.Get(ctx, deleted); ok {
		t.Fatalf("card of the product deleted during the resync: %s", card)
	}
}

// Versions and tombstones left in Redis by a dropped database of the same name (same prefix) do
// not hold back the cards of the new one.
func TestProductCardsIgnoreAnotherDatabasesVersions(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	products := projtest.BulkProducts(t, e, 5, 1)
	ids := slices.Sorted(maps.Keys(products))
	projtest.StartEngine(t, e, 0)
	projtest.WaitCaughtUp(t, e, catalogproj.ProductsProjector)
	rdb, prefix := testdb.Redis(t)
	if err := rdb.HSet(ctx, prefix+"cards:versions", ids[0], "gone", ids[1], 1_000_000).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, prefix+"cards:database", "a dropped database", 0).Err(); err != nil {
		t.Fatal(err)
	}
	view := startCards(t, e, rdb, prefix)
	projtest.Eventually(t, "view ready and whole", func() (bool, string) {
		if !view.Ready() {
			return false, "not ready"
		}
		return view.allCardsMatch(e, ids)
	})
}
