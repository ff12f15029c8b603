package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func newStore(t *testing.T) (*eventstore.Store, *testdb.DB) {
	t.Helper()
	db := testdb.New(t)
	s, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func ev(typ string, data any) eventstore.NewEvent {
	b, _ := json.Marshal(data)
	return eventstore.NewEvent{Type: typ, SchemaVersion: 1, Data: b}
}

func TestAppendAndLoad(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	md := eventstore.Metadata{CorrelationID: "c1", ActorID: "admin", RequestID: "r1"}
	res, err := s.Append(ctx, md, eventstore.StreamAppend{
		StreamID: "thing-1", StreamType: "thing", ExpectedVersion: 0,
		Events: []eventstore.NewEvent{ev("ThingMade", map[string]int{"n": 1}), ev("ThingChanged", map[string]int{"n": 2})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Positions) != 2 || res.Positions[0] >= res.Positions[1] || res.LastPosition != res.Positions[1] {
		t.Fatalf("positions = %v, last %d", res.Positions, res.LastPosition)
	}
	evs, err := s.Load(ctx, "thing-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("loaded %d events, want 2", len(evs))
	}
	for i, e := range evs {
		if e.Version != int64(i+1) || e.StreamType != "thing" || e.SchemaVersion != 1 || e.Metadata != md {
			t.Errorf("event %d = %+v", i, e)
		}
		if e.ID.Version() != 7 {
			t.Errorf("event id %s is not a UUIDv7", e.ID)
		}
		if e.ID != res.IDs[i] || e.Position != res.Positions[i] {
			t.Errorf("event %d id/position do not match the append result", i)
		}
	}
	if string(evs[1].Data) != `{"n":2}` {
		t.Errorf("data = %s", evs[1].Data)
	}
	if evs, _ := s.Load(ctx, "nope"); len(evs) != 0 {
		t.Errorf("unknown stream loaded %d events", len(evs))
	}
}

func TestAppendConcurrencyErrors(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mustAppend := func(a ...eventstore.StreamAppend) {
		t.Helper()
		if _, err := s.Append(ctx, eventstore.Metadata{}, a...); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(eventstore.StreamAppend{StreamID: "a", StreamType: "t", Events: []eventstore.NewEvent{ev("E", 1), ev("E", 2)}})
	mustAppend(eventstore.StreamAppend{StreamID: "b", StreamType: "t", Events: []eventstore.NewEvent{ev("E", 1)}})

	tests := []struct {
		name    string
		appends []eventstore.StreamAppend
	}{
		{"stream exists, expected new", []eventstore.StreamAppend{{StreamID: "a", StreamType: "t", ExpectedVersion: 0, Events: []eventstore.NewEvent{ev("E", 3)}}}},
		{"expected behind", []eventstore.StreamAppend{{StreamID: "a", StreamType: "t", ExpectedVersion: 1, Events: []eventstore.NewEvent{ev("E", 3)}}}},
		{"expected ahead (would leave a gap)", []eventstore.StreamAppend{{StreamID: "a", StreamType: "t", ExpectedVersion: 5, Events: []eventstore.NewEvent{ev("E", 3)}}}},
		{"expected on a stream that does not exist", []eventstore.StreamAppend{{StreamID: "zzz", StreamType: "t", ExpectedVersion: 3, Events: []eventstore.NewEvent{ev("E", 3)}}}},
		{"second of two streams clashes: nothing is appended", []eventstore.StreamAppend{
			{StreamID: "c", StreamType: "t", ExpectedVersion: 0, Events: []eventstore.NewEvent{ev("E", 1)}},
			{StreamID: "b", StreamType: "t", ExpectedVersion: 0, Events: []eventstore.NewEvent{ev("E", 2)}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.Head(ctx)
			_, err := s.Append(ctx, eventstore.Metadata{}, tc.appends...)
			if !errors.Is(err, eventstore.ErrConcurrency) {
				t.Fatalf("err = %v, want ErrConcurrency", err)
			}
			var ce *eventstore.ConcurrencyError
			if !errors.As(err, &ce) {
				t.Fatalf("err %T is not a *ConcurrencyError", err)
			}
			if ce.StreamID == "" {
				t.Fatalf("concurrency error names no stream: %v", err)
			}
			for _, a := range tc.appends {
				if a.StreamID == ce.StreamID && a.ExpectedVersion != ce.ExpectedVersion {
					t.Fatalf("concurrency error says expected version %d, the append expected %d", ce.ExpectedVersion, a.ExpectedVersion)
				}
			}
			if c, _ := s.Load(ctx, "c"); len(c) != 0 {
				t.Fatalf("stream c got %d events from a failed append", len(c))
			}
			after, _ := s.Head(ctx)
			if after != before {
				t.Fatalf("head moved from %d to %d", before, after)
			}
		})
	}

	// Several streams at once, each at its expected version.
	mustAppend(
		eventstore.StreamAppend{StreamID: "a", StreamType: "t", ExpectedVersion: 2, Events: []eventstore.NewEvent{ev("E", 3)}},
		eventstore.StreamAppend{StreamID: "b", StreamType: "t", ExpectedVersion: 1, Events: []eventstore.NewEvent{ev("E", 2)}},
		eventstore.StreamAppend{StreamID: "c", StreamType: "t", ExpectedVersion: 0, Events: []eventstore.NewEvent{ev("E", 1)}},
	)
}

func TestAppendRejectsBadInput(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tests := []struct {
		name string
		a    []eventstore.StreamAppend
	}{
		{"nothing", nil},
		{"no stream id", []eventstore.StreamAppend{{StreamType: "t", Events: []eventstore.NewEvent{ev("E", 1)}}}},
		{"no type", []eventstore.StreamAppend{{StreamID: "x", StreamType: "t", Events: []eventstore.NewEvent{{SchemaVersion: 1, Data: []byte(`{}`)}}}}},
		{"bad json", []eventstore.StreamAppend{{StreamID: "x", StreamType: "t", Events: []eventstore.NewEvent{{Type: "E", SchemaVersion: 1, Data: []byte(`{`)}}}}},
		{"same stream twice", []eventstore.StreamAppend{
			{StreamID: "x", StreamType: "t", Events: []eventstore.NewEvent{ev("E", 1)}},
			{StreamID: "x", StreamType: "t", ExpectedVersion: 1, Events: []eventstore.NewEvent{ev("E", 1)}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Append(ctx, eventstore.Metadata{}, tc.a...); err == nil {
				t.Fatal("append succeeded")
			}
			if h, _ := s.Head(ctx); h != 0 {
				t.Fatalf("head = %d after a refused append", h)
			}
		})
	}
}

// 50 goroutines race to append at the same expected version: exactly one wins each version and
// the stream ends up with no gaps.
func TestConcurrentAppendsToOneStream(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	const writers, rounds = 50, 5
	for round := range rounds {
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			wins      int
			conflicts int
			others    []error
		)
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.Append(ctx, eventstore.Metadata{}, eventstore.StreamAppend{
					StreamID: "hot", StreamType: "t", ExpectedVersion: int64(round),
					Events: []eventstore.NewEvent{ev("E", map[string]int{"writer": w, "round": round})},
				})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, eventstore.ErrConcurrency):
					conflicts++
				default:
					others = append(others, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(others) > 0 {
			t.Fatalf("round %d: unexpected errors: %v", round, others)
		}
		if wins != 1 || conflicts != writers-1 {
			t.Fatalf("round %d: %d wins and %d conflicts, want 1 and %d", round, wins, conflicts, writers-1)
		}
	}
	evs, err := s.Load(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != rounds {
		t.Fatalf("stream has %d events, want %d", len(evs), rounds)
	}
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d: gap", i, e.Version)
		}
	}
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Problems)
	}
}

func TestEventsAreAppendOnly(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, eventstore.Metadata{}, eventstore.StreamAppend{StreamID: "a", StreamType: "t", Events: []eventstore.NewEvent{ev("E", 1)}}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE events SET payload = '{"x":2}'`,
		`DELETE FROM events`,
		`TRUNCATE events`,
	} {
		_, err := db.Pool.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "TV403" {
			t.Errorf("%s: err = %v, want refusal TV403", stmt, err)
		}
	}
	if evs, _ := s.Load(ctx, "a"); len(evs) != 1 || string(evs[0].Data) != "1" {
		t.Fatalf("event changed: %+v", evs)
	}
	// A stream's first event must carry sha256(content_hash) as its hash.
	_, err := db.Pool.Exec(ctx, `INSERT INTO events (uuid, stream_id, stream_type, version, event_type, schema_version,
		payload, metadata, recorded_at, content_hash, hash)
		VALUES ('00000000-0000-7000-8000-000000000001', 'forged', 't', 1, 'E', 1, '{}', '{}', now(), '\x01', '\x02')`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
		t.Errorf("first event with a forged hash: err = %v, want a check violation", err)
	}
}

// Verify detects an event altered, removed or inserted behind the store's back (by someone who
// can switch the append-only trigger off).
func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper string
	}{
		{"payload altered", `UPDATE events SET payload = '{"amount":1}' WHERE stream_id = 's1' AND version = 2`},
		{"metadata altered", `UPDATE events SET metadata = '{"actor_id":"mallory"}' WHERE stream_id = 's1' AND version = 1`},
		{"event removed", `DELETE FROM events WHERE stream_id = 's1' AND version = 2`},
		{"hash recomputed after edit", `UPDATE events SET payload = '{"amount":1}', content_hash = sha256('x') WHERE stream_id = 's1' AND version = 3`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, db := newStore(t)
			ctx := context.Background()
			for i := range 3 {
				if _, err := s.Append(ctx, eventstore.Metadata{ActorID: "alice"}, eventstore.StreamAppend{
					StreamID: "s1", StreamType: "t", ExpectedVersion: int64(i),
					Events: []eventstore.NewEvent{ev("Paid", map[string]int{"amount": 100 + i})},
				}); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := s.Verify(ctx)
			if err != nil || !rep.OK() || rep.Events != 3 || rep.Streams != 1 {
				t.Fatalf("clean log: %v %+v", err, rep)
			}
			_, err = db.Pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE events DISABLE TRIGGER USER; %s; ALTER TABLE events ENABLE TRIGGER USER`, tc.tamper))
			if err != nil {
				t.Fatal(err)
			}
			rep, err = s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("tampering not detected: %+v", rep)
			}
		})
	}
}
