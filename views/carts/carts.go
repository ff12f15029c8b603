// Package carts is the Redis view of cart views (GET /cart), with an in-process cache in front,
// both following the log. A cart view depends on the cart and on the current price and stock of
// its products, so the view LISTENs to three channels: the carts projector's (the users whose
// cart a batch changed), the products projector's (the products a batch changed: every view
// holding one is dropped) and the promo_codes projector's (the codes a batch changed: every view
// holding one is dropped, for its discount). They are sent in the projectors' transactions, so they arrive after
// the commit.
//
// A read is served by the in-process cache, else by Redis (the view another process, or this
// one, computed), else by the read tables (Postgres), whose answer fills both. Every process
// deletes from Redis what each notification names, first, and then from its own cache. It keeps
// a view in process only while no notification about the cart or its products arrived since its
// read began, and fills Redis only while no process has invalidated the cart, a product or a
// code since (counters in Redis, checked by the fill's script), so no stale view outlives a
// notification: not even one put back in Redis by a process that has not handled it yet, and
// then read by one that has. Views also expire after 30 s (a code's expiry passes
// without an event). With Redis unreachable, reads fall back to Postgres. A read with
// X-Min-Position bypasses the view; a lost listener connection or a rebuild empties it.
package carts

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"

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

	// rdb holds the Redis view (nil: none) under prefix.
	rdb       *redis.Client
	prefix    string
	redisDown atomic.Int64 // unix nanoseconds until which Redis is not tried after a failure

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

// New returns the view; Run makes it serve. rdb may be nil (no Redis view: the in-process cache
// and Postgres only); prefix prefixes its keys.
func New(pool *pgxpool.Pool, q *queries.OrderQueries, log *slog.Logger, rdb *redis.Client, prefix string) (*Carts, error) {
	if pool == nil || q == nil {
		return nil, errors.New("carts: pool and queries are required")
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Carts{pool: pool, q: q, log: log, rdb: rdb, prefix: prefix, byProduct: map[int64]map[int64]bool{}}
	// A cached view also expires: a code's expiry passes without an event.
	c.cache = otter.Must(&otter.Options[int64, queries.CartView]{MaximumSize: capacity,
		ExpiryCalculator: otter.ExpiryWriting[int64, queries.CartView](maxAge)})
	return c, nil
}

// Cart returns a user's cart view: from the in-process cache, else from Redis, else from the
// read tables; what Redis or the tables answered is kept unless the cart or a product changed
// meanwhile.
func (c *Carts) Cart(ctx context.Context, userID int64) (queries.CartView, error) {
	if v, ok := c.cache.GetIfPresent(userID); ok {
		return v, nil
	}
	c.mu.Lock()
	epoch, gen, live := c.epochs[userID%stripes], c.productGen, c.live
	c.mu.Unlock()
	var tokens []string
	if live {
		var ok bool
		var v queries.CartView
		if v, tokens, ok = c.fromRedis(ctx, userID); ok {
			c.keep(ctx, userID, v, epoch, gen, nil)
			return v, nil
		}
	}
	v, err := c.q.Cart(ctx, userID)
	if err != nil || !live {
		return v, err
	}
	c.keep(ctx, userID, v, epoch, gen, tokens)
	return v, nil
}

// keep caches v unless a notification about the cart or its products arrived since the read
// began and, when tokens are given (v was read from Postgres), writes it to Redis unless any
// process has invalidated the cart, a product or a code since the tokens were read. The Redis
// write needs no lock: the counters order it against every deletion.
func (c *Carts) keep(ctx context.Context, userID int64, v queries.CartView, epoch, gen uint64, tokens []string) {
	if c.keepLocal(userID, v, epoch, gen) && tokens != nil {
		c.toRedis(ctx, userID, v, tokens)
	}
}

// keepLocal caches v in process and indexes it by its products, unless the cart or a product
// was invalidated since the read began.
func (c *Carts) keepLocal(userID int64, v queries.CartView, epoch, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.epochs[userID%stripes] != epoch || c.productGen != gen {
		return false
	}
	for _, l := range v.Lines {
		users := c.byProduct[l.ProductID]
		if users == nil {
			users = map[int64]bool{}
			c.byProduct[l.ProductID] = users
		}
		users[userID] = true
	}
	c.cache.Set(userID, v)
	return true
}

func (c *Carts) viewKey(userID int64) string {
	return c.prefix + "cartview:" + strconv.FormatInt(userID, 10)
}
func (c *Carts) productKey(productID int64) string {
	return c.prefix + "cartview-product:" + strconv.FormatInt(productID, 10)
}
func (c *Carts) promoKey(promoID int64) string {
	return c.prefix + "cartview-promo:" + strconv.FormatInt(promoID, 10)
}

// The invalidation counters a fill checks: the user's cart's, every product's (one for all: a
// cart's products are known only once it is read), every code's. Every process increments them
// with the deletions a notification makes, so a process that has not handled a notification yet
// cannot put back a view another process has already deleted for it (a third process would read
// it from Redis and keep it).
func (c *Carts) userGen(userID int64) string {
	return c.prefix + "cartgen:user:" + strconv.FormatInt(userID, 10)
}
func (c *Carts) productsGen() string { return c.prefix + "cartgen:products" }
func (c *Carts) promosGen() string   { return c.prefix + "cartgen:promos" }

// genKeys are the counters in fillView's order.
func (c *Carts) genKeys(userID int64) []string {
	return []string{c.userGen(userID), c.productsGen(), c.promosGen()}
}

// fillView writes a view and indexes it by its products and code, unless a counter moved since
// the fill's read began. KEYS: the three counters, the view, the index sets; ARGV: the counters
// as read, the view, its time to live (ms), the user, the index sets' time to live (ms).
var fillView = redis.NewScript(`
for i = 1, 3 do
  if (redis.call('GET', KEYS[i]) or '') ~= ARGV[i] then return 0 end
end
redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[5])
for i = 5, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[6])
  redis.call('PEXPIRE', KEYS[i], ARGV[7])
end
return 1`)

// redisUp says whether Redis is worth a try (not within a second of a failure).
func (c *Carts) redisUp() bool {
	return c.rdb != nil && time.Now().UnixNano() >= c.redisDown.Load()
}

func (c *Carts) redisFailed(err error) {
	c.redisDown.Store(time.Now().Add(time.Second).UnixNano())
	c.log.Warn("cart view: Redis failed; reading Postgres for a second", "err", err)
}

// fromRedis reads a view from Redis, and the invalidation counters with it (ok false on a miss,
// when the counters are what a fill from Postgres checks; tokens nil when Redis fails).
func (c *Carts) fromRedis(ctx context.Context, userID int64) (v queries.CartView, tokens []string, ok bool) {
	if !c.redisUp() {
		return v, nil, false
	}
	keys := append(c.genKeys(userID), c.viewKey(userID))
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		c.redisFailed(err)
		return v, nil, false
	}
	tokens = make([]string, 3)
	for i := range tokens {
		tokens[i], _ = vals[i].(string)
	}
	b, _ := vals[3].(string)
	if b == "" {
		return v, tokens, false
	}
	if err := json.Unmarshal([]byte(b), &v); err != nil || v.UserID != userID {
		return queries.CartView{}, tokens, false
	}
	return v, tokens, true
}

// toRedis writes a view read from Postgres and indexes it by its products (for their
// invalidation), in one script, unless a counter moved since tokens were read. The index outlives
// the view a little, so that it covers it.
func (c *Carts) toRedis(ctx context.Context, userID int64, v queries.CartView, tokens []string) {
	if !c.redisUp() {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	keys := append(c.genKeys(userID), c.viewKey(userID))
	for _, l := range v.Lines {
		keys = append(keys, c.productKey(l.ProductID))
	}
	if v.PromoID != 0 {
		keys = append(keys, c.promoKey(v.PromoID))
	}
	args := []any{tokens[0], tokens[1], tokens[2], b, maxAge.Milliseconds(), userID, (2 * maxAge).Milliseconds()}
	if err := fillView.Run(ctx, c.rdb, keys, args...).Err(); err != nil {
		c.redisFailed(err)
	}
}

// forgetInRedis deletes the users' Redis views, incrementing their counters (a fill begun before
// is refused), in one transaction.
func (c *Carts) forgetInRedis(ctx context.Context, userIDs []int64) {
	if c.rdb == nil || len(userIDs) == 0 {
		return
	}
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range userIDs {
			p.Incr(ctx, c.userGen(id))
			p.Expire(ctx, c.userGen(id), 2*maxAge)
			p.Del(ctx, c.viewKey(id))
		}
		return nil
	})
	if err != nil {
		c.redisFailed(err)
	}
}

// forgetIndexed increments the counter KEYS[1], then deletes the views the index sets KEYS[2..]
// name (ARGV[1] is the view keys' prefix) and the sets, at once: a fill (also one script) lands
// wholly before, and is deleted, or wholly after, and is named by its set again.
var forgetIndexed = redis.NewScript(`
redis.call('INCR', KEYS[1])
for i = 2, #KEYS do
  for _, u in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    redis.call('DEL', ARGV[1] .. u)
  end
  redis.call('DEL', KEYS[i])
end
return 1
`)

// forgetInRedisIndexed increments the counter gen, then deletes the Redis views the index sets
// name (the carts holding a product or a promo code), and the sets, in one round trip.
func (c *Carts) forgetInRedisIndexed(ctx context.Context, gen string, indexes ...string) {
	if c.rdb == nil || len(indexes) == 0 {
		return
	}
	if err := forgetIndexed.Run(ctx, c.rdb, append([]string{gen}, indexes...), c.prefix+"cartview:").Err(); err != nil {
		c.redisFailed(err)
	}
}

// forgetAllInRedis deletes every Redis view (the view resynchronises: at start, after a rebuild).
func (c *Carts) forgetAllInRedis(ctx context.Context) {
	if c.rdb == nil {
		return
	}
	// Fills begun before are refused: every fill checks the products' and codes' counters.
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, c.productsGen())
		p.Incr(ctx, c.promosGen())
		return nil
	}); err != nil {
		c.redisFailed(err)
		return
	}
	iter := c.rdb.Scan(ctx, 0, c.prefix+"cartview*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := c.rdb.Del(ctx, keys...).Err(); err != nil {
				c.redisFailed(err)
				return
			}
			keys = keys[:0]
		}
	}
	err := iter.Err()
	if err == nil && len(keys) > 0 {
		err = c.rdb.Del(ctx, keys...).Err()
	}
	if err != nil {
		c.redisFailed(err)
	}
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
	projections.Follow(ctx, c.pool, c.log, projections.Follower{Name: "cart view",
		Channels: []string{orderproj.CartsChannel, catalogproj.ProductCardsChannel, orderproj.PromoCodesChannel},
		Live: func(ctx context.Context, live bool) {
			c.setLive(live)
			if live {
				c.forgetAllInRedis(ctx) // views written while no process listened may be stale
			}
		},
		Notified: c.notified})
	return nil
}

// notified drops what a batch of notifications names, in order: the carts and the products of
// consecutive notifications together, in one round trip to Redis each; a resync or a code's
// change after what came before it.
func (c *Carts) notified(ctx context.Context, batch []*pgconn.Notification) {
	var users, products []int64
	for _, n := range batch {
		id, err := strconv.ParseInt(n.Payload, 10, 64)
		switch {
		case err == nil && n.Channel == orderproj.CartsChannel:
			users = append(users, id)
		case err == nil && n.Channel == catalogproj.ProductCardsChannel:
			products = append(products, id)
		default:
			c.forgetUsers(ctx, users)
			c.forgetProducts(ctx, products)
			users, products = users[:0], products[:0]
			c.notifiedOther(ctx, n, id, err)
		}
	}
	c.forgetUsers(ctx, users)
	c.forgetProducts(ctx, products)
}

// forgetProducts drops the carts holding the products, in Redis first, then in process (as
// forgetUsers).
func (c *Carts) forgetProducts(ctx context.Context, productIDs []int64) {
	if len(productIDs) == 0 {
		return
	}
	keys := make([]string, len(productIDs))
	for i, id := range productIDs {
		keys[i] = c.productKey(id)
	}
	c.forgetInRedisIndexed(ctx, c.productsGen(), keys...)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range productIDs {
		c.dropProduct(id)
	}
}

// forgetUsers drops the users' carts, in Redis first, then in process: a read between the two may
// still be answered by the in-process cache, but none can take a view from Redis that the
// notification has made stale and keep it in process (the in-process drop, last, refuses to keep
// what any read begun before it read). So does every notification.
func (c *Carts) forgetUsers(ctx context.Context, userIDs []int64) {
	if len(userIDs) == 0 {
		return
	}
	c.forgetInRedis(ctx, userIDs)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range userIDs {
		c.dropUser(id)
	}
}

// notifiedOther handles a resync (every view goes) or a code's change (the carts holding it;
// every cart in process, which is cheap); anything else names nothing.
func (c *Carts) notifiedOther(ctx context.Context, n *pgconn.Notification, id int64, idErr error) {
	switch {
	case n.Payload == projections.ResyncNotification:
		c.forgetAllInRedis(ctx)
		c.setLive(true)
	case n.Channel == orderproj.PromoCodesChannel:
		if idErr == nil {
			c.forgetInRedisIndexed(ctx, c.promosGen(), c.promoKey(id))
		} else {
			c.forgetAllInRedis(ctx)
		}
		c.setLive(true)
	}
}
