// Package cards is the Redis view of product cards, with its in-process cache: each product's
// GET response bytes, rewritten after the products projector commits.
package cards

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
)

// ProductCards is the Redis view of product cards: a product's card (the bytes Encode makes of its
// queries.ProductView, which the HTTP API serves as they are) per product, written
// after the products projector commits (it NOTIFYs in its transaction; this view LISTENs). Redis
// is derived data: when it is down, Get misses and callers read Postgres; when it returns, the
// view resynchronises from the products table before it is used again.
//
// The view heals itself: a completed full resync leaves a marker key (<prefix>cards:synced,
// holding the products projector's position when the resync began). The listen loop checks the
// marker every second and after a Get misses; a missing marker (FLUSHDB, Redis restarted empty,
// keys evicted) starts a background resync, and a marker older than one already seen (Redis
// restored from an old snapshot) also stops Gets until the resync completes.
//
// Every card is written with its row's version (kept in <prefix>cards:versions) by a script that
// refuses an older version, and a deletion leaves a tombstone there, so a resync that read a row
// before a newer change (applied meanwhile by a notification) never overwrites it. The versions
// belong to one database (<prefix>cards:database holds its oid): a resync against a recreated
// database of the same name starts them afresh.
type ProductCards struct {
	pool   *pgxpool.Pool
	rdb    *redis.Client
	encode func(queries.ProductView) ([]byte, error)
	prefix string
	log    *slog.Logger
	// serving is true while every card in Redis is at least as new as the last notification
	// applied: Get serves hits then (a miss still falls back to Postgres). It is false while
	// Redis is unreachable and until a resync has completed after that.
	serving atomic.Bool
	// state is what readiness reports (stateDown, stateResyncing, stateReady).
	state atomic.Int32
	// synced counts completed full resynchronisations (for tests and metrics).
	synced atomic.Int64
	// fetches feeds fetchLoop, which batches concurrent Gets into MGETs.
	fetches chan cardFetch
	// nudge asks the listen loop to check the marker now (a Get missed).
	nudge chan struct{}
	// resyncHook, when set (tests), runs after a resync page is read and before it is written.
	resyncHook atomic.Pointer[func(ids []int64)]
	// local caches cards in process while the view is ready (see localCards).
	local *localCards
}

// View states, as State reports them.
const (
	stateDown int32 = iota
	stateResyncing
	stateReady
)

// View state names, reported by /readyz.
const (
	ViewDown      = "down"
	ViewResyncing = "resyncing"
	ViewReady     = "ready"
)

// Config configures the view.
type Config struct {
	Pool  *pgxpool.Pool
	Redis *redis.Client
	// Encode makes a product's card: the exact bytes the HTTP API answers for it, so a card
	// served from Redis (or the in-process cache) equals the answer read from Postgres. The
	// transport owns that shape; the wiring passes its encoder here.
	Encode func(queries.ProductView) ([]byte, error)
	Prefix string // key prefix, "techvault:" by default
	Logger *slog.Logger
}

// New returns the view; Run keeps it up to date.
func New(cfg Config) (*ProductCards, error) {
	if cfg.Pool == nil || cfg.Redis == nil || cfg.Encode == nil {
		return nil, errors.New("cards: product cards need a pool, a Redis client and an encoder")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "techvault:"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &ProductCards{pool: cfg.Pool, rdb: cfg.Redis, encode: cfg.Encode, prefix: cfg.Prefix,
		log:     cfg.Logger.With("view", "product_cards"),
		fetches: make(chan cardFetch, maxCardBatch), nudge: make(chan struct{}, 1), local: newLocalCards()}, nil
}

func (c *ProductCards) key(id int64) string { return c.prefix + "product:" + strconv.FormatInt(id, 10) }
func (c *ProductCards) versionsKey() string { return c.prefix + "cards:versions" }
func (c *ProductCards) markerKey() string   { return c.prefix + "cards:synced" }
func (c *ProductCards) databaseKey() string { return c.prefix + "cards:database" }
func (c *ProductCards) resyncKey(token string) string {
	return c.prefix + "cards:resync:" + token
}

// Get returns a product's card JSON; ok is false when the view cannot answer (miss, Redis down,
// or not yet resynchronised).
func (c *ProductCards) Get(ctx context.Context, id int64) (card []byte, ok bool) {
	if !c.serving.Load() {
		return nil, false
	}
	// The in-process cache answers only while the view is whole and in sync; during a resync
	// every read goes to Redis (and Postgres on a miss).
	cacheable := c.state.Load() == stateReady
	var epoch uint64
	if cacheable {
		if card, ok := c.local.get(id); ok {
			return card, true
		}
		epoch = c.local.begin(id)
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
		if errors.Is(r.err, redis.Nil) {
			// The card may be gone with the rest of the view: have the loop check the marker.
			select {
			case c.nudge <- struct{}{}:
			default:
			}
		} else {
			c.markStale(r.err)
		}
		return nil, false
	}
	if cacheable {
		c.local.fill(epoch, id, r.card)
	}
	return r.card, true
}

// cardFetchers is how many MGETs may be in flight at once.
const cardFetchers = 2

// Ready reports whether the view is complete and serves reads.
func (c *ProductCards) Ready() bool { return c.state.Load() == stateReady }

// State reports the view's state for readiness: ViewReady (complete and serving), ViewResyncing
// (a full resync is running; misses fall back to Postgres) or ViewDown (Redis unreachable or the
// view not running; nothing is served from Redis).
func (c *ProductCards) State() string {
	switch c.state.Load() {
	case stateReady:
		return ViewReady
	case stateResyncing:
		return ViewResyncing
	}
	return ViewDown
}

// Syncs returns how many full resynchronisations have completed.
func (c *ProductCards) Syncs() int64 { return c.synced.Load() }

// markStale stops Gets until a full resync has completed: Redis failed, so cards may have missed
// changes.
func (c *ProductCards) markStale(err error) {
	c.serving.Store(false)
	if c.state.Swap(stateDown) != stateDown {
		c.log.Warn("product cards view unavailable; reads fall back to Postgres", "err", err)
	}
}

// Timing of the listen loop.
const (
	markerEvery   = time.Second            // how often the marker is checked
	nudgeEvery    = 100 * time.Millisecond // at most one extra check per this, on Get misses
	resyncRetry   = 250 * time.Millisecond // delay before retrying a failed resync
	resyncPage    = 1000                   // rows per keyset page (and cards per pipeline)
	resyncTimeout = time.Hour              // lifetime of a resync's token key
)

// Run listens for the products projector's notifications until ctx is done, resynchronising the
// whole view at start, after a rebuild, after a lost connection, when Redis comes back and when
// the view's marker is lost.
func (c *ProductCards) Run(ctx context.Context) error {
	defer func() { // nobody serves Gets once Run returns
		c.serving.Store(false)
		c.state.Store(stateDown)
	}()
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

// listenLoop is the state of one listen call; only its goroutine touches it.
type listenLoop struct {
	want     bool      // a full resync is needed
	running  bool      // a resync goroutine is running
	retryAt  time.Time // no resync starts before this
	checked  time.Time // last marker check
	lastSeen int64     // highest marker generation seen
}

func (c *ProductCards) listen(ctx context.Context) error {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring listener connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{catalogproj.ProductCardsChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	lctx, cancel := context.WithCancel(ctx)
	// Buffered, so that notifications keep being read while a batch of them is applied.
	notes := make(chan *pgconn.Notification, maxRefreshBatch)
	readErr := make(chan error, 1)
	go func() {
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
	resyncDone := make(chan error, 1)
	var l listenLoop
	defer func() {
		cancel()
		if l.running {
			<-resyncDone //nolint:errcheck // the view is stopping: a resync's error no longer matters
		}
		<-readErr //nolint:errcheck // waits until the reader has stopped using conn; its error is Run's no more
		_, _ = conn.Exec(context.WithoutCancel(ctx), `UNLISTEN *`)
	}()

	// Notifications missed while not listening are covered by a full resync.
	l.want = true
	tick := time.NewTicker(resyncRetry)
	defer tick.Stop()
	for {
		if !l.running && c.state.Load() == stateDown {
			l.want = true // Redis failed (here or in a Get): cards may be stale
		}
		if l.want && !l.running && !time.Now().Before(l.retryAt) {
			// A resync asked for by a notification (rebuild, category deletion) keeps a ready
			// view ready: its cards are all there and as fresh as the notifications applied.
			l.want, l.running = false, true
			go func() { resyncDone <- c.resync(lctx) }()
		}
		select {
		case <-ctx.Done():
			return nil
		case rerr := <-readErr:
			readErr <- rerr // for the deferred wait
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("waiting for notifications: %w", rerr)
		case n := <-notes:
			c.notified(lctx, &l, drain(n, notes))
		case rerr := <-resyncDone:
			l.running = false
			c.resynced(&l, rerr)
		case <-tick.C:
			if !l.running && !l.want && time.Since(l.checked) >= markerEvery {
				c.checkMarker(lctx, &l)
			}
		case <-c.nudge:
			if !l.running && !l.want && time.Since(l.checked) >= nudgeEvery {
				c.checkMarker(lctx, &l)
			}
		}
	}
}

// notified applies notifications: product ids to refresh (together), or requests to resync.
func (c *ProductCards) notified(ctx context.Context, l *listenLoop, payloads []string) {
	ids := make([]int64, 0, len(payloads))
	for _, payload := range payloads {
		if payload == projections.ResyncNotification {
			c.local.clear()
			l.want = true
			continue
		}
		if id, err := strconv.ParseInt(payload, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	if err := c.refresh(ctx, ids); err != nil && ctx.Err() == nil {
		c.markStale(err)
		l.want = true
	}
}

// maxRefreshBatch bounds the notifications applied together.
const maxRefreshBatch = 512

// drain returns first's payload and those of the notifications already waiting behind it (up to
// maxRefreshBatch), so that a burst costs one read of the table and one Redis round trip.
func drain(first *pgconn.Notification, notes <-chan *pgconn.Notification) []string {
	payloads := []string{first.Payload}
	for len(payloads) < maxRefreshBatch {
		select {
		case n := <-notes:
			payloads = append(payloads, n.Payload)
		default:
			return payloads
		}
	}
	return payloads
}

// resynced records the end of a resync goroutine. The view serves again only if nothing failed
// meanwhile (a failure leaves the state down, so the compare-and-swap fails and the loop resyncs).
func (c *ProductCards) resynced(l *listenLoop, err error) {
	switch {
	case errors.Is(err, errViewLost):
		c.log.Warn("product cards view lost its keys during a resync; starting again")
		l.want, l.retryAt = true, time.Now().Add(resyncRetry)
		return
	case errors.Is(err, context.Canceled):
		return
	case err != nil:
		c.markStale(err)
		l.want, l.retryAt = true, time.Now().Add(resyncRetry)
		return
	}
	l.checked = time.Now()
	next := stateReady
	if l.want {
		next = stateResyncing
	}
	// The resync rewrote cards without invalidating them one by one (and a ready view served
	// while it ran): drop every cached card before serving from the cache again.
	c.local.clear()
	if !c.state.CompareAndSwap(stateResyncing, next) {
		return
	}
	c.serving.Store(true)
	if next == stateReady {
		c.log.Info("product cards view in sync")
	}
}

// errViewLost is a resync's error when the view's keys vanished while it ran.
var errViewLost = errors.New("the view lost its keys during the resync")

// checkMarker looks for the marker a completed resync leaves; its absence means the view lost its
// keys, an older generation than one already seen means Redis went back in time.
func (c *ProductCards) checkMarker(ctx context.Context, l *listenLoop) {
	l.checked = time.Now()
	v, err := c.rdb.Get(ctx, c.markerKey()).Int64()
	switch {
	case errors.Is(err, redis.Nil):
		c.log.Warn("product cards view lost its keys (marker missing); resynchronising")
		c.state.Store(stateResyncing)
		l.want = true
	case err != nil:
		if ctx.Err() == nil {
			c.markStale(err)
			l.want = true
		}
	case v < l.lastSeen:
		c.log.Warn("product cards view went back in time; resynchronising", "generation", v, "seen", l.lastSeen)
		c.serving.Store(false)
		c.state.Store(stateResyncing)
		l.want = true
	default:
		l.lastSeen = v
	}
}

// Redis scripts. KEYS[1] is the card, KEYS[2] the versions hash; ARGV[1] is the product id.
// A version field holds the card's row version, or "gone" once the product was deleted (ids are
// never reused). An equal version may rewrite the card: a category deletion changes a row
// without a new version (and is followed by a resync).
var (
	// setCard writes ARGV[3] as the card of version ARGV[2] unless a newer one is there.
	setCard = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur == 'gone' or (cur and tonumber(cur) > tonumber(ARGV[2])) then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1`)
	// delCard removes a deleted product's card and leaves its tombstone.
	delCard = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], 'gone')
return 1`)
	// ownVersions empties the versions hash KEYS[2] unless the database key KEYS[1] already
	// names this database (ARGV[1]): versions and tombstones of a dropped and recreated database
	// of the same name must not hold back the new one's cards.
	ownVersions = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1])
return 1`)
	// finishResync sets the marker KEYS[2] to max(marker, ARGV[1]) if the resync's token KEYS[1]
	// survived (nothing flushed the view while it ran); it returns 1 then, 0 otherwise.
	finishResync = redis.NewScript(`
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
local cur = redis.call('GET', KEYS[2])
if not cur or tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1]) end
return 1`)
)

// versionedRow scans the row version before the product columns.
type versionedRow struct {
	pgx.Row
	version *int64
}

func (r versionedRow) Scan(dest ...any) error {
	return r.Row.Scan(append([]any{r.version}, dest...)...)
}

// versionedProduct reads a card's version with the product: its stream version plus its
// rating_version (which grows with every change of its rating), so that a review's change of the
// card orders after the card it replaces too.
const versionedProduct = `SELECT version + rating_version, ` + queries.ProductColumns + ` FROM products`

// refresh rewrites the cards of ids from the products table (or removes those whose product is
// gone): one query, one Redis pipeline.
func (c *ProductCards) refresh(ctx context.Context, ids []int64) error {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	rows, err := c.pool.Query(ctx, versionedProduct+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("reading products: %w", err)
	}
	versions := map[int64]int64{}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queries.ProductView, error) {
		var v int64
		p, err := queries.ScanProduct(versionedRow{r, &v})
		versions[p.ID] = v
		return p, err
	})
	if err != nil {
		return fmt.Errorf("reading products: %w", err)
	}
	// The local copies go before and after the Redis writes (see localCards).
	for _, id := range ids {
		c.local.startRewrite(id)
	}
	defer func() {
		for _, id := range ids {
			c.local.endRewrite(id)
		}
	}()
	pipe := c.rdb.Pipeline()
	for _, p := range items {
		b, err := c.encode(p)
		if err != nil {
			return err
		}
		setCard.Eval(ctx, pipe, []string{c.key(p.ID), c.versionsKey()}, p.ID, versions[p.ID], b) // Eval: a pipeline cannot fall back from NOSCRIPT
	}
	for _, id := range ids {
		if _, found := versions[id]; !found {
			delCard.Eval(ctx, pipe, []string{c.key(id), c.versionsKey()}, id)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("writing cards: %w", err)
	}
	return nil
}

// resync writes every card from the products table, page by page (keyset on id, one pipeline
// per page), removes cards of products that are gone, and then sets the marker.
func (c *ProductCards) resync(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	c.state.CompareAndSwap(stateDown, stateResyncing) // Redis answers: the view is on its way back
	var generation int64
	if err := c.pool.QueryRow(ctx, `SELECT coalesce(max(offset_acked), 0) FROM projector_offsets
		WHERE consumer_group = $1`, catalogproj.ProductsProjector).Scan(&generation); err != nil {
		return fmt.Errorf("reading the products checkpoint: %w", err)
	}
	// The token key marks this resync as running; a flush removes it with the cards written so
	// far, and the marker is then not set.
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	token := c.resyncKey(hex.EncodeToString(raw[:]))
	if err := c.rdb.Set(ctx, token, 1, resyncTimeout).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	for _, s := range []*redis.Script{setCard, delCard, finishResync} {
		if err := s.Load(ctx, c.rdb).Err(); err != nil {
			return fmt.Errorf("loading scripts: %w", err)
		}
	}
	var database string
	if err := c.pool.QueryRow(ctx, `SELECT oid::text FROM pg_database WHERE datname = current_database()`).Scan(&database); err != nil {
		return fmt.Errorf("reading the database oid: %w", err)
	}
	if err := ownVersions.Run(ctx, c.rdb, []string{c.databaseKey(), c.versionsKey()}, database).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	cards, err := c.writeAll(ctx)
	if err != nil {
		return err
	}
	if err := c.removeGone(ctx); err != nil {
		return err
	}
	ok, err := finishResync.EvalSha(ctx, c.rdb, []string{token, c.markerKey()}, generation).Int()
	if err != nil {
		return fmt.Errorf("setting the marker: %w", err)
	}
	if ok != 1 {
		return errViewLost
	}
	c.synced.Add(1)
	c.log.Debug("product cards resynchronised", "cards", cards, "generation", generation)
	return nil
}

// writeAll streams the products table by keyset and writes every card with its version.
func (c *ProductCards) writeAll(ctx context.Context) (int, error) {
	var after int64
	total := 0
	ids := make([]int64, 0, resyncPage)
	for {
		rows, err := c.pool.Query(ctx, versionedProduct+` WHERE id > $1 ORDER BY id LIMIT $2`, after, resyncPage)
		if err != nil {
			return total, fmt.Errorf("reading products: %w", err)
		}
		var versions []int64
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queries.ProductView, error) {
			var v int64
			p, err := queries.ScanProduct(versionedRow{r, &v})
			versions = append(versions, v)
			return p, err
		})
		if err != nil {
			return total, fmt.Errorf("reading products: %w", err)
		}
		if len(items) == 0 {
			return total, nil
		}
		if hook := c.resyncHook.Load(); hook != nil {
			ids = ids[:0]
			for _, p := range items {
				ids = append(ids, p.ID)
			}
			(*hook)(ids)
		}
		pipe := c.rdb.Pipeline()
		for i, p := range items {
			b, err := c.encode(p)
			if err != nil {
				return total, err
			}
			setCard.EvalSha(ctx, pipe, []string{c.key(p.ID), c.versionsKey()}, p.ID, versions[i], b)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return total, fmt.Errorf("writing cards: %w", err)
		}
		total += len(items)
		after = items[len(items)-1].ID
		if len(items) < resyncPage {
			return total, nil
		}
	}
}

// removeGone deletes (with a tombstone) the cards of products that are no longer in the table.
func (c *ProductCards) removeGone(ctx context.Context) error {
	iter := c.rdb.Scan(ctx, 0, c.prefix+"product:*", resyncPage).Iterator()
	var ids []int64
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		rows, err := c.pool.Query(ctx, `SELECT id FROM products WHERE id = ANY($1)`, ids)
		if err != nil {
			return fmt.Errorf("reading product ids: %w", err)
		}
		live, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("reading product ids: %w", err)
		}
		exists := make(map[int64]bool, len(live))
		for _, id := range live {
			exists[id] = true
		}
		pipe := c.rdb.Pipeline()
		for _, id := range ids {
			if !exists[id] {
				delCard.EvalSha(ctx, pipe, []string{c.key(id), c.versionsKey()}, id)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("removing stale cards: %w", err)
		}
		ids = ids[:0]
		return nil
	}
	for iter.Next(ctx) {
		id, err := strconv.ParseInt(strings.TrimPrefix(iter.Val(), c.prefix+"product:"), 10, 64)
		if err != nil {
			if err := c.rdb.Del(ctx, iter.Val()).Err(); err != nil { // not a card of ours
				return fmt.Errorf("removing stray key: %w", err)
			}
			continue
		}
		if ids = append(ids, id); len(ids) == resyncPage {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scanning cards: %w", err)
	}
	return flush()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
