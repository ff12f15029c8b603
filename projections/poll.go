package projections

import (
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
)

// adaptivePoll is the subscribers' backoff: errors are handled as watermill-sql's default does;
// an empty poll waits the short interval while events are flowing and, after about a second
// without any, the idle interval. Each poll is a transaction that locks the projector's
// checkpoint row, so an idle store polls a few times a second instead of a hundred, and the
// first event after a quiet spell waits at most the idle interval.
type adaptivePoll struct {
	errors  wsql.BackoffManager
	busy    time.Duration
	idle    time.Duration
	mu      sync.Mutex
	emptyAt time.Time // start of the current run of empty polls (zero while events flow)
}

func newAdaptivePoll(busy, idle, retry time.Duration) *adaptivePoll {
	return &adaptivePoll{errors: wsql.NewDefaultBackoffManager(busy, retry), busy: busy, idle: max(idle, busy)}
}

// idleAfter is how long polls must stay empty before the idle interval applies.
const idleAfter = time.Second

// HandleError implements wsql.BackoffManager.
func (p *adaptivePoll) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		return p.errors.HandleError(logger, noMsg, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
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
