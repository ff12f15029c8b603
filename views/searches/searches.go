// Package searches is an in-process cache of the GET /products answers that the listings view
// does not hold: searches, pages with price or stock filters, pages after a cursor. Such an
// answer may depend on any product, so the cache follows the log as a whole: it LISTENs to the
// products and categories projectors' channels (sent in their transactions, so after their
// commits) and any notification drops every entry. An answer read from Postgres is kept only if
// no notification arrived since its read began, so none outlives a commit it did not see. A lost
// listener connection empties the cache and stops it until the listener is back; reads with
// X-Min-Position bypass it. A storefront that sells continuously invalidates it with every sale;
// between writes, popular searches are answered from memory.
package searches

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"

	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
)

// Capacity bounds the cached answers (by their bytes).
const Capacity = 64 << 20

// Cache holds encoded answers by key.
type Cache struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	cache *otter.Cache[string, []byte]

	mu   sync.Mutex
	gen  uint64 // bumped by every notification and by every change of live
	live bool
}

// New returns the cache; Run makes it serve.
func New(pool *pgxpool.Pool, log *slog.Logger) (*Cache, error) {
	if pool == nil {
		return nil, errors.New("searches: a pool is required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Cache{pool: pool, log: log, cache: otter.Must(&otter.Options[string, []byte]{MaximumWeight: Capacity,
		Weigher: func(k string, v []byte) uint32 { return uint32(min(len(k)+len(v), 1<<31)) }})}, nil
}

// Get returns the cached answer of key.
func (c *Cache) Get(key string) ([]byte, bool) { return c.cache.GetIfPresent(key) }

// Begin starts a read from Postgres: Put with its token stores the answer only if nothing
// changed meanwhile.
func (c *Cache) Begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		return 0
	}
	return c.gen
}

// Put stores an answer read since Begin returned token, unless a notification arrived since.
func (c *Cache) Put(key string, body []byte, token uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && token != 0 && token == c.gen {
		c.cache.Set(key, body)
	}
}

// drop forgets every answer; live says whether the cache serves afterwards.
func (c *Cache) drop(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = live
	c.cache.InvalidateAll()
}

// Run listens until ctx is done.
func (c *Cache) Run(ctx context.Context) error {
	projections.Follow(ctx, c.pool, c.log, projections.Follower{Name: "search cache",
		Channels: []string{catalogproj.ProductCardsChannel, catalogproj.CategoriesChannel},
		Live:     func(_ context.Context, live bool) { c.drop(live) },
		Notified: func(context.Context, *pgconn.Notification) { c.drop(true) }})
	return nil
}
