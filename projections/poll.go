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
	mu       sync.Mutex
	emptyAt  time.Time     // start of the current run of empty polls (zero while events flow)
	wait     time.Duration // the next wait after a failed batch
}

func newAdaptivePoll(busy, idle, retry, maxRetry time.Duration, failing *atomic.Bool) *adaptivePoll {
	if failing == nil {
		failing = &atomic.Bool{}
	}
	return &adaptivePoll{errors: wsql.NewDefaultBackoffManager(busy, retry), busy: busy, idle: max(idle, busy),
		retry: retry, maxRetry: max(maxRetry, retry), failing: failing}
}

// idleAfter is how long polls must stay empty before the idle interval applies.
const idleAfter = time.Second

// HandleError implements wsql.BackoffManager.
func (p *adaptivePoll) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
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
