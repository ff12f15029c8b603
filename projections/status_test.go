package projections_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
)

// givenCarts is a consumer given the cart streams' events except CartViewed.
type givenCarts struct{}

func (givenCarts) Name() string          { return "carts-only" }
func (givenCarts) StreamTypes() []string { return []string{"cart"} }
func (givenCarts) SkipTypes() []string   { return []string{"CartViewed"} }

// A consumer's lag counts only the events it is given, and a position with none of them between
// its checkpoint and it counts as reached; a consumer the checkpoints were not told of is
// measured against every event.
func TestCheckpointsMeasureWhatAConsumerIsGiven(t *testing.T) {
	tdb := testdb.New(t)
	ctx := t.Context()
	store, err := eventstore.New(eventstore.Config{Pool: tdb.Pool})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	appendOne := func(streamType, eventType string) eventstore.Cursor {
		t.Helper()
		n++
		res, err := store.Append(ctx, eventstore.Metadata(domain.Metadata{ActorID: "tester"}), eventstore.StreamAppend{
			StreamID: fmt.Sprintf("given-%d", n), StreamType: streamType,
			Events: []eventstore.NewEvent{{Type: eventType, SchemaVersion: 1, Data: []byte(`{}`)}}})
		if err != nil {
			t.Fatal(err)
		}
		c, ok, err := store.CursorOf(ctx, res.LastPosition)
		if err != nil || !ok {
			t.Fatalf("cursor of %d: %v %v", res.LastPosition, ok, err)
		}
		return c
	}
	checkpoint := appendOne("cart", "ItemAdded")
	for _, name := range []string{"carts-only", "everything"} {
		if _, err := tdb.Pool.Exec(ctx, `INSERT INTO projector_offsets (consumer_group, offset_acked, last_processed_transaction_id)
			VALUES ($1, $2, $3::text::xid8)`, name, checkpoint.Position, fmt.Sprint(checkpoint.TxID)); err != nil {
			t.Fatal(err)
		}
	}
	ck := projections.NewCheckpoints(tdb.Pool).Given(givenCarts{})
	status := func(name string) int64 {
		t.Helper()
		st, err := ck.Status(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return st[0].LagEvents
	}
	// Reached holds only once no transaction older than the position is open on the server
	// (another package's test may hold one for a moment): a true answer is waited for.
	reached := func(name string, at eventstore.Cursor, want bool) bool {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			ok, err := ck.Reached(ctx, name, at)
			if err != nil {
				t.Fatal(err)
			}
			if ok || !want || time.Now().After(deadline) {
				return ok
			}
		}
	}

	if !reached("carts-only", checkpoint, true) || !reached("everything", checkpoint, true) {
		t.Fatal("the checkpoint itself is not reached")
	}
	order := appendOne("order", "OrderPlaced")
	viewed := appendOne("cart", "CartViewed")
	if got := status("carts-only"); got != 0 {
		t.Errorf("carts-only lags %d events it is not given, want 0", got)
	}
	if got := status("everything"); got != 2 {
		t.Errorf("everything lags %d events, want 2", got)
	}
	for _, c := range []struct {
		name string
		at   eventstore.Cursor
		want bool
	}{{"carts-only", order, true}, {"carts-only", viewed, true}, {"everything", order, false}, {"everything", viewed, false}} {
		if got := reached(c.name, c.at, c.want); got != c.want {
			t.Errorf("%s reached %+v = %v, want %v", c.name, c.at, got, c.want)
		}
	}
	added := appendOne("cart", "ItemAdded")
	after := appendOne("order", "OrderPlaced")
	if got := status("carts-only"); got != 1 {
		t.Errorf("carts-only lags %d events, want 1 (the item added)", got)
	}
	for _, at := range []eventstore.Cursor{added, after} {
		if reached("carts-only", at, false) {
			t.Errorf("carts-only reached %+v past an event it is given", at)
		}
	}
	if !reached("carts-only", viewed, true) {
		t.Error("carts-only no longer reached what came before the item added")
	}
}
