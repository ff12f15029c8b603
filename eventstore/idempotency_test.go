package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/techvault/techvault/eventstore"
)

// The key row and the events commit together: a second append under a taken key appends nothing.
func TestAppendWithKey(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	key := eventstore.KeyRecord{Actor: "admin", Key: "k1", RequestHash: []byte{1}, Command: "Test", Result: json.RawMessage(`{"ok":true}`)}
	one := func(stream string) eventstore.StreamAppend {
		return eventstore.StreamAppend{StreamID: stream, StreamType: "test", Events: []eventstore.NewEvent{ev("A", 1), ev("B", 2)}}
	}
	res, err := s.AppendWithKey(ctx, eventstore.Metadata{}, key, one("s-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.LookupKey(ctx, "admin", "k1", time.Hour)
	if err != nil || !ok || got.Position != res.LastPosition || string(got.Result) != `{"ok": true}` || got.Command != "Test" {
		t.Fatalf("lookup = %+v %v %v (appended at %d)", got, ok, err, res.LastPosition)
	}
	if _, ok, _ := s.LookupKey(ctx, "someone-else", "k1", time.Hour); ok {
		t.Fatal("a key is per actor")
	}

	if _, err := s.AppendWithKey(ctx, eventstore.Metadata{}, key, one("s-2")); !errors.Is(err, eventstore.ErrKeyTaken) {
		t.Fatalf("second append under the key: %v", err)
	}
	if evs, err := s.Load(ctx, "s-2"); err != nil || len(evs) != 0 {
		t.Fatalf("the refused append left %d events (%v)", len(evs), err)
	}

	// An expired row is absent and deleted, so the key can be used again.
	if _, err := db.Pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.LookupKey(ctx, "admin", "k1", time.Hour); ok || err != nil {
		t.Fatalf("expired key found (%v)", err)
	}
	if _, err := s.AppendWithKey(ctx, eventstore.Metadata{}, key, one("s-2")); err != nil {
		t.Fatalf("reusing an expired key: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpiredKeys(ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("cleanup deleted %d (%v)", n, err)
	}
}
