package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/techvault/techvault/eventstore"
)

// Appends that arrive while every writer is busy are written together, and each keeps its own
// outcome: its events at the positions it is told, a clash reported to its own caller only (the
// group's statement fails, and every append of it is written again alone), and an append whose
// caller gave up while it waited is never written.
func TestQueuedAppendsAreGroupedAndKeepTheirOwnOutcomes(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	release := s.HoldWriters()

	type outcome struct {
		res eventstore.AppendResult
		err error
	}
	const n = 40
	outcomes := make([]chan outcome, n)
	for i := range n {
		outcomes[i] = make(chan outcome, 1)
		expected := int64(0)
		if i == 7 {
			expected = 3 // a new stream is not at version 3: a clash
		}
		go func() {
			res, err := s.Append(ctx, eventstore.Metadata{ActorID: fmt.Sprint(i)}, eventstore.StreamAppend{
				StreamID: fmt.Sprintf("g-%d", i), StreamType: "g", ExpectedVersion: expected,
				Events: []eventstore.NewEvent{ev("A", map[string]int{"i": i}), ev("B", map[string]int{"i": i})},
			})
			outcomes[i] <- outcome{res, err}
		}()
	}
	gone, cancel := context.WithCancel(ctx)
	goneDone := make(chan error, 1)
	go func() {
		_, err := s.Append(gone, eventstore.Metadata{}, eventstore.StreamAppend{StreamID: "g-gone", StreamType: "g",
			Events: []eventstore.NewEvent{ev("A", nil)}})
		goneDone <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.QueuedAppends() < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", s.QueuedAppends(), n+1)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-goneDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("an append whose caller gave up: %v, want context.Canceled", err)
	}
	release()

	txs := map[int64]bool{}
	for i := range n {
		o := <-outcomes[i]
		if i == 7 {
			if !errors.Is(o.err, eventstore.ErrConcurrency) {
				t.Fatalf("the clashing append: %v, want a concurrency error", o.err)
			}
			continue
		}
		if o.err != nil {
			t.Fatalf("append %d: %v", i, o.err)
		}
		if len(o.res.Positions) != 2 || o.res.LastPosition != max(o.res.Positions[0], o.res.Positions[1]) {
			t.Fatalf("append %d: result %+v", i, o.res)
		}
		for j, pos := range o.res.Positions {
			e, ok, err := s.EventAt(ctx, pos)
			if err != nil || !ok {
				t.Fatalf("append %d: no event at %d (%v)", i, pos, err)
			}
			if e.StreamID != fmt.Sprintf("g-%d", i) || e.ID != o.res.IDs[j] || e.Version != int64(j+1) {
				t.Fatalf("append %d, event %d: position %d holds %s v%d %s", i, j, pos, e.StreamID, e.Version, e.ID)
			}
			txs[e.TxID] = true
		}
	}
	if len(txs) >= n-1 {
		t.Fatalf("%d appends written in %d transactions: not grouped", n-1, len(txs))
	}
	for _, id := range []string{"g-7", "g-gone"} {
		if evs, err := s.Load(ctx, id); err != nil || len(evs) != 0 {
			t.Fatalf("%s holds %d events (%v), want none", id, len(evs), err)
		}
	}
}
