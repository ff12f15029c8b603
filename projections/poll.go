package projections

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
)

// adaptivePoll is the subscribers' backoff: errors are handled as watermill-sql's default does;
// an empty poll waits the short interval while events are flowing and, after about a second
// without any, the idle interval. Each poll is a transaction that locks the projector's
// checkpoint row, so an idle store polls a few times a second instead of a hundred, and the
// first event after a quiet spell waits at most the idle interval. While the projector's last
// batch failed (failing), it waits before the retry, doubling from retry up to maxRetry.
type adaptivePoll struct {
	errors   wsql.BackoffManager
	busy     time.Duration
	idle     time.Duration
	retry    time.Duration
	maxRetry time.Duration
	failing  *atomic.Bool
	// lastCount is how many log events the last batch covered (set by the batch handler): a
	// small batch under load is followed by a short wait (gather), so that the next one gathers
	// what arrives meanwhile instead of polling back to back, one transaction per few events.
	lastCount *atomic.Int64
	gather    time.Duration
	gatherMax int64
	// head, when set, is where an empty poll waits for the log to move (see settledHead); seen is
	// its generation when the poll began.
	head    *settledHead
	seen    uint64
	types   []string // the stream types the consumer is given (nil: all)
	mu      sync.Mutex
	emptyAt time.Time     // start of the current run of empty polls (zero while events flow)
	wait    time.Duration // the next wait after a failed batch
}

func newAdaptivePoll(busy, idle, retry, maxRetry time.Duration, failing *atomic.Bool) *adaptivePoll {
	if failing == nil {
		failing = &atomic.Bool{}
	}
	return &adaptivePoll{errors: wsql.NewDefaultBackoffManager(busy, retry), busy: busy, idle: max(idle, busy),
		retry: retry, maxRetry: max(maxRetry, retry), failing: failing, lastCount: &atomic.Int64{}}
}

// withGather makes a batch of fewer than below events wait d before the next poll (see
// lastCount); a larger one polls again at once.
func (p *adaptivePoll) withGather(d time.Duration, below int64, count *atomic.Int64) *adaptivePoll {
	p.gather, p.gatherMax, p.lastCount = d, below, count
	return p
}

// withHead makes an empty poll wait on h until the log's settled head moves (at most
// headTimeout) and then poll at once.
func (p *adaptivePoll) withHead(h *settledHead, types []string) *adaptivePoll {
	p.head, p.types = h, types
	return p
}

// headTimeout bounds an empty poll's wait on the settled head.
const headTimeout = time.Second

// idleAfter is how long polls must stay empty before the idle interval applies.
const idleAfter = time.Second

// HandleError implements wsql.BackoffManager.
func (p *adaptivePoll) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	d := p.next(logger, noMsg, err)
	if p.head == nil {
		return d
	}
	if noMsg && err == nil && !p.failing.Load() {
		// Nothing was settled after the checkpoint when the poll began: nothing will be until
		// the head moves past what it was then. The head is read every busy interval while it
		// moves, every idle interval after a second without a move; headTimeout bounds the wait
		// should it not be read at all (its query failing).
		p.head.waitFor(p.seen, p.types, max(p.idle, headTimeout))
		d = 0
	} else if !noMsg && err == nil && !p.failing.Load() && p.smallBatch() && p.head.reading() {
		// Caught up (a small batch): the next poll waits for an event of the consumer's types,
		// and at least the gather interval.
		t0 := time.Now()
		p.head.waitFor(p.seen, p.types, headTimeout)
		d = max(p.gather-time.Since(t0), 0)
	}
	p.seen = p.head.generation() // before the next poll begins
	return d
}

// next is the wait before the next poll.
func (p *adaptivePoll) next(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing.Load() {
		// The batch failed and its transaction was rolled back (the ack error is that rollback).
		p.wait = min(max(p.wait*2, p.retry), p.maxRetry)
		return p.wait
	}
	p.wait = 0
	if err != nil {
		return p.errors.HandleError(logger, noMsg, err)
	}
	if !noMsg {
		p.emptyAt = time.Time{}
		if p.smallBatch() {
			return p.gather
		}
		return 0
	}
	now := time.Now()
	if p.emptyAt.IsZero() {
		p.emptyAt = now
	}
	if now.Sub(p.emptyAt) >= idleAfter {
		return p.idle
	}
	return p.busy
}

// smallBatch reports whether the last batch was small enough to gather before the next poll (the
// consumer is caught up: a batch of the backlog is larger).
func (p *adaptivePoll) smallBatch() bool { return p.gather > 0 && p.lastCount.Load() < p.gatherMax }
