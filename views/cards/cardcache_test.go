package cards_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
)

// The in-process cache in front of Redis is never stale once the view has applied a change: a
// card cached before a stock change is never served after the change reached Redis, even with
// other readers filling the cache concurrently (a fill that fetched the old card must not store
// it after the invalidation).
func TestLocalCardCacheNeverStaleAfterCommit(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	projtest.StartEngine(t, e, 0)
	rdb, prefix := testdb.Redis(t)
	view := startCards(t, e, rdb, prefix)
	products := projtest.BulkProducts(t, e, 4, 0)
	var ids []int64
	var last int64
	for id, p := range products {
		ids = append(ids, id)
		last = max(last, p.Position)
	}
	waitProjected(t, e, last)
	projtest.Eventually(t, "view ready with every card", func() (bool, string) {
		if !view.Ready() {
			return false, "not ready"
		}
		return view.allCardsMatch(e, ids)
	})

	stockOf := func(card []byte) int64 {
		var v struct {
			Stock int64 `json:"stock"`
		}
		if err := json.Unmarshal(card, &v); err != nil {
			t.Errorf("card %s: %v", card, err)
		}
		return v.Stock
	}

	// Readers keep filling the cache for every product while the test changes stock.
	readCtx, stopReaders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; readCtx.Err() == nil; i++ {
				view.Get(readCtx, ids[i%len(ids)])
			}
		}()
	}
	defer func() { stopReaders(); wg.Wait() }()

	for round := range 40 {
		id := ids[round%len(ids)]
		if card, ok := view.Get(ctx, id); !ok || card == nil {
			t.Fatalf("round %d: product %d not served from the view", round, id)
		}
		res, err := e.Cat.AdjustStock(ctx, projtest.MD, commands.AdjustStock{ID: id, Delta: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Wait until Redis holds the new card: the view has applied the notification.
		projtest.Eventually(t, "card updated in Redis", func() (bool, string) {
			card, err := rdb.Get(ctx, view.key(id)).Bytes()
			return err == nil && stockOf(card) == res.Stock, string(card)
		})
		for range 20 {
			card, ok := view.Get(ctx, id)
			if ok && stockOf(card) != res.Stock {
				t.Fatalf("round %d: product %d served stock %d from the view after the change to %d reached Redis",
					round, id, stockOf(card), res.Stock)
			}
		}
	}
}
