package effects_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/techvault/techvault/effects"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// mailer stands in for a side effect: it records every call and fails once on the event it is
// told to, as an SMTP server that is briefly away would.
type mailer struct {
	mu     sync.Mutex
	calls  map[uuid.UUID]int
	order  []int64
	failOn int64
	failed bool
}

func (m *mailer) Name() string          { return "test_mailer" }
func (m *mailer) StreamTypes() []string { return []string{"order"} }
func (m *mailer) React(_ context.Context, e eventstore.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var d struct {
		N int64 `json:"n"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return err
	}
	if d.N == m.failOn && !m.failed {
		m.failed = true
		return errors.New("smtp: connection refused")
	}
	m.calls[e.ID]++
	m.order = append(m.order, d.N)
	return nil
}

func (m *mailer) snapshot() (map[uuid.UUID]int, []int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	calls := make(map[uuid.UUID]int, len(m.calls))
	for k, v := range m.calls {
		calls[k] = v
	}
	return calls, append([]int64(nil), m.order...)
}

// Every event gets its effect exactly once, in log order, although a failure in the middle of a
// batch makes the engine retry the batch: the events before the failing one are not acted on
// again, the failing one is retried, none is skipped, and events of other stream types are not
// given to the reactor.
func TestReactorActsOncePerEventAcrossRetries(t *testing.T) {
	db := testdb.New(t)
	ctx := t.Context()
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	ids := map[uuid.UUID]bool{}
	for i := range int64(n) {
		for _, st := range []string{"order", "other"} {
			res, err := store.Append(ctx, eventstore.Metadata{}, eventstore.StreamAppend{
				StreamID: fmt.Sprintf("%s-%d", st, i), StreamType: st,
				Events: []eventstore.NewEvent{{Type: "Thing", SchemaVersion: 1, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if st == "order" {
				ids[res.IDs[0]] = true
			}
		}
	}

	m := &mailer{calls: map[uuid.UUID]int{}, failOn: 17}
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	t.Cleanup(func() { _ = sqlDB.Close() })
	eng, err := projections.NewEngine(projections.EngineConfig{
		DB: sqlDB, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BatchSize: 100,
		RetryInterval: 10 * time.Millisecond, Handlers: []projections.BatchHandler{effects.Handler(m, sqlDB)},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = eng.Run(context.Background()) }()
	t.Cleanup(func() { _ = eng.Close() })

	deadline := time.Now().Add(15 * time.Second)
	for {
		calls, _ := m.snapshot()
		if len(calls) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events acted on", len(calls), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	calls, order := m.snapshot()
	for id, c := range calls {
		if !ids[id] || c != 1 {
			t.Fatalf("event %s acted on %d times (an order event: %v)", id, c, ids[id])
		}
	}
	for i, got := range order {
		if got != int64(i) {
			t.Fatalf("effects in order %v, want 0..%d", order, n-1)
		}
	}
	if !m.failed {
		t.Fatal("the failure was never injected")
	}
	var done int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM effects_done WHERE reactor = 'test_mailer'`).Scan(&done); err != nil {
		t.Fatal(err)
	}
	if done != n {
		t.Fatalf("%d effects recorded, want %d", done, n)
	}
}
