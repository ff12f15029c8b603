package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/eventstore"
)

// appendThings appends n events to stream thing-1 in one append.
func appendThings(t *testing.T, s *eventstore.Store, from, n int) {
	t.Helper()
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = ev("ThingChanged", map[string]int{"n": from + i + 1})
	}
	_, err := s.Append(context.Background(), eventstore.Metadata{}, eventstore.StreamAppend{
		StreamID: "thing-1", StreamType: "thing", ExpectedVersion: int64(from), Events: evs})
	if err != nil {
		t.Fatal(err)
	}
}

func versions(evs []eventstore.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

func TestLoadFrom(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	appendThings(t, s, 0, 5)
	for _, tc := range []struct {
		after int64
		want  string
	}{{0, "[1,2,3,4,5]"}, {3, "[4,5]"}, {5, "[]"}, {9, "[]"}} {
		evs, err := s.LoadFrom(ctx, "thing-1", tc.after)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonOf(versions(evs)); got != tc.want {
			t.Errorf("after %d: versions %s, want %s", tc.after, got, tc.want)
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestLoadSnapshotTail(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	snap := func(schema int, version int64) eventstore.Snapshot {
		return eventstore.Snapshot{StreamID: "thing-1", StreamType: "thing", SchemaVersion: schema, Version: version,
			State: json.RawMessage(`{"n": 3}`)}
	}

	got, err := s.LoadSnapshotTail(ctx, "thing-1", "thing", 1)
	if err != nil || got.Snapshot != nil || len(got.Events) != 0 || got.Head != 0 {
		t.Fatalf("empty stream: %+v, %v", got, err)
	}
	appendThings(t, s, 0, 5)
	if err := s.SaveSnapshot(ctx, snap(1, 3)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		streamType string
		schema     int
		snapshotAt int64 // 0: none returned
		events     string
	}{
		{"snapshot and tail", "thing", 1, 3, "[4,5]"},
		{"other schema version: whole stream", "thing", 2, 0, "[1,2,3,4,5]"},
		{"other stream type: whole stream", "widget", 1, 0, "[1,2,3,4,5]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LoadSnapshotTail(ctx, "thing-1", tc.streamType, tc.schema)
			if err != nil {
				t.Fatal(err)
			}
			if got.Head != 5 || jsonOf(versions(got.Events)) != tc.events {
				t.Fatalf("head %d, events %v; want 5, %s", got.Head, versions(got.Events), tc.events)
			}
			if tc.snapshotAt == 0 {
				if got.Snapshot != nil {
					t.Fatalf("snapshot %+v returned", got.Snapshot)
				}
				return
			}
			if got.Snapshot == nil || got.Snapshot.Version != tc.snapshotAt || jsonOf(got.Snapshot.State) != `{"n":3}` {
				t.Fatalf("snapshot = %+v", got.Snapshot)
			}
		})
	}

	// A snapshot at the head has no tail; one above it is returned with the lower head, for the
	// caller to refuse.
	for _, at := range []int64{5, 9} {
		if err := s.SaveSnapshot(ctx, snap(1, at)); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadSnapshotTail(ctx, "thing-1", "thing", 1)
		if err != nil || got.Snapshot == nil || got.Snapshot.Version != at || len(got.Events) != 0 || got.Head != 5 {
			t.Fatalf("snapshot at %d: %+v, %v", at, got, err)
		}
	}
}

// A snapshot never moves backwards: an older version (or an older schema) does not replace it, a
// newer schema does, and a conditional delete leaves a replaced snapshot alone.
func TestSaveSnapshotKeepsTheNewest(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	save := func(schema int, version int64) {
		t.Helper()
		err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "thing-1", StreamType: "thing", SchemaVersion: schema,
			Version: version, State: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
	stored := func() (schema int, version int64) {
		t.Helper()
		err := s.Pool().QueryRow(ctx, `SELECT schema_version, version FROM snapshots WHERE stream_id = 'thing-1'`).Scan(&schema, &version)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return schema, version
	}
	steps := []struct {
		name    string
		schema  int
		version int64
		wantS   int
		wantV   int64
	}{
		{"first", 1, 10, 1, 10},
		{"newer version", 1, 20, 1, 20},
		{"older version", 1, 15, 1, 20},
		{"same version", 1, 20, 1, 20},
		{"older schema, newer version", 0, 30, 1, 20},
		{"newer schema, older version", 2, 5, 2, 5},
	}
	for _, st := range steps {
		save(st.schema, st.version)
		if gs, gv := stored(); gs != st.wantS || gv != st.wantV {
			t.Fatalf("%s: stored schema %d version %d, want %d %d", st.name, gs, gv, st.wantS, st.wantV)
		}
	}
	if err := s.DeleteSnapshot(ctx, eventstore.Snapshot{StreamID: "thing-1", SchemaVersion: 1, Version: 20}); err != nil {
		t.Fatal(err)
	}
	if gs, gv := stored(); gs != 2 || gv != 5 {
		t.Fatalf("a stale delete removed the current snapshot (now %d %d)", gs, gv)
	}
	if err := s.DeleteSnapshot(ctx, eventstore.Snapshot{StreamID: "thing-1", SchemaVersion: 2, Version: 5}); err != nil {
		t.Fatal(err)
	}
	if gs, gv := stored(); gs != 0 || gv != 0 {
		t.Fatalf("snapshot not deleted (%d %d)", gs, gv)
	}
	if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "thing-1", StreamType: "thing", Version: 1, State: json.RawMessage(`{`)}); err == nil {
		t.Fatal("invalid JSON state accepted")
	}
}

// Loading from a snapshot reads the stream through its (stream_id, version) index: the head is one
// backward index step and the tail a range scan, however long the stream.
func TestSnapshotTailUsesTheStreamIndex(t *testing.T) {
	_, db := newStore(t)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `EXPLAIN `+eventstore.LoadSnapshotTailSQL, "thing-1", "thing", 1)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		plan := strings.Join(lines, "\n")
		// The head is one backward step in the index, not an aggregate over the stream.
		if strings.Contains(plan, "Seq Scan on events") || strings.Count(plan, "events_stream_version_key") < 2 ||
			!strings.Contains(plan, "Backward") || strings.Contains(plan, "Aggregate") {
			t.Errorf("plan does not read the stream through events_stream_version_key:\n%s", plan)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
