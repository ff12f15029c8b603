// Package searches is an in-process cache of the GET /products answers that the listings view
// does not hold: searches, pages with price or stock filters, pages after a cursor. It follows the
// log through the catalog projectors' channels (sent in their transactions, so delivered after
// their commits):
//
//   - a change of what products match or how they sort (a product created, edited or deleted:
//     catalogproj.ProductMatchesChannel), a category change, a rebuild's "resync", and a lost
//     listener connection drop every answer;
//   - a product whose card alone changed (stock, images, rating: its id on ProductCardsChannel)
//     drops the answers that show it, and every answer that depends on stock or rating beyond
//     the products it shows (an in_stock filter, a rating sort).
//
// So a storefront that sells keeps its other answers between sales of their products. An answer
// read from Postgres is kept only if no notification arrived since its read began, so none
// outlives a commit it did not see; reads with X-Min-Position bypass the cache.
package searches

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
	// byProduct lists the keys of the answers showing each product, volatile the keys of the
	// answers a card change of any product may change; both may name answers gone since.
	byProduct map[int64]map[string]struct{}
	volatile  map[string]struct{}
	indexed   int // entries added to byProduct since it was last emptied
}

// maxIndexed bounds the entries of byProduct (an answer's key under each product it shows): the
// cache evicts answers but their keys stay indexed until a change of their products, so a Put
// that would pass it drops every answer and the index first.
const maxIndexed = 200_000

// New returns the cache; Run makes it serve.
func New(pool *pgxpool.Pool, log *slog.Logger) (*Cache, error) {
	if pool == nil {
		return nil, errors.New("searches: a pool is required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Cache{pool: pool, log: log, cache: otter.Must(&otter.Options[string, []byte]{MaximumWeight: Capacity,
		Weigher: func(k string, v []byte) uint32 { return uint32(min(len(k)+len(v), 1<<31)) }}),
		byProduct: map[int64]map[string]struct{}{}, volatile: map[string]struct{}{}}, nil
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

// Put stores an answer read since Begin returned token, unless a notification arrived since: the
// answer shows the products ids, and volatile says whether it depends on the stock or rating of
// products beyond them (an in_stock filter, a rating sort).
func (c *Cache) Put(key string, body []byte, token uint64, ids []int64, volatile bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || token == 0 || token != c.gen {
		return
	}
	if c.indexed+len(ids) > maxIndexed {
		c.forgetAll()
	}
	c.indexed += len(ids)
	c.cache.Set(key, body)
	for _, id := range ids {
		keys := c.byProduct[id]
		if keys == nil {
			keys = map[string]struct{}{}
			c.byProduct[id] = keys
		}
		keys[key] = struct{}{}
	}
	if volatile {
		c.volatile[key] = struct{}{}
	}
}

// drop forgets every answer; live says whether the cache serves afterwards.
func (c *Cache) drop(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = live
	c.forgetAll()
}

// forgetAll drops every answer and the index (under mu).
func (c *Cache) forgetAll() {
	c.cache.InvalidateAll()
	clear(c.byProduct)
	clear(c.volatile)
	c.indexed = 0
}

// cardChanged forgets the answers showing the product and the volatile ones.
func (c *Cache) cardChanged(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for key := range c.byProduct[id] {
		c.cache.Invalidate(key)
	}
	delete(c.byProduct, id)
	for key := range c.volatile {
		c.cache.Invalidate(key)
	}
	clear(c.volatile)
}

// notified applies one notification.
func (c *Cache) notified(n *pgconn.Notification) {
	if n.Channel == catalogproj.ProductCardsChannel && n.Payload != projections.ResyncNotification {
		if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			c.cardChanged(id)
			return
		}
	}
	c.drop(true)
}

// Run listens until ctx is done.
func (c *Cache) Run(ctx context.Context) error {
	projections.Follow(ctx, c.pool, c.log, projections.Follower{Name: "search cache",
		Channels: []string{catalogproj.ProductCardsChannel, catalogproj.ProductMatchesChannel, catalogproj.CategoriesChannel},
		Live:     func(_ context.Context, live bool) { c.drop(live) },
		Notified: func(_ context.Context, batch []*pgconn.Notification) {
			for _, n := range batch {
				c.notified(n)
			}
		}})
	return nil
}
