package eventstore_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/techvault/techvault/eventstore"
)

// 20 writers on different streams open their transactions in order, then commit in a shuffled
// order after random delays, so later positions often commit first. A Watermill subscriber on the
// events table must receive every event exactly once, late commits included.
func TestSubscriberNeverSkipsLateCommits(t *testing.T) {
	s, db := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	sub, err := wsql.NewSubscriber(sqlDB, wsql.SubscriberConfig{
		ConsumerGroup:  "test",
		SchemaAdapter:  eventstore.NewSchemaAdapter(7), // small batches: many cursor moves
		OffsetsAdapter: eventstore.OffsetsAdapter(),
		PollInterval:   5 * time.Millisecond,
		ResendInterval: 5 * time.Millisecond,
		RetryInterval:  5 * time.Millisecond,
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, eventstore.Topic)
	if err != nil {
		t.Fatal(err)
	}

	const writers, rounds = 20, 10
	want := writers * rounds
	received := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range msgs {
			e, err := eventstore.EventFromMessage(msg)
			if err != nil {
				t.Errorf("decoding message: %v", err)
			}
			received[e.StreamID+"/"+strconv.FormatInt(e.Version, 10)]++
			msg.Ack()
			if len(received) == want {
				return
			}
		}
	}()

	for round := range rounds {
		txs := make([]pgx.Tx, writers)
		for w := range writers { // open and append in order: positions ascend with w
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			txs[w] = tx
			if _, err := s.AppendWith(ctx, tx, eventstore.Metadata{}, eventstore.StreamAppend{
				StreamID: "w-" + strconv.Itoa(w), StreamType: "writer", ExpectedVersion: int64(round),
				Events: []eventstore.NewEvent{ev("Wrote", map[string]int{"round": round})},
			}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, w := range rand.Perm(writers) { // commit in a shuffled order, with random delays
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
				if err := txs[w].Commit(ctx); err != nil {
					t.Errorf("commit: %v", err)
				}
			}()
		}
		wg.Wait()
	}

	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("received %d of %d events", len(received), want)
	}
	for k, n := range received {
		if n != 1 {
			t.Errorf("event %s delivered %d times", k, n)
		}
	}
	if len(received) != want {
		t.Fatalf("received %d distinct events, want %d", len(received), want)
	}
	// Nothing more arrives after everything was delivered once.
	select {
	case msg, ok := <-msgs:
		if ok {
			t.Fatalf("extra delivery: %s", msg.UUID)
		}
	case <-time.After(200 * time.Millisecond):
	}
}
