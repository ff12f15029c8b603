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
	tdb := testdb.New(t)
	ctx := t.Context()
	db := stdlib.OpenDBFromPool(tdb.Pool)
	defer func() { _ = db.Close() }()
	h := newSettledHead(db, time.Millisecond, 10*time.Millisecond)
	store, err := eventstore.New(eventstore.Config{Pool: tdb.Pool})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	appendOne := func() {
		t.Helper()
		n++
		if _, err := store.Append(ctx, eventstore.Metadata(domain.Metadata{ActorID: "tester"}), eventstore.StreamAppend{
			StreamID: fmt.Sprintf("head-test-%d", n), StreamType: "test",
			Events: []eventstore.NewEvent{{Type: "Tested", SchemaVersion: 1, Data: []byte(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
	}

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
		h.waitPast(gen, time.Minute)
		woke <- h.generation()
	}()
	if err := open.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-woke; got != gen+1 {
		t.Fatalf("the waiter woke at generation %d, want %d", got, gen+1)
	}
	// Past a generation already reached, waitPast returns at once; so does every wait once
	// stopped.
	h.waitPast(gen, time.Minute)
	h.stop()
	h.waitPast(h.generation(), time.Minute)
	h.stop()
}
