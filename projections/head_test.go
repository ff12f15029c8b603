package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
)

// The settled head moves with each committed append (once no older transaction is open on the
// server), but not past an older transaction still open: events committed after it may not be
// delivered yet. A waiter wakes when it moves.
func TestSettledHeadStopsAtOpenTransactionsAndWakesWaiters(t *testing.T) {
	tdb, h, appendOf := newHeadFixture(t)
	ctx := t.Context()
	appendOne := func() { t.Helper(); appendOf("test", 1) }

	if h.read(ctx) {
		t.Fatal("the head of an empty log moved")
	}
	appendOne()
	// Settled once no older transaction is open anywhere on the server (other tests' may be).
	for deadline := time.Now().Add(30 * time.Second); !h.read(ctx); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the head never moved after an append")
		}
	}
	if h.generation() != 1 {
		t.Fatalf("after an append: generation %d, want 1", h.generation())
	}
	if h.read(ctx) {
		t.Fatal("the head moved without an append")
	}

	// An open writer (a transaction id older than the next append's) holds the head back.
	open, err := tdb.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = open.Rollback(context.Background()) }()
	if _, err := open.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	appendOne()
	if h.read(ctx) {
		t.Fatal("the head moved past an open transaction")
	}

	// A waiter (no time-out in sight) wakes when the writer ends and the head moves.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go h.run(runCtx)
	gen := h.generation()
	woke := make(chan uint64)
	go func() {
		h.waitFor(gen, nil, time.Minute)
		woke <- h.generation()
	}()
	if err := open.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-woke; got != gen+1 {
		t.Fatalf("the waiter woke at generation %d, want %d", got, gen+1)
	}
	// Past a generation already reached, waitFor returns at once; so does every wait once
	// stopped.
	h.waitFor(gen, nil, time.Minute)
	h.stop()
	h.waitFor(h.generation(), nil, time.Minute)
	h.stop()
}

// A move of the head carries the stream types of the events it moved over: a waiter for other
// types sleeps through it, a waiter for its types (or for any) wakes. A move over more events
// than it looks into counts as carrying every type.
func TestSettledHeadMovesCarryStreamTypes(t *testing.T) {
	_, h, appendOnly := newHeadFixture(t)
	ctx := t.Context()
	appendOf := func(streamType string, events int) { // and read the head until it moves
		t.Helper()
		appendOnly(streamType, events)
		for deadline := time.Now().Add(30 * time.Second); !h.read(ctx); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the head never moved after an append")
			}
		}
	}
	moved := func(gen uint64, types ...string) bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.movedFor(gen, types)
	}

	appendOf("cart", 1) // the first read looks into nothing: every type
	gen := h.generation()
	if !moved(gen-1, "order") {
		t.Fatal("the first move did not count for every type")
	}
	appendOf("cart", 2)
	for _, c := range []struct {
		types []string
		want  bool
	}{{[]string{"order"}, false}, {[]string{"order", "user"}, false}, {[]string{"cart"}, true},
		{[]string{"order", "cart"}, true}, {nil, true}} {
		if got := moved(gen, c.types...); got != c.want {
			t.Errorf("after a move over cart events, moved for %v = %v, want %v", c.types, got, c.want)
		}
	}
	if moved(h.generation(), "cart") {
		t.Error("moved past the last generation")
	}
	appendOf("cart", movedTypesLimit)
	if !moved(h.generation()-1, "order") {
		t.Errorf("a move over %d events did not count for every type", movedTypesLimit)
	}

	// Waiting, with the head read as serve reads it: a waiter for orders sleeps through a move
	// over cart events (it goes back to waiting), one for carts wakes; then an order wakes the
	// first.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	gen = h.generation()
	orderWoke, cartWoke := make(chan struct{}), make(chan struct{})
	go func() { h.waitFor(gen, []string{"order"}, time.Minute); close(orderWoke) }()
	go func() { h.waitFor(gen, []string{"cart"}, time.Minute); close(cartWoke) }()
	go h.run(runCtx)
	appendOnly("cart", 1)
	woke := func(ch chan struct{}, who string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("the %s waiter did not wake", who)
		}
	}
	woke(cartWoke, "cart")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		h.mu.Lock()
		waiting := h.waiters
		h.mu.Unlock()
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters after the cart waiter woke, want the order waiter alone", waiting)
		}
	}
	select {
	case <-orderWoke:
		t.Fatal("the order waiter woke for a cart event")
	default:
	}
	appendOnly("order", 1)
	woke(orderWoke, "order")
}

// newHeadFixture returns a fresh database, a settled head on it (read every millisecond while it
// moves) and a function that appends, in one append, events new streams of a stream type, one
// event each.
func newHeadFixture(t *testing.T) (*testdb.DB, *settledHead, func(streamType string, events int)) {
	t.Helper()
	tdb := testdb.New(t)
	db := stdlib.OpenDBFromPool(tdb.Pool)
	t.Cleanup(func() { _ = db.Close() })
	store, err := eventstore.New(eventstore.Config{Pool: tdb.Pool})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	appendOf := func(streamType string, events int) {
		t.Helper()
		var appends []eventstore.StreamAppend
		for range events {
			n++
			appends = append(appends, eventstore.StreamAppend{StreamID: fmt.Sprintf("head-test-%d", n), StreamType: streamType,
				Events: []eventstore.NewEvent{{Type: "Tested", SchemaVersion: 1, Data: []byte(`{}`)}}})
		}
		if _, err := store.Append(t.Context(), eventstore.Metadata(domain.Metadata{ActorID: "tester"}), appends...); err != nil {
			t.Fatal(err)
		}
	}
	return tdb, newSettledHead(db, time.Millisecond, 10*time.Millisecond), appendOf
}
