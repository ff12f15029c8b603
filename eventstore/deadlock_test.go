package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
)

// Appends that share streams but list them in different orders (two orders for the same
// products) only ever clash on versions: they never deadlock, and nothing else fails.
func TestAppendsListingSharedStreamsInAnyOrderNeverDeadlock(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	streams := []string{"product-1", "product-2", "product-3"}
	head := func(id string) int64 {
		evs, err := s.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(evs))
	}
	const writers, rounds = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			order := slices.Clone(streams)
			if w%2 == 1 {
				slices.Reverse(order)
			}
			for r := 0; r < rounds; {
				appends := make([]eventstore.StreamAppend, 0, len(order)+1)
				appends = append(appends, eventstore.StreamAppend{StreamID: fmt.Sprintf("order-%d-%d", w, r), StreamType: "order",
					Events: []eventstore.NewEvent{ev("OrderPlaced", r)}})
				for _, id := range order {
					appends = append(appends, eventstore.StreamAppend{StreamID: id, StreamType: "product", ExpectedVersion: head(id),
						Events: []eventstore.NewEvent{ev("ProductStockReserved", w)}})
				}
				_, err := s.Append(ctx, eventstore.Metadata{}, appends...)
				switch {
				case err == nil:
					r++
				case errors.Is(err, domain.ErrConcurrency):
				default:
					errs <- fmt.Errorf("writer %d round %d: %w", w, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range streams {
		if h := head(id); h != writers*rounds {
			t.Errorf("%s at version %d, want %d", id, h, writers*rounds)
		}
	}
}
