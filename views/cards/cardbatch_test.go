package cards_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
)

// Concurrent Gets are answered together by batched MGETs: every caller still gets its own card,
// and a missing card is a miss, not someone else's card.
func TestProductCardsConcurrentGets(t *testing.T) {
	e := projtest.NewEnv(t)
	products := projtest.BulkProducts(t, e, 40, 1)
	projtest.StartEngine(t, e, 0)
	projtest.WaitCaughtUp(t, e, catalogproj.ProductsProjector)
	rdb, prefix := testdb.Redis(t)
	view := startCards(t, e, rdb, prefix)
	projtest.Eventually(t, "cards ready", func() (bool, string) { return view.Ready(), "not ready" })

	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 50 {
				for id, want := range products {
					if (int(id)+round)%16 != g {
						continue
					}
					b, ok := view.Get(context.Background(), id)
					if !ok {
						t.Errorf("card %d: miss", id)
						return
					}
					var got queries.ProductView
					if err := json.Unmarshal(b, &got); err != nil || got.ID != id || got.Name != want.Name {
						t.Errorf("card %d: got %s (%v)", id, b, err)
						return
					}
				}
				if _, ok := view.Get(context.Background(), 1_000_000+int64(g)); ok {
					t.Errorf("card of a product that does not exist")
					return
				}
			}
		}()
	}
	wg.Wait()
}
