package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
)

// appendN appends n events to a stream, one append (and transaction) each.
func appendN(t *testing.T, s *eventstore.Store, stream string, from, n int) {
	t.Helper()
	for i := range n {
		v := int64(from + i)
		if _, err := s.Append(context.Background(), eventstore.Metadata{ActorID: "alice"}, eventstore.StreamAppend{
			StreamID: stream, StreamType: strings.SplitN(stream, "-", 2)[0], ExpectedVersion: v,
			Events: []eventstore.NewEvent{ev("Changed", map[string]any{"stream": stream, "n": v + 1})},
		}); err != nil {
			t.Fatalf("appending to %s: %v", stream, err)
		}
	}
}

// waitSettled waits until no transaction that wrote events can still be running. The settled
// bound is cluster-wide: another test's open transaction holds it back for a while.
func waitSettled(t *testing.T, db *testdb.DB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var settled bool
		if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(bool_and(
			transaction_id < pg_snapshot_xmin(pg_current_snapshot())), true) FROM events`).Scan(&settled); err != nil {
			t.Fatal(err)
		}
		if settled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("events did not settle within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sealAll seals every event in the log and checks that the seal has the expected number (any
// when 0).
func sealAll(t *testing.T, s *eventstore.Store, db *testdb.DB, number int64) eventstore.Seal {
	t.Helper()
	waitSettled(t, db)
	seal, err := s.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if (number != 0 && seal.Number != number) || seal.TotalEvents != n {
		t.Fatalf("seal = %+v, want number %d covering %d events", seal, number, n)
	}
	return seal
}

// tamper runs SQL behind the events table's triggers, as a superuser can.
func tamper(t *testing.T, db *testdb.DB, sql string) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(),
		`BEGIN; SET LOCAL session_replication_role = replica; `+sql+`; COMMIT`)
	if err != nil {
		t.Fatalf("tampering: %v", err)
	}
}

func verify(t *testing.T, s *eventstore.Store) eventstore.VerifyReport {
	t.Helper()
	rep, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// sealedLog builds a log with two seals and a few events after the last one:
//
//	seal 1: category-1 v1-3, category-2 v1-3, product-1 v1-4, product-2 v1-3
//	seal 2: product-2 v4-5, product-3 v1-2
//	after:  product-1 v5
func sealedLog(t *testing.T) (*eventstore.Store, *testdb.DB) {
	t.Helper()
	s, db := newStore(t)
	appendN(t, s, "category-1", 0, 3)
	appendN(t, s, "category-2", 0, 3)
	appendN(t, s, "product-1", 0, 4)
	appendN(t, s, "product-2", 0, 3)
	sealAll(t, s, db, 1)
	appendN(t, s, "product-2", 3, 2)
	appendN(t, s, "product-3", 0, 2)
	sealAll(t, s, db, 2)
	appendN(t, s, "product-1", 4, 1)
	if rep := verify(t, s); !rep.OK() || rep.Seals != 2 || rep.SealedEvents != 17 || rep.Events != 18 {
		t.Fatalf("untampered log: %+v", rep)
	}
	return s, db
}

// rechain rewrites one event's payload and recomputes its content hash and every later hash of
// its stream, so that the stream's own chain verifies.
func rechain(t *testing.T, s *eventstore.Store, db *testdb.DB, stream string, version int64, payload string) {
	t.Helper()
	ctx := context.Background()
	evs, err := s.Load(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var sql strings.Builder
	var prev []byte
	for _, e := range evs {
		var meta string
		if err := db.Pool.QueryRow(ctx, `SELECT metadata::text FROM events WHERE "offset" = $1`, e.Position).Scan(&meta); err != nil {
			t.Fatal(err)
		}
		data := []byte(e.Data)
		if e.Version == version {
			data = []byte(payload)
		}
		content := eventstore.ContentHash(e.ID, e.StreamID, e.StreamType, e.Version, e.Type, e.SchemaVersion, data, []byte(meta), e.RecordedAt)
		h := eventstore.ChainHash(prev, content)
		prev = h
		if e.Version < version {
			continue
		}
		fmt.Fprintf(&sql, `UPDATE events SET payload = '%s', content_hash = '\x%x', hash = '\x%x' WHERE "offset" = %d; `,
			data, content, h, e.Position)
	}
	tamper(t, db, sql.String())
}

// Every kind of tampering before the last seal is named by the first problem verify reports.
func TestVerifyNamesTamperingBehindTheTriggers(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, s *eventstore.Store, db *testdb.DB)
		first  []string // substrings of the first problem
	}{
		{
			name: "tail of a stream deleted",
			tamper: func(t *testing.T, _ *eventstore.Store, db *testdb.DB) {
				tamper(t, db, `DELETE FROM events WHERE stream_id = 'product-2' AND version > 3`)
			},
			first: []string{"stream product-2: events after version 3 are missing (sealed at version 5 in seal 2)"},
		},
		{
			name: "last event of a stream deleted",
			tamper: func(t *testing.T, _ *eventstore.Store, db *testdb.DB) {
				tamper(t, db, `DELETE FROM events WHERE stream_id = 'category-1' AND version = 3`)
			},
			first: []string{"stream category-1: events after version 2 are missing (sealed at version 3 in seal 1)"},
		},
		{
			name: "whole stream deleted",
			tamper: func(t *testing.T, _ *eventstore.Store, db *testdb.DB) {
				tamper(t, db, `DELETE FROM events WHERE stream_id = 'category-2'`)
			},
			first: []string{"stream category-2: the whole stream is missing (sealed at version 3 in seal 1)"},
		},
		{
			name: "event in the middle deleted",
			tamper: func(t *testing.T, _ *eventstore.Store, db *testdb.DB) {
				tamper(t, db, `DELETE FROM events WHERE stream_id = 'product-1' AND version = 2`)
			},
			first: []string{"stream product-1: event at position", "(version 3): version 2 is missing (version 3 follows version 1)"},
		},
		{
			name: "forged event inserted into sealed history",
			tamper: func(t *testing.T, s *eventstore.Store, db *testdb.DB) {
				// A well-formed event (its hashes chain), then moved back among the first
				// seal's transactions.
				appendN(t, s, "category-1", 3, 1)
				tamper(t, db, `UPDATE events SET transaction_id = (SELECT min(transaction_id) FROM events)
					WHERE stream_id = 'category-1' AND version = 4`)
			},
			first: []string{"stream category-1: event at position", "(version 4): inserted: it lies in seal 1's range, but the seals recorded stream category-1 only up to version 3"},
		},
		{
			name: "event altered and its stream's chain recomputed",
			tamper: func(t *testing.T, s *eventstore.Store, db *testdb.DB) {
				rechain(t, s, db, "product-3", 2, `{"n":99}`)
			},
			// Seal 2 recorded product-3 at version 2 only: the rewrite lies somewhere up to it.
			first: []string{"stream product-3: an event from version 1 to version 2 was altered or replaced (the hash at version 2 differs from the one seal 2 recorded)"},
		},
		{
			name: "event altered in a sealed range and the chain recomputed",
			tamper: func(t *testing.T, s *eventstore.Store, db *testdb.DB) {
				rechain(t, s, db, "product-1", 2, `{"n":99}`)
			},
			first: []string{"stream product-1: an event from version 1 to version 4 was altered or replaced (the hash at version 4 differs from the one seal 1 recorded)"},
		},
		{
			name: "content altered",
			tamper: func(t *testing.T, _ *eventstore.Store, db *testdb.DB) {
				tamper(t, db, `UPDATE events SET payload = '{"n":1}' WHERE stream_id = 'product-2' AND version = 2`)
			},
			first: []string{"stream product-2: event at position", "(version 2): altered: its content does not match its content hash"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, db := sealedLog(t)
			tc.tamper(t, s, db)
			rep := verify(t, s)
			if rep.OK() {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			first := rep.Problems[0].String()
			for _, want := range tc.first {
				if !strings.Contains(first, want) {
					t.Errorf("first problem = %q, want it to contain %q", first, want)
				}
			}
			if t.Failed() {
				for _, p := range rep.Problems {
					t.Log(p)
				}
			}
		})
	}
}

// The documented limit: what was appended after the last seal can be removed unnoticed, since
// only its stream's chain covers it and a chain cannot show a lost tail.
func TestVerifyCannotSeeRemovalsAfterTheLastSeal(t *testing.T) {
	s, db := sealedLog(t)
	tamper(t, db, `DELETE FROM events WHERE stream_id = 'product-1' AND version = 5`)
	if rep := verify(t, s); !rep.OK() || rep.Events != 17 {
		t.Fatalf("verify = %+v; the limit changed: update the README", rep)
	}
}

// A seal covers only settled events: an append in a transaction still open when the seal is made
// is left to the next seal, and so is every event committed after that transaction began.
func TestSealSkipsOpenTransactions(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	appendN(t, s, "before-1", 0, 1)
	waitSettled(t, db)

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := s.AppendWith(ctx, tx, eventstore.Metadata{}, eventstore.StreamAppend{
		StreamID: "open-1", StreamType: "open", Events: []eventstore.NewEvent{ev("Opened", map[string]int{})},
	}); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "after-1", 0, 1) // committed, but after the open transaction took its id

	seal, err := s.Seal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seal.Number != 1 || seal.TotalEvents != 1 {
		t.Fatalf("seal while a writer is open = %+v, want seal 1 covering before-1 only", seal)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	sealAll(t, s, db, 2)
	if rep := verify(t, s); !rep.OK() || rep.Seals != 2 || rep.SealedEvents != 3 {
		t.Fatalf("verify: %+v", rep)
	}
}

// Many writers and several sealers at once: the seals form one chain, and the untampered log
// verifies with no problem.
func TestSealsUnderConcurrentAppends(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		writers sync.WaitGroup
		done    = make(chan struct{})
		errs    = make(chan error, 16)
		// sealed counts the seals taken while the writers run. On a loaded server every event can
		// stay unsettled for a while (a write transaction open in any database holds them back),
		// so the writers go on past their 40 rounds until one seal covered something, for at most
		// 20 s more.
		sealed atomic.Int64
	)
	deadline := time.Now().Add(20 * time.Second)
	for w := range 6 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			stream := fmt.Sprintf("thing-%d", w%3) // two writers per stream: conflicts happen
			extra := 0                             // rounds after a seal, so that the last seal is not the only one
			for i := 0; ; i++ {
				if i >= 40 && (sealed.Load() > 0 || time.Now().After(deadline)) {
					if extra == 3 {
						break
					}
					extra++
				}
				evs, err := s.Load(ctx, stream)
				if err != nil {
					errs <- err
					return
				}
				_, err = s.Append(ctx, eventstore.Metadata{}, eventstore.StreamAppend{
					StreamID: stream, StreamType: "thing", ExpectedVersion: int64(len(evs)),
					Events: []eventstore.NewEvent{ev("Changed", map[string]int{"w": w}), ev("Changed", map[string]int{"w": w})},
				}, eventstore.StreamAppend{
					StreamID: fmt.Sprintf("own-%d-%d", w, len(evs)), StreamType: "own",
					Events: []eventstore.NewEvent{ev("Made", map[string]int{"w": w})},
				})
				if err != nil && !errors.Is(err, eventstore.ErrConcurrency) {
					errs <- err
					return
				}
			}
		}()
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				seal, err := s.Seal(ctx)
				if err != nil {
					errs <- err
					return
				}
				if seal.Events > 0 {
					sealed.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	writers.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sealAll(t, s, db, 0)
	rep := verify(t, s)
	if !rep.OK() || rep.Seals < 2 || rep.SealedEvents != rep.Events {
		for _, p := range rep.Problems {
			t.Log(p)
		}
		t.Fatalf("verify after concurrent appends and seals: %d problems, %d seals, %d of %d events sealed",
			len(rep.Problems), rep.Seals, rep.SealedEvents, rep.Events)
	}
}

// Sealing with nothing new settled records nothing; seals refuse updates and deletes.
func TestSealsAreAppendOnly(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	if seal, err := s.Seal(ctx); err != nil || seal.Number != 0 {
		t.Fatalf("seal of an empty log = %+v, %v", seal, err)
	}
	appendN(t, s, "thing-1", 0, 2)
	first := sealAll(t, s, db, 1)
	again, err := s.Seal(ctx)
	if err != nil || again.Number != 1 || string(again.Digest) != string(first.Digest) {
		t.Fatalf("second seal with nothing new = %+v, %v", again, err)
	}
	for _, sql := range []string{
		`UPDATE seals SET digest = sha256('x')`,
		`DELETE FROM seals`,
		`TRUNCATE seals CASCADE`,
		`UPDATE seal_streams SET version = 1`,
		`DELETE FROM seal_streams`,
		`INSERT INTO seals (seal_no, transaction_id, "offset", event_count, total_events, digest)
			VALUES (3, '1', 1, 1, 3, sha256('x'))`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s: accepted", sql)
		}
	}
}

// RunSealer seals at once and then every interval, and returns when its context ends.
func TestRunSealer(t *testing.T) {
	s, db := newStore(t)
	appendN(t, s, "thing-1", 0, 3)
	waitSettled(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunSealer(ctx, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		last, err := s.LastSeal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if last.TotalEvents == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RunSealer did not seal within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunSealer returned %v", err)
	}
}
