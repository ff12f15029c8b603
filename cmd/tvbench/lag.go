package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
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

func benchLag(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	res := result{target: "p99 < 100 ms"}
	fmt.Fprintf(out, "== lag: commit -> visible in the products read table, live projections.Engine (PollInterval 10ms, as serve)\n")
	fmt.Fprintf(out, "   %s appends/s paced by a 1 ms ticker (open loop) over %d writers and %s products; %s warm-up, %s measured;\n",
		num(cfg.lagRate), cfg.lagWriters, num(cfg.lagProducts), cfg.lagWarmup, cfg.lagDuration)
	if cfg.lagUpdates > 0 {
		fmt.Fprintf(out, "   each append is one event appended directly with Store.Append (every %dth of a product a ProductUpdated, the rest ProductStockAdjusted);\n", cfg.lagUpdates)
	} else {
		fmt.Fprintf(out, "   each append is one ProductStockAdjusted event appended directly with Store.Append;\n")
	}
	which := "every projector (categories, products) as serve does"
	if cfg.lagOnly {
		which = "only the products projector (-lag-products-only)"
	}
	if cfg.lagBatch > 0 {
		which += fmt.Sprintf(", BatchSize %d", cfg.lagBatch)
	}
	fmt.Fprintf(out, "   engine runs %s%s\n", which,
		map[bool]string{true: ", plus the Redis product cards listener", false: ""}[cfg.lagCards])
	fmt.Fprintf(out, "   method: the clock starts when Append returns (commit acknowledged). Two watchers, each on its own connection,\n")
	fmt.Fprintf(out, "   poll every %s: one reads products.version for the products with pending events (visible = version reached),\n", cfg.lagPoll)
	fmt.Fprintf(out, "   the other reads the events rows by offset (the baseline: plain visibility of the commit). A sample is stamped when\n")
	fmt.Fprintf(out, "   the poll that first sees it returns, so both figures include the same <= 1 poll cycle of resolution.\n")

	db, err := env.newDB(ctx, int32(cfg.lagWriters+16), nil)
	if err != nil {
		return res, err
	}
	defer db.Close()
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return res, err
	}

	// The products, created before the engine starts.
	r := newRand()
	products := make([]*lagProduct, cfg.lagProducts)
	var creates []eventstore.StreamAppend
	for i := range products {
		id := int64(i + 1)
		pc, ev := productCreated(id, r)
		products[i] = &lagProduct{id: id, version: 1, stock: pc.Stock}
		creates = append(creates, eventstore.StreamAppend{StreamID: catalog.ProductStreamID(id), StreamType: catalog.ProductStreamType,
			Events: []eventstore.NewEvent{ev}})
		if len(creates) == 500 || i == len(products)-1 {
			if _, err := store.Append(ctx, requestMetadata(), creates...); err != nil {
				return res, fmt.Errorf("creating products: %w", err)
			}
			creates = creates[:0]
		}
	}

	// An optional history: the log of a store that has been running for a while.
	historyProducts := cfg.lagHistory / 20
	if historyProducts > 0 {
		t0 := time.Now()
		if err := generateLog(ctx, env, store, int64(len(products))+1, historyProducts, 20, 5000, 3); err != nil {
			return res, fmt.Errorf("appending the history: %w", err)
		}
		if _, err := db.Pool.Exec(ctx, `VACUUM (ANALYZE) events`); err != nil {
			return res, err
		}
		fmt.Fprintf(out, "   history: %s earlier events (%s products x 20) appended in %s before the engine started\n",
			num(historyProducts*20), num(historyProducts), time.Since(t0).Round(time.Millisecond))
	}

	// Background: the engine (and the cards view), stopped in order on the way out.
	bgCtx, stopBg := context.WithCancel(ctx)
	var bg sync.WaitGroup
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	projectors := projections.All()
	if cfg.lagOnly {
		projectors = []projections.Projector{projections.Products{}}
	}
	quietAtExit := newMutableHandler(env.log.Handler())
	stopMuting := context.AfterFunc(ctx, quietAtExit.mute) // an interrupt is not a warning
	defer stopMuting()
	engine, err := projections.NewEngine(projections.EngineConfig{DB: sqlDB, Projectors: projectors, Logger: slog.New(quietAtExit),
		PollInterval: 10 * time.Millisecond, BatchSize: cfg.lagBatch})
	if err != nil {
		stopBg()
		return res, err
	}
	cleanRedis := func() {}
	defer func() {
		quietAtExit.mute()
		_ = engine.Close()
		stopBg()
		bg.Wait()
		_ = sqlDB.Close()
		cleanRedis()
	}()
	engineErr := make(chan error, 1)
	bg.Add(1)
	go func() {
		defer bg.Done()
		engineErr <- engine.Run(bgCtx)
	}()
	select {
	case <-engine.Running():
	case err := <-engineErr:
		return res, fmt.Errorf("projection engine: %w", err)
	case <-ctx.Done():
		return res, errInterrupted
	}
	if cfg.lagCards {
		rdb, prefix, clean, err := env.newRedis(ctx)
		if err != nil {
			return res, err
		}
		cleanRedis = clean
		cards, err := projections.NewProductCards(projections.ProductCardsConfig{Pool: db.Pool, Redis: rdb, Prefix: prefix,
			Logger: slog.New(quietAtExit)})
		if err != nil {
			return res, err
		}
		bg.Add(1)
		go func() {
			defer bg.Done()
			_ = cards.Run(bgCtx)
		}()
	}
	// Wait until the products (and the history) are projected.
	catchUp := time.Now()
	head, err := store.Head(ctx)
	if err != nil {
		return res, err
	}
	if ok, err := projections.NewCheckpoints(db.Pool).WaitFor(ctx, store, projections.ProductsProjector, head, 10*time.Minute); err != nil {
		return res, fmt.Errorf("waiting for the products projector to catch up: %w", err)
	} else if !ok {
		return res, errors.New("the products projector did not catch up with the log within 10 minutes")
	}
	if historyProducts > 0 {
		fmt.Fprintf(out, "   the engine caught up with the history in %s\n", time.Since(catchUp).Round(time.Millisecond))
	}

	// Watchers, each on a connection of its own.
	rowW := &watcher{byProduct: map[int64][]*lagSample{}}
	evW := &watcher{byPosition: map[int64]*lagSample{}}
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchWG sync.WaitGroup
	defer func() {
		stopWatch()
		watchWG.Wait()
	}()
	watchErrs := make(chan error, 3)
	for _, w := range []struct {
		run func(context.Context, *pgx.Conn, time.Duration) error
	}{{rowW.watchProducts}, {evW.watchEvents}} {
		conn, err := db.connect(ctx)
		if err != nil {
			return res, err
		}
		watchWG.Add(1)
		go func() {
			defer watchWG.Done()
			defer conn.Close(context.Background())
			if err := w.run(watchCtx, conn, cfg.lagPoll); err != nil && watchCtx.Err() == nil {
				watchErrs <- err
			}
		}()
	}

	// The cluster-wide xmin: other databases' transactions that may hold delivery back.
	xm := &xminMonitor{}
	{
		conn, err := db.connect(ctx)
		if err != nil {
			return res, err
		}
		watchWG.Add(1)
		go func() {
			defer watchWG.Done()
			defer conn.Close(context.Background())
			if err := xm.run(watchCtx, conn, 10*time.Millisecond); err != nil && watchCtx.Err() == nil {
				watchErrs <- fmt.Errorf("xmin monitor: %w", err)
			}
		}()
	}

	// Writers: writer w owns products w, w+W, ... so versions are known without reading.
	W := cfg.lagWriters
	jobs := make([]chan time.Time, W)
	for i := range jobs {
		jobs[i] = make(chan time.Time, 4096)
	}
	total := int(float64(cfg.lagRate) * (cfg.lagWarmup + cfg.lagDuration).Seconds())
	start := time.Now()
	windowStart := start.Add(cfg.lagWarmup)
	var (
		wmu      sync.Mutex
		samples  []*lagSample
		writeErr error
		wwg      sync.WaitGroup
	)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for w := range W {
		var mine []*lagProduct
		for i := w; i < len(products); i += W {
			mine = append(mine, products[i])
		}
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			r := newRand()
			var local []*lagSample
			next := 0
			for sched := range jobs[w] {
				if loadCtx.Err() != nil {
					continue // drain
				}
				p := mine[next%len(mine)]
				next++
				s, err := lagAppend(loadCtx, store, p, r, cfg.lagUpdates, sched, windowStart, rowW, evW)
				if err != nil {
					wmu.Lock()
					if writeErr == nil {
						writeErr = err
					}
					wmu.Unlock()
					stopLoad()
					continue
				}
				local = append(local, s)
			}
			wmu.Lock()
			samples = append(samples, local...)
			wmu.Unlock()
		}()
	}
	// The pacer: at each tick, hand out every event due by now (so a late tick catches up).
	env.progress("lag: %s warm-up then %s at %s appends/s", cfg.lagWarmup, cfg.lagDuration, num(cfg.lagRate))
	stopProf := func() {}
	profiling := false
	var cpuA, cpuB cpuSample
	ticker := time.NewTicker(time.Millisecond)
	interval := time.Second / time.Duration(cfg.lagRate)
	issued := 0
pace:
	for issued < total {
		select {
		case <-loadCtx.Done():
			break pace
		case now := <-ticker.C:
			if !profiling && now.After(windowStart) {
				stopProf, profiling = env.profile("lag"), true
				cpuA = readCPU()
				xm.setActive(true)
			}
			due := min(total, int(now.Sub(start)/interval))
			for ; issued < due; issued++ {
				jobs[issued%W] <- start.Add(time.Duration(issued) * interval)
			}
		}
	}
	ticker.Stop()
	for _, c := range jobs {
		close(c)
	}
	wwg.Wait()
	xm.setActive(false)
	cpuB = readCPU()
	loadEnd := time.Now()
	stopProf()
	if writeErr != nil {
		return res, fmt.Errorf("appending: %w", writeErr)
	}
	if err := ctxErr(ctx); err != nil {
		return res, err
	}
	// Let the last events become visible (bounded).
	drainDeadline := time.Now().Add(10 * time.Second)
	for (rowW.pending() > 0 || evW.pending() > 0) && time.Now().Before(drainDeadline) && ctx.Err() == nil {
		select {
		case err := <-watchErrs:
			return res, fmt.Errorf("watcher: %w", err)
		case err := <-engineErr:
			return res, fmt.Errorf("projection engine stopped: %w", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	stopWatch()
	watchWG.Wait()
	select {
	case err := <-watchErrs:
		return res, fmt.Errorf("watcher: %w", err)
	default:
	}

	steps := map[time.Time]int{}
	perSecond := map[int][]time.Duration{}
	var (
		rowLat, evLat, callLat, schedLat []time.Duration
		unseenRow, unseenEv              int
		first, last                      time.Time
	)
	for _, s := range samples {
		if !s.inWindow {
			continue
		}
		if first.IsZero() || s.committed.Before(first) {
			first = s.committed
		}
		if s.committed.After(last) {
			last = s.committed
		}
		callLat = append(callLat, s.committed.Sub(s.called))
		schedLat = append(schedLat, s.called.Sub(s.scheduled))
		if s.seenRow.IsZero() {
			unseenRow++
		} else {
			rowLat = append(rowLat, max(0, s.seenRow.Sub(s.committed)))
			steps[s.seenRow]++
			sec := int(s.committed.Sub(windowStart) / time.Second)
			perSecond[sec] = append(perSecond[sec], max(0, s.seenRow.Sub(s.committed)))
		}
		if s.seenEvent.IsZero() {
			unseenEv++
		} else {
			evLat = append(evLat, max(0, s.seenEvent.Sub(s.committed)))
		}
	}
	row, ev, call, sched := summarize(rowLat), summarize(evLat), summarize(callLat), summarize(schedLat)
	achieved := 0.0
	if last.After(first) {
		achieved = float64(len(callLat)-1) / last.Sub(first).Seconds()
	}
	fmt.Fprintf(out, "   appended %s events in the window (%s/s achieved; %s in all, load ran %s); Append call p50 %s, p99 %s;\n",
		num(len(callLat)), num(achieved), num(len(samples)), loadEnd.Sub(start).Round(time.Millisecond), ms(call.p50), ms(call.p99))
	fmt.Fprintf(out, "   start delay behind the pacer's schedule p50 %s, p99 %s; polls: products %s, events %s\n",
		ms(sched.p50), ms(sched.p99), num(rowW.polls), num(evW.polls))
	fmt.Fprintf(out, "   %-38s p50 %9s  p90 %9s  p99 %9s  max %9s  count %s\n", "products row visible (projection):",
		ms(row.p50), ms(row.p90), ms(row.p99), ms(row.max), num(row.n))
	fmt.Fprintf(out, "   %-38s p50 %9s  p90 %9s  p99 %9s  max %9s  count %s\n", "events row visible (baseline):",
		ms(ev.p50), ms(ev.p90), ms(ev.p99), ms(ev.max), num(ev.n))
	biggest := 0
	for _, n := range steps {
		biggest = max(biggest, n)
	}
	fmt.Fprintf(out, "   products rows became visible in %s steps (polls that saw something new): %.1f events per step on average,\n",
		num(len(steps)), float64(row.n)/float64(max(1, len(steps))))
	fmt.Fprintf(out, "   %s at most (a big step is a big projector batch committing at once)\n", num(biggest))
	var slow []string
	for sec := 0; sec <= int(cfg.lagDuration/time.Second); sec++ {
		if l := summarize(perSecond[sec]); l.n > 0 && l.p99 >= 100*time.Millisecond {
			slow = append(slow, fmt.Sprintf("%ds:%s", sec, strings.ReplaceAll(ms(l.max), " ", "")))
		}
	}
	fmt.Fprintf(out, "   seconds of the window whose events had p99 >= 100 ms: %d of %d", len(slow), len(perSecond))
	if len(slow) > 0 {
		fmt.Fprintf(out, " (second:max %s)", strings.Join(slow, " "))
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "   CPU while measuring: %s\n", cpuUse(cpuA, cpuB))
	xmText, disturbed := xm.report()
	fmt.Fprintf(out, "   other databases' transactions holding an xid (they hold back every projector on the server): %s\n", xmText)
	if unseenRow > 0 || unseenEv > 0 {
		fmt.Fprintf(out, "   NOT SEEN within 10 s after the load: %d products rows, %d events rows (not in the percentiles)\n", unseenRow, unseenEv)
	}
	if row.n == 0 {
		return res, errors.New("no event became visible in the products table")
	}
	res.figure = "p99 " + ms(row.p99) + " (p50 " + ms(row.p50) + ")"
	res.baseline = "p99 " + ms(ev.p99) + " (events row)"
	ratio := float64(row.p99) / float64(max(ev.p99, time.Microsecond))
	res.ratio = ratioStr(ratio)
	res.met = row.p99 < 100*time.Millisecond && unseenRow == 0
	if !res.met {
		switch {
		case disturbed:
			res.note = "other databases' transactions held xmin back meanwhile; rerun on a quiet server"
		default:
			res.note = busyNote(cpuA, cpuB)
		}
	}
	fmt.Fprintf(out, "   the projection adds p50 %s, p99 %s over plain visibility; p99 ratio %.1f; target p99 < 100 ms: %s\n",
		ms(row.p50-ev.p50), ms(row.p99-ev.p99), ratio, metStr(res.met))
	return res, nil
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
