package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// lagSample is one appended event and when it became visible.
type lagSample struct {
	productID int64
	version   int64
	scheduled time.Time // when the pacer wanted it appended
	called    time.Time // Append called
	committed time.Time // Append returned (the commit was acknowledged)
	inWindow  bool
	seenRow   time.Time // products.version >= version seen by the products watcher
	seenEvent time.Time // the events row seen by the events watcher
}

// watcher polls one table on a connection of its own and stamps samples as they become visible.
// A sample is stamped with the time the poll that first saw it returned: an upper bound, at most
// one poll cycle (the -lag-poll pause plus one query) late.
type watcher struct {
	mu sync.Mutex
	// products watcher: pending samples per product, in version order.
	byProduct map[int64][]*lagSample
	// events watcher: pending samples per position.
	byPosition map[int64]*lagSample
	polls      int64
}

func (w *watcher) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byProduct) + len(w.byPosition)
}

func (w *watcher) addProduct(s *lagSample) {
	w.mu.Lock()
	w.byProduct[s.productID] = append(w.byProduct[s.productID], s)
	w.mu.Unlock()
}

func (w *watcher) addPosition(pos int64, s *lagSample) {
	w.mu.Lock()
	w.byPosition[pos] = s
	w.mu.Unlock()
}

func (w *watcher) productKeys() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]int64, 0, len(w.byProduct))
	for id := range w.byProduct {
		ids = append(ids, id)
	}
	return ids
}

func (w *watcher) positionKeys() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	ps := make([]int64, 0, len(w.byPosition))
	for p := range w.byPosition {
		ps = append(ps, p)
	}
	return ps
}

// watchProducts stamps seenRow once products.version reaches a sample's version.
func (w *watcher) watchProducts(ctx context.Context, conn *pgx.Conn, pause time.Duration) error {
	type row struct{ id, version int64 }
	for ctx.Err() == nil {
		ids := w.productKeys()
		if len(ids) > 0 {
			rows, err := conn.Query(ctx, `SELECT id, version FROM products WHERE id = ANY($1)`, ids)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				return x, r.Scan(&x.id, &x.version)
			})
			now := time.Now()
			if err != nil {
				return err
			}
			w.mu.Lock()
			w.polls++
			for _, x := range got {
				q := w.byProduct[x.id]
				i := 0
				for i < len(q) && q[i].version <= x.version {
					q[i].seenRow = now
					i++
				}
				if i == len(q) {
					delete(w.byProduct, x.id)
				} else {
					w.byProduct[x.id] = q[i:]
				}
			}
			w.mu.Unlock()
		}
		sleep(ctx, pause)
	}
	return nil
}

// watchEvents stamps seenEvent once the event's row is visible to another connection.
func (w *watcher) watchEvents(ctx context.Context, conn *pgx.Conn, pause time.Duration) error {
	for ctx.Err() == nil {
		ps := w.positionKeys()
		if len(ps) > 0 {
			rows, err := conn.Query(ctx, `SELECT "offset" FROM events WHERE "offset" = ANY($1)`, ps)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			now := time.Now()
			if err != nil {
				return err
			}
			w.mu.Lock()
			w.polls++
			for _, p := range got {
				if s, ok := w.byPosition[p]; ok {
					s.seenEvent = now
					delete(w.byPosition, p)
				}
			}
			w.mu.Unlock()
		}
		sleep(ctx, pause)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// lagProduct is a product's state as its (only) writer knows it.
type lagProduct struct {
	id, version, stock int64
}

// lagAppend appends the next event of p and registers it with both watchers.
func lagAppend(ctx context.Context, store *eventstore.Store, p *lagProduct, r *rand.Rand, updateEvery int, sched, windowStart time.Time,
	rowW, evW *watcher,
) (*lagSample, error) {
	var ev eventstore.NewEvent
	if updateEvery > 0 && (p.version+1)%int64(updateEvery) == 0 {
		ev = productUpdated(p.id, r)
	} else {
		var delta int64
		delta, p.stock = nextStock(p.stock, r)
		ev = stockAdjusted(p.id, delta, p.stock)
	}
	s := &lagSample{productID: p.id, version: p.version + 1, scheduled: sched}
	// Registered before the append, so that a very fast projection cannot be missed.
	rowW.addProduct(s)
	s.called = time.Now()
	s.inWindow = !s.called.Before(windowStart)
	res, err := store.Append(ctx, requestMetadata(), eventstore.StreamAppend{StreamID: catalog.ProductStreamID(p.id),
		StreamType: catalog.ProductStreamType, ExpectedVersion: p.version, Events: []eventstore.NewEvent{ev}})
	committed := time.Now()
	if err != nil {
		return nil, err
	}
	rowW.mu.Lock()
	s.committed = committed
	rowW.mu.Unlock()
	p.version++
	evW.addPosition(res.LastPosition, s)
	return s, nil
}
