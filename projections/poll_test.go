package projections

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

func TestAdaptivePoll(t *testing.T) {
	p := newAdaptivePoll(10*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond, time.Second, nil)
	log := watermill.NopLogger{}
	if d := p.HandleError(log, false, nil); d != 0 {
		t.Fatalf("after events: wait %v, want none", d)
	}
	if d := p.HandleError(log, true, nil); d != 10*time.Millisecond {
		t.Fatalf("first empty poll: wait %v, want the busy interval", d)
	}
	p.emptyAt = time.Now().Add(-2 * idleAfter) // a quiet spell
	if d := p.HandleError(log, true, nil); d != 50*time.Millisecond {
		t.Fatalf("after a quiet spell: wait %v, want the idle interval", d)
	}
	if d := p.HandleError(log, false, nil); d != 0 {
		t.Fatalf("events again: wait %v", d)
	}
	if d := p.HandleError(log, true, nil); d != 10*time.Millisecond {
		t.Fatalf("empty poll right after events: wait %v, want the busy interval", d)
	}
	if d := p.HandleError(log, false, errors.New("could not query: concurrent update")); d != 0 {
		t.Fatalf("serialization failure: wait %v, want an immediate retry", d)
	}
	if d := p.HandleError(log, false, errors.New("connection refused")); d != 100*time.Millisecond {
		t.Fatalf("error: wait %v, want the retry interval", d)
	}
	p.failing.Store(true)
	for _, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		if d := p.HandleError(log, false, errors.New("sql: transaction has already been committed or rolled back")); d != want*time.Millisecond {
			t.Fatalf("failed batch: wait %v, want %v", d, want*time.Millisecond)
		}
	}
	p.failing.Store(false)
	if d := p.HandleError(log, false, nil); d != 0 {
		t.Fatalf("recovered: wait %v, want none", d)
	}
}

// A small batch is followed by the gather wait, so that the next one gathers what arrives
// meanwhile; a large one (a backlog) polls again at once, and so does a consumer without gather.
func TestAdaptivePollGathersSmallBatches(t *testing.T) {
	count := &atomic.Int64{}
	p := newAdaptivePoll(2*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond, time.Second, nil).
		withGather(5*time.Millisecond, 100, count)
	log := watermill.NopLogger{}
	for _, tc := range []struct {
		count int64
		want  time.Duration
	}{{1, 5 * time.Millisecond}, {99, 5 * time.Millisecond}, {100, 0}, {1000, 0}} {
		count.Store(tc.count)
		if d := p.HandleError(log, false, nil); d != tc.want {
			t.Errorf("after a batch of %d: wait %v, want %v", tc.count, d, tc.want)
		}
	}
	plain := newAdaptivePoll(2*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond, time.Second, nil)
	if d := plain.HandleError(log, false, nil); d != 0 {
		t.Errorf("without gather: wait %v after a batch, want none", d)
	}
}
