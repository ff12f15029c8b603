package queries

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/techvault/techvault/internal/testdb"
)

// A listing read waits for a free turn: one whose context ends first returns its error, and one
// that waits runs as soon as the read before it ends.
func TestListingReadsWaitTheirTurn(t *testing.T) {
	db := testdb.New(t)
	q := NewCatalogQueries(db.Pool, 1)
	q.lists <- struct{}{} // the one turn, taken by a read in progress

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := q.Listing(ctx, ProductFilter{Limit: 5}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read with no free turn: %v; want it to wait until its context ends", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := q.Listing(context.Background(), ProductFilter{Limit: 5})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a read ran while the only turn was taken (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	<-q.lists // the read in progress ends
	if err := <-done; err != nil {
		t.Fatalf("the waiting read: %v", err)
	}
	if len(q.lists) != 0 {
		t.Fatalf("%d turns still taken after every read ended", len(q.lists))
	}
}
