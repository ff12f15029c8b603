package commands

import (
	"context"
	"encoding/json"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/techvault/techvault/eventstore"
)

// AggregateCache keeps, in this process, the state of aggregates at a committed version: the
// version this process's own append left them at (written through after it succeeds), or the
// version a load read. A command that appends to an aggregate may decide on the cached state
// instead of reading the stream: the append carries that version as its expected version, so a
// state that another process (or any append that bypassed the cache) moved on is refused by the
// event store, the entry is dropped, and the command is decided again on the stream
// (redecideOnConflict). A cached state is therefore never acted on unchecked; aggregates that a
// command only reads (a product's price when it is added to a cart, the user's addresses, a
// promo's terms) are always read from the stream. Share one cache among every handler of a
// process (WithAggregateCache), so that each one's appends keep it current for the others.
type AggregateCache struct {
	c *otter.Cache[string, cachedAggregate]
}

// cachedAggregate is an aggregate's snapshot state at a committed version.
type cachedAggregate struct {
	version    int64
	streamType string
	schema     int
	state      any
	at         time.Time // when this process last learned the state (appended or read it)
}

// RecentReads bounds how old a cached state may be when a command only reads the aggregate
// (loadRecent): the product's price and stock when it is added to a cart, the user's addresses and
// the promo's terms when an order is placed. Within one process the cache is exact (every append
// writes through); across processes, such a read may miss a change committed by another process
// this long ago. What those reads decide is checked again where it matters: the order re-prices
// every line against the product it appends to (price_changed), reserves the stock it appends to,
// and a refusal decided on cached state is decided again on the streams.
const RecentReads = 2 * time.Second

// NewAggregateCache returns a cache of at most capacity aggregates (least recently and
// frequently used are evicted first).
func NewAggregateCache(capacity int) *AggregateCache {
	return &AggregateCache{c: otter.Must(&otter.Options[string, cachedAggregate]{MaximumSize: max(capacity, 1)})}
}

// WithAggregateCache lets the handlers decide commands on cached aggregate state (see
// AggregateCache). Without it every command reads its streams.
func WithAggregateCache(c *AggregateCache) Option { return func(l *loader) { l.cache = c } }

// put records state at version unless a later version is cached already.
func (a *AggregateCache) put(streamID string, e cachedAggregate) {
	a.c.Compute(streamID, func(old cachedAggregate, found bool) (cachedAggregate, otter.ComputeOp) {
		if found && old.version > e.version {
			return old, otter.CancelOp
		}
		return e, otter.WriteOp
	})
}

func (a *AggregateCache) drop(streamID string) { a.c.Invalidate(streamID) }

// appended writes the changes through after their append: a change that carries its state is
// cached at its new version, any other stream it moved is dropped.
func (a *AggregateCache) appended(changes []Change) {
	for _, c := range changes {
		if len(c.Events) == 0 {
			continue
		}
		if c.cached == nil {
			a.drop(c.StreamID)
			continue
		}
		e := *c.cached
		e.version, e.at = c.ExpectedVersion+int64(len(c.Events)), time.Now()
		a.put(c.StreamID, e)
	}
}

// clashed drops every stream of an append that was refused for a version clash (which one moved
// does not matter: the retry reads them all again).
func (a *AggregateCache) clashed(changes []Change) {
	for _, c := range changes {
		a.drop(c.StreamID)
	}
}

// withState returns c carrying the aggregate's state after its events, for the cache.
func withState[A, S any](c Change, k aggregateKind[A, S], agg A) Change {
	c.cached = &cachedAggregate{streamType: k.streamType, schema: k.schemaVersion, state: k.snapshot(agg)}
	return c
}

// cacheTrace follows one decision's use of the cache (see decideChecked).
type cacheTrace struct {
	bypass  bool     // read every stream
	streams []string // streams decided on from the cache
}

type cacheTraceKey struct{}

// loadForAppend loads an aggregate that the command will append to: from the cache when it holds
// it (the append checks the version), else from the stream (and caches what it read).
func loadForAppend[A, S any](ctx context.Context, l loader, k aggregateKind[A, S], id int64) (A, error) {
	return loadCached(ctx, l, k, id, 0)
}

// loadRecent loads an aggregate that the command only reads: from the cache when this process
// learned its state at most RecentReads ago, else from the stream (and caches what it read).
func loadRecent[A, S any](ctx context.Context, l loader, k aggregateKind[A, S], id int64) (A, error) {
	return loadCached(ctx, l, k, id, RecentReads)
}

// loadCached loads from the cache an entry learned at most maxAge ago (any age when 0).
func loadCached[A, S any](ctx context.Context, l loader, k aggregateKind[A, S], id int64, maxAge time.Duration) (A, error) {
	streamID := k.streamID(id)
	tr, _ := ctx.Value(cacheTraceKey{}).(*cacheTrace)
	if l.cache != nil && tr != nil && !tr.bypass {
		if e, ok := l.cache.c.GetIfPresent(streamID); ok && e.streamType == k.streamType && e.schema == k.schemaVersion &&
			(maxAge == 0 || time.Since(e.at) <= maxAge) {
			if state, ok := e.state.(S); ok {
				if agg, err := k.rehydrateFrom(state, e.version, nil); err == nil {
					tr.streams = append(tr.streams, streamID)
					return agg, nil
				}
			}
			l.cache.drop(streamID)
		}
	}
	return loadAggregate(ctx, l, k, id)
}

// decideChecked runs decide; a decision made on cached state that appends nothing or is refused
// is made again on the streams: only an append checks a cached version, so a refusal or a no-op
// must not rest on a state another process may have moved on.
func decideChecked[R any](ctx context.Context, store EventStore, decide func(ctx context.Context) (R, []Change, error)) (R, []Change, error) {
	tr := &cacheTrace{}
	res, changes, err := decide(context.WithValue(ctx, cacheTraceKey{}, tr))
	if len(tr.streams) == 0 || err == nil && appendsSomething(changes) {
		return res, changes, err
	}
	if c, ok := store.(cachingStore); ok {
		for _, id := range tr.streams {
			c.cache.drop(id)
		}
	}
	return decide(context.WithValue(ctx, cacheTraceKey{}, &cacheTrace{bypass: true}))
}

func appendsSomething(changes []Change) bool {
	for _, c := range changes {
		if len(c.Events) > 0 {
			return true
		}
	}
	return false
}

// recentState returns the state of a stream that is not an aggregate kind (a promo code's
// reservation) when this process learned it at most RecentReads ago, and records its use in the
// decision's trace (a refusal decided on it is decided again on the stream).
func (l loader) recentState(ctx context.Context, streamID, streamType string) (any, bool) {
	tr, _ := ctx.Value(cacheTraceKey{}).(*cacheTrace)
	if l.cache == nil || tr == nil || tr.bypass {
		return nil, false
	}
	e, ok := l.cache.c.GetIfPresent(streamID)
	if !ok || e.streamType != streamType || time.Since(e.at) > RecentReads {
		return nil, false
	}
	tr.streams = append(tr.streams, streamID)
	return e.state, true
}

// learnedState caches the state of such a stream read at version.
func (l loader) learnedState(streamID, streamType string, version int64, state any) {
	if l.cache != nil {
		l.cache.put(streamID, cachedAggregate{version: version, streamType: streamType, state: state, at: time.Now()})
	}
}

// remember caches an aggregate read from its stream at version (nothing for an empty stream).
func remember[A, S any](l loader, k aggregateKind[A, S], id int64, version int64, agg A) {
	if l.cache == nil || version <= 0 {
		return
	}
	l.cache.put(k.streamID(id), cachedAggregate{version: version, streamType: k.streamType, schema: k.schemaVersion,
		state: k.snapshot(agg), at: time.Now()})
}

// cachingStore writes appends through to the aggregate cache.
type cachingStore struct {
	EventStore
	cache *AggregateCache
	l     loader // for snapshots
}

// observe returns store writing through to the loader's cache (store itself without one).
func (l loader) observe(store EventStore) EventStore {
	if l.cache == nil {
		return store
	}
	return cachingStore{EventStore: store, cache: l.cache, l: l}
}

// appendObserver is told what happened to the changes an append carried.
type appendObserver interface {
	appended(changes []Change)
	clashed(changes []Change)
}

func (s cachingStore) appended(changes []Change) {
	s.cache.appended(changes)
	s.snapshot(changes)
}

// snapshot writes a snapshot of every cached aggregate whose append crossed a multiple of the
// snapshot interval: commands decided on the cache read no stream, so no load would write one,
// and a process that starts cold would replay every event since the last. It runs in the
// background: a snapshot is a cache, and the command has its answer.
func (s cachingStore) snapshot(changes []Change) {
	if s.l.snaps == nil || s.l.every <= 0 {
		return
	}
	for _, c := range changes {
		if c.cached == nil || len(c.Events) == 0 {
			continue
		}
		to := c.ExpectedVersion + int64(len(c.Events))
		if to/s.l.every == c.ExpectedVersion/s.l.every {
			continue
		}
		state, err := json.Marshal(c.cached.state)
		if err != nil {
			continue
		}
		snap := eventstore.Snapshot{StreamID: c.StreamID, StreamType: c.cached.streamType, SchemaVersion: c.cached.schema,
			Version: to, State: state}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.l.snaps.SaveSnapshot(ctx, snap); err != nil {
				s.l.log.Warn("snapshot not written", "stream_id", snap.StreamID, "version", snap.Version, "error", err)
			}
		}()
	}
}
func (s cachingStore) clashed(changes []Change) { s.cache.clashed(changes) }

var _ appendObserver = cachingStore{}
