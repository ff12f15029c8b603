// Package listings is the Redis view of the storefront's listings, with its in-process cache: the
// first page of each sort of GET /products, for the whole catalog and for each category (a
// category page), read through from Postgres on a miss and invalidated from the log.
//
// A listing belongs to a scope: the whole catalog (0) or one category. The view LISTENs to the
// products projector's channel (the product ids a batch changed, sent in the projector's
// transaction, so delivered after its commit) and to the categories projector's (the category
// ids). A product change invalidates the whole catalog's listings, those of the category the
// product is in now and those of the category it was in (the view keeps every product's category
// in memory, loaded at each resynchronisation and followed from the notifications, since an
// event names only the new one); a category change invalidates that category's listings (its
// name and description head them). Nothing expires on a timer: a listing stays until an event
// changes it.
//
// A read that misses stores what it read from Postgres only if its scope was not invalidated
// meanwhile: every invalidation writes a fresh token into the scope's generation key, and the
// store is a script that compares the tokens read before the Postgres read with the current
// ones (and a global token, changed by every resynchronisation). So a listing read before a
// change can never be stored after that change's invalidation.
//
// Redis is derived data: when it fails, reads go to Postgres (through load) and the view stops
// serving until a resynchronisation (every listing dropped, the products' categories reloaded)
// has completed. Lost keys (FLUSHDB, a restart) are noticed by a marker key, checked every
// second, and also lead to a resynchronisation.
package listings

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
)

// HeadLength is how many products a stored listing holds: the largest page the API serves, so
// that the first page of every limit comes from one stored listing.
const HeadLength = 100

// Key names a listing: a scope (0 for the whole catalog, else a category id) and a sort (one of
// queries.ProductSorts).
type Key struct {
	Category int64
	Sort     string
}

// Page is a stored listing: the first HeadLength products (or fewer) as the API encodes them,
// the cursor that follows each, whether more follow, and a header (the category's JSON on a
// category page; nil for the whole catalog). The first page of limit n is Items[:n], followed
// by Cursors[n-1] when n < len(Items) or More.
type Page struct {
	Header  json.RawMessage   `json:"h,omitempty"`
	Items   []json.RawMessage `json:"i"`
	Cursors []string          `json:"c"`
	More    bool              `json:"m,omitempty"`

	// body is the last answer built from the page (Body), while the page is in the in-process
	// copy: the same category page asked again and again is encoded once.
	body *atomic.Pointer[pageBody]
}

type pageBody struct {
	limit int
	bytes []byte
}

// Body returns the answer of the page's first limit products: build's, kept with the page while
// it is in the in-process copy, one limit at a time (the last one asked). An answer is no larger
// than the page's items and header, so the copy's memory stays within twice its weight bound.
// build must depend on limit and the page alone.
func (p Page) Body(limit int, build func() []byte) []byte {
	if p.body == nil {
		return build()
	}
	if b := p.body.Load(); b != nil && b.limit == limit {
		return b.bytes
	}
	b := build()
	p.body.Store(&pageBody{limit: limit, bytes: b})
	return b
}

// Next is the cursor after the first page of limit n, "" when that page is the last.
func (p Page) Next(n int) string {
	if n < len(p.Items) || (n == len(p.Items) && p.More) {
		return p.Cursors[n-1]
	}
	return ""
}

// weight is roughly the page's bytes in memory, without the answer it may keep (Body): counting
// it would halve the pages the copy holds, most of which keep one; localBytes bounds the pages,
// and the answers at most as much again.
func (p Page) weight() uint32 {
	w := len(p.Header) + 64
	for i, it := range p.Items {
		w += len(it) + len(p.Cursors[i]) + 48
	}
	return uint32(w)
}

// Listings is the view. Get reads it; Run keeps it following the log.
type Listings struct {
	pool     *pgxpool.Pool
	rdb      *redis.Client
	prefix   string
	log      *slog.Logger
	channels []string // product channels
	// serving is true while every listing in Redis and in process is as fresh as the
	// notifications applied: Get uses them then.
	serving atomic.Bool
	syncs   atomic.Int64
	local   *localPages
	nudge   chan struct{}
}

// Config configures the view.
type Config struct {
	Pool   *pgxpool.Pool
	Redis  *redis.Client
	Prefix string // key prefix, "techvault:" by default
	Logger *slog.Logger
	// ProductChannels are the NOTIFY channels whose payloads are changed product ids (or
	// "resync"): the products projector's by default. A projector of another read model that
	// writes columns of products (a rating) adds its channel here.
	ProductChannels []string
}

// New returns the view; Run makes it serve.
func New(cfg Config) (*Listings, error) {
	if cfg.Pool == nil || cfg.Redis == nil {
		return nil, errors.New("listings: the view needs a pool and a Redis client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "techvault:"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.ProductChannels) == 0 {
		cfg.ProductChannels = []string{catalogproj.ProductCardsChannel}
	}
	return &Listings{pool: cfg.Pool, rdb: cfg.Redis, prefix: cfg.Prefix, log: cfg.Logger.With("view", "listings"),
		channels: cfg.ProductChannels, local: newLocalPages(), nudge: make(chan struct{}, 1)}, nil
}

func scopeName(category int64) string { return strconv.FormatInt(category, 10) }

func (l *Listings) pageKey(category int64) string {
	return l.prefix + "listings:page:" + scopeName(category)
}
func (l *Listings) genKey(category int64) string {
	return l.prefix + "listings:gen:" + scopeName(category)
}
func (l *Listings) globalKey() string { return l.prefix + "listings:gen" }
func (l *Listings) markerKey() string { return l.prefix + "listings:synced" }

// Ready reports whether the view serves reads.
func (l *Listings) Ready() bool { return l.serving.Load() }

// Syncs returns how many resynchronisations have completed.
func (l *Listings) Syncs() int64 { return l.syncs.Load() }

// Source says where Get found a listing.
type Source int

// Where Get found a listing: in the view (Redis, or its copy in process) or in Postgres.
const (
	FromView Source = iota
	FromPostgres
)

// Get returns the listing of key: from the view when it serves and holds it, else from load (a
// read of Postgres), which it then stores unless key's scope was invalidated meanwhile. A
// category page whose header is nil (no such category) is never stored, so that listings of
// unknown categories cannot grow the view.
func (l *Listings) Get(ctx context.Context, key Key, load func(context.Context) (Page, error)) (Page, Source, error) {
	if !l.serving.Load() {
		p, err := load(ctx)
		return p, FromPostgres, err
	}
	if p, ok := l.local.get(key); ok {
		return p, FromView, nil
	}
	epoch := l.local.begin(key.Category)
	raw, err := l.rdb.HGet(ctx, l.pageKey(key.Category), key.Sort).Bytes()
	switch {
	case err == nil:
		var p Page
		if err := json.Unmarshal(raw, &p); err == nil && len(p.Cursors) == len(p.Items) {
			l.local.fill(epoch, key, p)
			return p, FromView, nil
		}
		l.log.Warn("unreadable listing in Redis; reading Postgres", "category", key.Category, "sort", key.Sort)
	case !errors.Is(err, redis.Nil):
		l.markStale(err)
		p, err := load(ctx)
		return p, FromPostgres, err
	default:
		select { // the listing may be gone with the rest of the view: have the loop check the marker
		case l.nudge <- struct{}{}:
		default:
		}
	}
	// A miss: the tokens first, then Postgres, then the store if the tokens are unchanged.
	pipe := l.rdb.Pipeline()
	scopeGen, globalGen := pipe.Get(ctx, l.genKey(key.Category)), pipe.Get(ctx, l.globalKey())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		l.markStale(err)
		p, err := load(ctx)
		return p, FromPostgres, err
	}
	p, err := load(ctx)
	if err != nil {
		return p, FromPostgres, err
	}
	if key.Category != 0 && p.Header == nil {
		return p, FromPostgres, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return p, FromPostgres, nil
	}
	stored, err := storePage.Run(ctx, l.rdb, []string{l.pageKey(key.Category), l.genKey(key.Category), l.globalKey()},
		key.Sort, b, scopeGen.Val(), globalGen.Val()).Int()
	if err != nil {
		l.markStale(err)
		return p, FromPostgres, nil
	}
	if stored == 1 {
		l.local.fill(epoch, key, p)
	}
	return p, FromPostgres, nil
}

// markStale stops the view serving until a resynchronisation: Redis failed, so it may have
// missed invalidations.
func (l *Listings) markStale(err error) {
	if l.serving.Swap(false) {
		l.log.Warn("listings view unavailable; listings read Postgres", "err", err)
	}
	l.local.clear()
}

// Redis scripts.
var (
	// storePage writes ARGV[2] as field ARGV[1] of the page hash KEYS[1] if the scope's token
	// KEYS[2] and the global token KEYS[3] are still ARGV[3] and ARGV[4] ("" for none).
	storePage = redis.NewScript(`
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[3] or (redis.call('GET', KEYS[3]) or '') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`)
	// invalidate writes the token ARGV[1] into each scope's generation key (KEYS 1, 3, 5, ...)
	// and deletes its page hash (KEYS 2, 4, 6, ...).
	invalidate = redis.NewScript(`
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[1])
  redis.call('DEL', KEYS[i + 1])
end
return 1`)
)

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Timing of the listen loop.
const (
	markerEvery = time.Second
	nudgeEvery  = 100 * time.Millisecond
	retryEvery  = 250 * time.Millisecond
)

// Run follows the log until ctx is done, resynchronising at start, after a lost connection, when
// Redis comes back, on a "resync" notification (a rebuild, a category deletion) and when the
// view's marker is lost.
func (l *Listings) Run(ctx context.Context) error {
	defer l.serving.Store(false)
	for ctx.Err() == nil {
		if err := l.listen(ctx); err != nil && ctx.Err() == nil {
			l.markStale(err)
			l.log.Warn("listings listener stopped; restarting", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// listener is the state of one listen call; only its goroutine touches it.
type listener struct {
	categories map[int64]int64 // product → its category (absent: none)
	want       bool            // a resync is needed
	retryAt    time.Time
	checked    time.Time
}

func (l *Listings) listen(ctx context.Context) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring listener connection: %w", err)
	}
	defer conn.Release()
	channels := append([]string{catalogproj.CategoriesChannel}, l.channels...)
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listening: %w", err)
		}
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `UNLISTEN *`) }()
	defer l.serving.Store(false) // notifications are missed from here on

	lctx, cancel := context.WithCancel(ctx)
	notes := make(chan *pgconn.Notification, maxBatch)
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			n, err := conn.Conn().WaitForNotification(lctx)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case notes <- n:
			case <-lctx.Done():
				readErr <- lctx.Err()
				return
			}
		}
	}()
	defer func() {
		cancel()
		wg.Wait() // the reader no longer uses conn
	}()

	// The reader owns the connection while it waits: the listener's own queries use the pool.
	ls := &listener{want: true}
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	for {
		if !l.serving.Load() && !ls.want && ls.categories != nil {
			ls.want = true // a Get saw Redis fail
		}
		if ls.want && !time.Now().Before(ls.retryAt) {
			if err := l.resync(lctx, ls); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				l.markStale(err)
				ls.retryAt = time.Now().Add(retryEvery)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			readErr <- err
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("waiting for notifications: %w", err)
		case n := <-notes:
			if err := l.notified(lctx, ls, drain(n, notes)); err != nil && ctx.Err() == nil {
				l.markStale(err)
				ls.want = true
			}
		case <-tick.C:
			if !ls.want && time.Since(ls.checked) >= markerEvery {
				l.checkMarker(lctx, ls)
			}
		case <-l.nudge:
			if !ls.want && time.Since(ls.checked) >= nudgeEvery {
				l.checkMarker(lctx, ls)
			}
		}
	}
}

// maxBatch bounds the notifications applied together.
const maxBatch = 512

func drain(first *pgconn.Notification, notes <-chan *pgconn.Notification) []*pgconn.Notification {
	out := []*pgconn.Notification{first}
	for len(out) < maxBatch {
		select {
		case n := <-notes:
			out = append(out, n)
		default:
			return out
		}
	}
	return out
}

// notified applies a batch of notifications: the scopes they touch are invalidated together.
func (l *Listings) notified(ctx context.Context, ls *listener, notes []*pgconn.Notification) error {
	var products []int64
	scopes := map[int64]bool{}
	for _, n := range notes {
		if n.Payload == projections.ResyncNotification {
			ls.want = true
			continue
		}
		id, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			continue
		}
		if n.Channel == catalogproj.CategoriesChannel {
			scopes[id] = true
		} else {
			products = append(products, id)
		}
	}
	if ls.want {
		return nil // the resync drops everything
	}
	if len(products) > 0 {
		scopes[0] = true
		rows, err := l.pool.Query(ctx, `SELECT id, category_id FROM products WHERE id = ANY($1)`, products)
		if err != nil {
			return fmt.Errorf("reading products: %w", err)
		}
		now := map[int64]int64{}
		var id int64
		var cat *int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &cat}, func() error {
			if cat != nil {
				now[id] = *cat
			}
			return nil
		}); err != nil {
			return fmt.Errorf("reading products: %w", err)
		}
		for _, id := range products {
			if old, ok := ls.categories[id]; ok {
				scopes[old] = true
			}
			if c, ok := now[id]; ok {
				scopes[c] = true
				ls.categories[id] = c
			} else {
				delete(ls.categories, id)
			}
		}
	}
	if len(scopes) == 0 {
		return nil
	}
	return l.invalidate(ctx, scopes)
}

// invalidate drops the listings of scopes in Redis and in process.
func (l *Listings) invalidate(ctx context.Context, scopes map[int64]bool) error {
	keys := make([]string, 0, 2*len(scopes))
	list := make([]int64, 0, len(scopes))
	for s := range scopes {
		keys = append(keys, l.genKey(s), l.pageKey(s))
		list = append(list, s)
	}
	l.local.startRewrite(list)
	defer l.local.endRewrite(list)
	if err := invalidate.Run(ctx, l.rdb, keys, newToken()).Err(); err != nil {
		return fmt.Errorf("invalidating listings: %w", err)
	}
	return nil
}

// resync drops every listing, reloads the products' categories and sets the marker; the view
// serves again once it has completed.
func (l *Listings) resync(ctx context.Context, ls *listener) error {
	l.serving.Store(false)
	l.local.clear()
	if err := l.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	// The global token first: a read that began before it cannot store what it read.
	if err := l.rdb.Set(ctx, l.globalKey(), newToken(), 0).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	iter := l.rdb.Scan(ctx, 0, l.prefix+"listings:page:*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scanning listings: %w", err)
	}
	if len(keys) > 0 {
		if err := l.rdb.Del(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("dropping listings: %w", err)
		}
	}
	rows, err := l.pool.Query(ctx, `SELECT id, category_id FROM products WHERE category_id IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("reading products: %w", err)
	}
	cats := map[int64]int64{}
	var id, cat int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &cat}, func() error {
		cats[id] = cat
		return nil
	}); err != nil {
		return fmt.Errorf("reading products: %w", err)
	}
	if err := l.rdb.Set(ctx, l.markerKey(), newToken(), 0).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	ls.categories, ls.want, ls.checked = cats, false, time.Now()
	l.local.clear()
	l.syncs.Add(1)
	l.serving.Store(true)
	l.log.Debug("listings view in sync", "products", len(cats), "dropped", len(keys))
	return nil
}

// checkMarker resynchronises when the marker a resynchronisation leaves is gone (the keys were
// flushed: their generation tokens with them).
func (l *Listings) checkMarker(ctx context.Context, ls *listener) {
	ls.checked = time.Now()
	n, err := l.rdb.Exists(ctx, l.markerKey()).Result()
	switch {
	case err != nil:
		if ctx.Err() == nil {
			l.markStale(err)
			ls.want = true
		}
	case n == 0:
		l.log.Warn("listings view lost its keys (marker missing); resynchronising")
		l.serving.Store(false)
		ls.want = true
	}
}

// localPages is the in-process copy of listings, invalidated with Redis by the listener (every
// process that serves reads listens). A fill records the epochs of its scope and of the whole
// copy before its Redis or Postgres read, and stores what it read only if neither saw an
// invalidation since and none of its scope is in flight. Scopes are remembered only for stored
// listings and notified categories, so requests for unknown categories leave nothing behind.
type localPages struct {
	cache  *otter.Cache[Key, Page]
	mu     sync.Mutex
	all    uint64 // bumped by clear
	scopes map[int64]*scopeState
}

type scopeState struct {
	epoch     uint64
	rewriting int
	keys      map[Key]bool
}

// epoch is what a fill must still see to store.
type epoch struct{ all, scope uint64 }

// localBytes bounds the in-process copy's pages (the answers they keep take at most as much again).
const localBytes = 64 << 20

func newLocalPages() *localPages {
	return &localPages{scopes: map[int64]*scopeState{}, cache: otter.Must(&otter.Options[Key, Page]{
		MaximumWeight: localBytes,
		Weigher:       func(_ Key, p Page) uint32 { return p.weight() },
	})}
}

func (c *localPages) get(k Key) (Page, bool) { return c.cache.GetIfPresent(k) }

func (c *localPages) scope(category int64) *scopeState {
	s, ok := c.scopes[category]
	if !ok {
		s = &scopeState{keys: map[Key]bool{}}
		c.scopes[category] = s
	}
	return s
}

func (c *localPages) begin(category int64) epoch {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := epoch{all: c.all}
	if s, ok := c.scopes[category]; ok {
		e.scope = s.epoch
	}
	return e
}

func (c *localPages) fill(e epoch, k Key, p Page) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.scope(k.Category); c.all == e.all && s.epoch == e.scope && s.rewriting == 0 {
		s.keys[k] = true
		p.body = new(atomic.Pointer[pageBody])
		c.cache.Set(k, p)
	}
}

func (c *localPages) drop(s *scopeState) {
	s.epoch++
	for k := range s.keys {
		c.cache.Invalidate(k)
	}
	clear(s.keys)
}

// startRewrite drops the scopes' listings before their Redis keys are invalidated; endRewrite
// drops them again after.
func (c *localPages) startRewrite(categories []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cat := range categories {
		s := c.scope(cat)
		s.rewriting++
		c.drop(s)
	}
}

func (c *localPages) endRewrite(categories []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cat := range categories {
		s := c.scope(cat)
		s.rewriting--
		c.drop(s)
	}
}

func (c *localPages) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all++
	for _, s := range c.scopes {
		c.drop(s)
	}
	c.cache.InvalidateAll()
}
