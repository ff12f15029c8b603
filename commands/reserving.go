package commands

import (
	"slices"
	"sync"
)

// reservingStripes is how many locks stripedLocks spreads the products over.
const reservingStripes = 256

// stripedLocks serialises, within one process, the orders that reserve the same products. Two
// orders for one product decided at once would both append the product's next version: one
// commits, the other waits for it inside Postgres, fails on the version, reloads and decides
// again, a whole wasted transaction that also holds back the projectors while it waits. Queued
// here instead, the second decides on the first one's result (the aggregate cache holds it) and
// appends once. It is only an optimisation: the expected versions still decide every race, across
// processes too.
type stripedLocks struct {
	mu [reservingStripes]sync.Mutex
}

// lock takes the stripes of ids in ascending order (so that two orders of the same products
// cannot deadlock) and returns the function that releases them.
func (l *stripedLocks) lock(ids []int64) (unlock func()) {
	stripes := make([]int, 0, len(ids))
	for _, id := range ids {
		stripes = append(stripes, int(uint64(id)%reservingStripes))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		l.mu[s].Lock()
	}
	return func() {
		for i := len(stripes) - 1; i >= 0; i-- {
			l.mu[stripes[i]].Unlock()
		}
	}
}
