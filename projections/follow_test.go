package projections

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/techvault/techvault/internal/testdb"
)

// The notifications that arrive while Notified runs come in its next call, together and in order;
// a lost connection is reported to Live and the follower comes back.
func TestFollowBatchesNotificationsThatArriveMeanwhile(t *testing.T) {
	db := testdb.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu      sync.Mutex
		batches [][]string
		lives   []bool
	)
	release := make(chan struct{})
	first := make(chan struct{})
	liveCh := make(chan bool, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, db.Pool, slog.New(slog.DiscardHandler), Follower{Name: "test", Channels: []string{"follow_test"},
			Live: func(_ context.Context, live bool) {
				mu.Lock()
				lives = append(lives, live)
				mu.Unlock()
				liveCh <- live
			},
			Notified: func(_ context.Context, batch []*pgconn.Notification) {
				var payloads []string
				for _, n := range batch {
					payloads = append(payloads, n.Payload)
				}
				mu.Lock()
				batches = append(batches, payloads)
				k := len(batches)
				mu.Unlock()
				if k == 1 {
					close(first)
					<-release // the rest arrive meanwhile
				}
			}})
	}()
	waitLive := func(want bool) {
		t.Helper()
		select {
		case got := <-liveCh:
			if got != want {
				t.Fatalf("Live(%v), want Live(%v)", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no Live(%v)", want)
		}
	}
	notify := func(from, to int) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, `SELECT pg_notify('follow_test', i::text) FROM generate_series($1::int, $2::int) i`, from, to); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			var all []string
			for _, b := range batches {
				all = append(all, b...)
			}
			mu.Unlock()
			if len(all) >= n || time.Now().After(deadline) {
				return all
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	waitLive(true)
	notify(0, 0)
	<-first
	notify(1, 300) // one transaction: delivered after the first call, while it still runs
	time.Sleep(200 * time.Millisecond)
	close(release)
	all := waitFor(301)
	if len(all) != 301 {
		t.Fatalf("%d notifications arrived, want 301", len(all))
	}
	for i, p := range all {
		if p != strconv.Itoa(i) {
			t.Fatalf("notification %d is %q: out of order", i, p)
		}
	}
	mu.Lock()
	calls := len(batches)
	mu.Unlock()
	// The first, then the 300 together (maxFollowBatch at most); a loaded machine may hand them
	// over in a few parts, never one by one.
	if calls > 30 {
		t.Errorf("301 notifications took %d calls of Notified, want a few", calls)
	}

	// The listener's connection is lost: Live(false), then Live(true) on a new one, which hears.
	if _, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	waitLive(false)
	waitLive(true)
	notify(301, 301)
	if got := waitFor(302); len(got) != 302 || got[301] != "301" {
		t.Fatalf("after the listener came back: %d notifications, the last %q", len(got), got[len(got)-1])
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if lives[len(lives)-1] {
		t.Errorf("Live calls %v: the last is not false after ctx ended", lives)
	}
}
