// Package profiles is an in-process cache of account views (GET /users/me) that follows the log:
// the users projector NOTIFYs the ids of the accounts a batch changed, in its transaction, so the
// notification arrives after its commit; this view LISTENs and drops those accounts. A read
// that asks for its own writes (X-Min-Position) bypasses the cache; any other read may be at most
// one notification's delivery behind the read table. A lost listener connection (notifications
// missed) or a rebuild drops everything.
package profiles

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"

	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/userproj"
	"github.com/techvault/techvault/queries"
)

// Profiles caches queries.UserView by account id.
type Profiles struct {
	pool   *pgxpool.Pool
	q      *queries.UserQueries
	log    *slog.Logger
	cache  *otter.Cache[int64, queries.UserView]
	mu     sync.Mutex
	epochs [stripes]uint64
	live   bool // listening: fills are cached
}

const (
	stripes  = 256
	capacity = 100_000 // accounts kept
)

// New returns the cache; Run makes it serve.
func New(pool *pgxpool.Pool, q *queries.UserQueries, log *slog.Logger) (*Profiles, error) {
	if pool == nil || q == nil {
		return nil, errors.New("profiles: pool and queries are required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Profiles{pool: pool, q: q, log: log,
		cache: otter.Must(&otter.Options[int64, queries.UserView]{MaximumSize: capacity})}, nil
}

// User returns an account's view: from the cache when it is live and holds it, else from the read
// tables (and then caches it, unless the account changed meanwhile).
func (p *Profiles) User(ctx context.Context, id int64) (queries.UserView, error) {
	if v, ok := p.cache.GetIfPresent(id); ok {
		return v, nil
	}
	p.mu.Lock()
	epoch, live := p.epochs[id%stripes], p.live
	p.mu.Unlock()
	v, err := p.q.User(ctx, id)
	if err != nil || !live {
		return v, err
	}
	p.mu.Lock()
	if p.live && p.epochs[id%stripes] == epoch {
		p.cache.Set(id, v)
	}
	p.mu.Unlock()
	return v, nil
}

func (p *Profiles) invalidate(ids []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.epochs[id%stripes]++
		p.cache.Invalidate(id)
	}
}

// setLive turns caching on or off; off drops everything.
func (p *Profiles) setLive(live bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live = live
	for i := range p.epochs {
		p.epochs[i]++
	}
	p.cache.InvalidateAll()
}

// Run listens for the users projector's notifications until ctx is done.
func (p *Profiles) Run(ctx context.Context) error {
	projections.Follow(ctx, p.pool, p.log, projections.Follower{Name: "profile cache",
		Channels: []string{userproj.ProfilesChannel},
		Live:     func(_ context.Context, live bool) { p.setLive(live) },
		Notified: func(_ context.Context, batch []*pgconn.Notification) {
			ids := make([]int64, 0, len(batch))
			for _, n := range batch {
				if n.Payload == projections.ResyncNotification {
					p.invalidate(ids)
					ids = ids[:0]
					p.setLive(true)
				} else if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
					ids = append(ids, id)
				}
			}
			p.invalidate(ids)
		}})
	return nil
}
