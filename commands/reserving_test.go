package commands

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// Orders of overlapping products, in any order, never hold one product at once and never
// deadlock (the stripes are taken in ascending order).
func TestStripedLocksExcludeAndNeverDeadlock(t *testing.T) {
	var (
		l       stripedLocks
		holders [reservingStripes * 2]atomic.Int32
		wg      sync.WaitGroup
		clashes atomic.Int32
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				ids := []int64{r.Int64N(int64(len(holders))), r.Int64N(int64(len(holders))), r.Int64N(int64(len(holders)))}
				unlock := l.lock(ids)
				for _, id := range ids {
					if holders[id].Add(1) > 1 && ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2] {
						clashes.Add(1)
					}
				}
				for _, id := range ids {
					holders[id].Add(-1)
				}
				unlock()
			}
		}()
	}
	wg.Wait()
	if n := clashes.Load(); n > 0 {
		t.Fatalf("%d times a product was held by two orders at once", n)
	}
	// Ids of one stripe (id and id+reservingStripes) in one order take the stripe once.
	l.lock([]int64{3, 3 + reservingStripes, 3})()
}
