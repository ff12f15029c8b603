// Package carts is an in-process cache of cart views (GET /cart) that follows the log. A cart
// view depends on the cart and on the current price and stock of its products, so the cache
// LISTENs to two channels: the carts projector's (the users whose cart a batch changed) and the
// products projector's (the products a batch changed: every cached cart holding one is dropped),
// and the promo_codes projector's (any change to a code drops every cart: their discounts).
// Both are sent in the projectors' transactions, so they arrive after the commit. A read with
// X-Min-Position bypasses the cache; a lost listener connection or a rebuild empties it.
package carts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"

	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/orderproj"
	"github.com/techvault/techvault/queries"
)

// Carts caches queries.CartView by user id.
type Carts struct {
	pool  *pgxpool.Pool
	q     *queries.OrderQueries
	log   *slog.Logger
	cache *otter.Cache[int64, queries.CartView]

	mu         sync.Mutex
	epochs     [stripes]uint64
	live       bool
	byProduct  map[int64]map[int64]bool // product → users whose cached cart holds it
	productGen uint64                   // bumped by every product invalidation
}

const (
	stripes  = 256
	capacity = 100_000
	maxAge   = 30 * time.Second
)

// New returns the cache; Run makes it serve.
func New(pool *pgxpool.Pool, q *queries.OrderQueries, log *slog.Logger) (*Carts, error) {
	if pool == nil || q == nil {
		return nil, errors.New("carts: pool and queries are required")
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Carts{pool: pool, q: q, log: log, byProduct: map[int64]map[int64]bool{}}
	// A cached view also expires: a code's expiry passes without an event.
	c.cache = otter.Must(&otter.Options[int64, queries.CartView]{MaximumSize: capacity,
		ExpiryCalculator: otter.ExpiryWriting[int64, queries.CartView](maxAge)})
	return c, nil
}

// Cart returns a user's cart view: from the cache when it is live and holds it, else from the
// read tables (cached unless the cart or a product changed meanwhile).
func (c *Carts) Cart(ctx context.Context, userID int64) (queries.CartView, error) {
	if v, ok := c.cache.GetIfPresent(userID); ok {
		return v, nil
	}
	c.mu.Lock()
	epoch, gen, live := c.epochs[userID%stripes], c.productGen, c.live
	c.mu.Unlock()
	v, err := c.q.Cart(ctx, userID)
	if err != nil || !live {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && c.epochs[userID%stripes] == epoch && c.productGen == gen {
		for _, l := range v.Lines {
			users := c.byProduct[l.ProductID]
			if users == nil {
				users = map[int64]bool{}
				c.byProduct[l.ProductID] = users
			}
			users[userID] = true
		}
		c.cache.Set(userID, v)
	}
	return v, nil
}

func (c *Carts) dropUser(userID int64) {
	c.epochs[userID%stripes]++
	c.cache.Invalidate(userID)
}

// dropProduct drops every cached cart holding a product.
func (c *Carts) dropProduct(productID int64) {
	c.productGen++
	for u := range c.byProduct[productID] {
		c.dropUser(u)
	}
	delete(c.byProduct, productID)
}

func (c *Carts) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
	for i := range c.epochs {
		c.epochs[i]++
	}
	c.productGen++
	c.byProduct = map[int64]map[int64]bool{}
	c.cache.InvalidateAll()
}

// Run listens until ctx is done.
func (c *Carts) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := c.listen(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("cart cache listener stopped; restarting", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (c *Carts) listen(ctx context.Context) error {
	defer c.setLive(false)
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring listener connection: %w", err)
	}
	defer conn.Release()
	for _, ch := range []string{orderproj.CartsChannel, catalogproj.ProductCardsChannel, orderproj.PromoCodesChannel} {
		if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listening: %w", err)
		}
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `UNLISTEN *`) }()
	c.setLive(true)
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		if n.Payload == projections.ResyncNotification || n.Channel == orderproj.PromoCodesChannel {
			c.setLive(true)
			continue
		}
		id, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if n.Channel == orderproj.CartsChannel {
			c.dropUser(id)
		} else {
			c.dropProduct(id)
		}
		c.mu.Unlock()
	}
}
