package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/domain"
)

// ProductCards is the Redis view of product cards: the JSON of ProductView per product, written
// after the products projector commits (it NOTIFYs in its transaction; this view LISTENs). Redis
// is derived data: when it is down, Get misses and callers read Postgres; when it returns, the
// view resynchronises from the products table before it is used again.
type ProductCards struct {
	pool    *pgxpool.Pool
	rdb     *redis.Client
	prefix  string
	queries *CatalogQueries
	log     *slog.Logger
	// ready is true while the view is known to match the products table (as of the last
	// notification); Get serves nothing otherwise.
	ready atomic.Bool
	// synced counts completed full resynchronisations (for tests and metrics).
	synced atomic.Int64
	// fetches feeds fetchLoop, which batches concurrent Gets into MGETs.
	fetches chan cardFetch
}

// ProductCardsConfig configures the view.
type ProductCardsConfig struct {
	Pool   *pgxpool.Pool
	Redis  *redis.Client
	Prefix string // key prefix, "techvault:" by default
	Logger *slog.Logger
}

// NewProductCards returns the view; Run keeps it up to date.
func NewProductCards(cfg ProductCardsConfig) (*ProductCards, error) {
	if cfg.Pool == nil || cfg.Redis == nil {
		return nil, errors.New("projections: product cards need a pool and a Redis client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "techvault:"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &ProductCards{pool: cfg.Pool, rdb: cfg.Redis, prefix: cfg.Prefix,
		queries: NewCatalogQueries(cfg.Pool), log: cfg.Logger.With("view", "product_cards"),
		fetches: make(chan cardFetch, maxCardBatch)}, nil
}

func (c *ProductCards) key(id int64) string { return c.prefix + "product:" + strconv.FormatInt(id, 10) }

// Get returns a product's card JSON; ok is false when the view cannot answer (miss, Redis down,
// or not yet resynchronised).
func (c *ProductCards) Get(ctx context.Context, id int64) (card []byte, ok bool) {
	if !c.ready.Load() {
		return nil, false
	}
	f := cardFetch{key: c.key(id), reply: make(chan cardReply, 1)}
	select {
	case c.fetches <- f:
	case <-ctx.Done():
		return nil, false
	}
	var r cardReply
	select {
	case r = <-f.reply:
	case <-ctx.Done():
		return nil, false
	}
	if r.err != nil {
		if !errors.Is(r.err, redis.Nil) {
			c.markStale(r.err)
		}
		return nil, false
	}
	return r.card, true
}

// cardFetchers is how many MGETs may be in flight at once.
const cardFetchers = 2

// Ready reports whether the view currently serves reads.
func (c *ProductCards) Ready() bool { return c.ready.Load() }

// Syncs returns how many full resynchronisations have completed.
func (c *ProductCards) Syncs() int64 { return c.synced.Load() }

func (c *ProductCards) markStale(err error) {
	if c.ready.Swap(false) {
		c.log.Warn("product cards view unavailable; reads fall back to Postgres", "err", err)
	}
}

// Run listens for the products projector's notifications until ctx is done, resynchronising the
// whole view at start, after a rebuild, after a lost connection and when Redis comes back.
func (c *ProductCards) Run(ctx context.Context) error {
	defer c.ready.Store(false) // nobody serves Gets once Run returns
	for range cardFetchers {
		go c.fetchLoop(ctx)
	}
	for ctx.Err() == nil {
		if err := c.listen(ctx); err != nil && ctx.Err() == nil {
			c.markStale(err)
			c.log.Warn("product cards listener stopped; restarting", "err", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

func (c *ProductCards) listen(ctx context.Context) error {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring listener connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ProductCardsChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `UNLISTEN *`)
	}()
	// Notifications missed while not listening are covered by a full resync.
	needResync := true
	for ctx.Err() == nil {
		if needResync {
			if err := c.resync(ctx); err != nil {
				c.markStale(err)
			} else {
				needResync = false
				if !c.ready.Swap(true) {
					c.log.Info("product cards view in sync")
				}
			}
		}
		wait := time.Second
		if needResync {
			wait = 250 * time.Millisecond
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		n, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(wctx.Err(), context.DeadlineExceeded) {
				if !needResync && c.ready.Load() {
					continue
				}
				needResync = true
				continue
			}
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		if n.Payload == ResyncNotification {
			needResync = true
			continue
		}
		id, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			continue
		}
		if err := c.refresh(ctx, id); err != nil {
			c.markStale(err)
			needResync = true
		}
	}
	return nil
}

// refresh rewrites one card from the products table (or removes it).
func (c *ProductCards) refresh(ctx context.Context, id int64) error {
	p, err := c.queries.Product(ctx, id)
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return c.rdb.Del(ctx, c.key(id)).Err()
		}
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return c.rdb.Set(ctx, c.key(id), b, 0).Err()
}

// resync writes every card from the products table and removes cards of products that are gone.
func (c *ProductCards) resync(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	rows, err := c.pool.Query(ctx, `SELECT `+productColumns+` FROM products ORDER BY id`)
	if err != nil {
		return fmt.Errorf("reading products: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProductView, error) { return scanProduct(r) })
	if err != nil {
		return fmt.Errorf("reading products: %w", err)
	}
	live := make(map[string]bool, len(items))
	pipe := c.rdb.Pipeline()
	for i, p := range items {
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		live[c.key(p.ID)] = true
		pipe.Set(ctx, c.key(p.ID), b, 0)
		if (i+1)%1000 == 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("writing cards: %w", err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("writing cards: %w", err)
	}
	iter := c.rdb.Scan(ctx, 0, c.prefix+"product:*", 1000).Iterator()
	for iter.Next(ctx) {
		if !live[iter.Val()] {
			if err := c.rdb.Del(ctx, iter.Val()).Err(); err != nil {
				return fmt.Errorf("removing stale card: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scanning cards: %w", err)
	}
	c.synced.Add(1)
	c.log.Debug("product cards resynchronised", "cards", len(items))
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
