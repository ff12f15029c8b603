package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// lagConfig holds the lag benchmark's flags.
type lagConfig struct {
	rate         int
	duration     time.Duration
	warmup       time.Duration
	poll         time.Duration
	writers      int
	products     int
	updateEvery  int
	history      int
	productsOnly bool
}

func lagFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.lag.rate, "lag-rate", 1000, "lag: appends per second")
	fs.DurationVar(&c.lag.duration, "lag-duration", 15*time.Second, "lag: measured time")
	fs.DurationVar(&c.lag.warmup, "lag-warmup", 3*time.Second, "lag: warm-up at the same rate before measuring")
	fs.DurationVar(&c.lag.poll, "lag-poll", time.Millisecond, "lag: pause between visibility polls of each watcher")
	fs.IntVar(&c.lag.writers, "lag-writers", 16, "lag: writers sharing the paced load")
	fs.IntVar(&c.lag.products, "lag-products", 1000, "lag: products the events are spread over")
	fs.IntVar(&c.lag.updateEvery, "lag-update-every", 5, "lag: every Nth event of a product is a ProductUpdated, the rest ProductStockAdjusted (0: none)")
	fs.IntVar(&c.lag.history, "lag-history", 0, "lag: events already in the log (other products, 20 each), projected before measuring")
	fs.BoolVar(&c.lag.productsOnly, "lag-products-only", false, "lag: run only the products projector (serve runs all)")
}

func (c lagConfig) validate() error {
	if err := positive(map[string]int{"lag-rate": c.rate, "lag-writers": c.writers, "lag-products": c.products}); err != nil {
		return err
	}
	if err := positive(map[string]time.Duration{"lag-duration": c.duration, "lag-poll": c.poll}); err != nil {
		return err
	}
	if c.rate > 100_000 {
		return fmt.Errorf("-lag-rate above 100,000/s is not supported, got %d", c.rate)
	}
	if c.writers > c.products {
		return fmt.Errorf("-lag-writers (%d) must not exceed -lag-products (%d): each writer owns products", c.writers, c.products)
	}
	return nil
}

const lagTarget = 20 * time.Millisecond // p99

// lagRun is the state of one lag benchmark.
type lagRun struct {
	env         *env
	cfg         lagConfig
	out         io.Writer
	db          *scratchDB
	app         *appUnderTest
	products    []*lagProduct
	rowW, evW   *watcher
	xm          *xminMonitor
	watchErrs   chan error
	samples     []*lagSample
	cpuA, cpuB  cpuSample
	loadTook    time.Duration
	windowStart time.Time
}

func benchLag(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	r := &lagRun{env: env, cfg: cfg.lag, out: out}
	r.header()
	db, err := env.newDB(ctx, int32(r.cfg.writers+16), nil)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	r.db = db
	if err := r.setup(ctx); err != nil {
		return result{}, err
	}
	defer r.app.Close()
	watchCtx, stopWatch := context.WithCancel(ctx)
	wg, err := r.startWatchers(watchCtx)
	defer func() { stopWatch(); wg.Wait() }()
	if err != nil {
		return result{}, err
	}
	if err := r.load(ctx); err != nil {
		return result{}, err
	}
	if err := r.drain(ctx); err != nil {
		return result{}, err
	}
	stopWatch()
	wg.Wait()
	select {
	case err := <-r.watchErrs:
		return result{}, fmt.Errorf("watcher: %w", err)
	default:
	}
	return r.report()
}

func (r *lagRun) header() {
	c := r.cfg
	fmt.Fprintf(r.out, "== lag: commit -> visible in the products read table; the application runs as serve builds it (internal/app:\n")
	fmt.Fprintf(r.out, "   engine with the default PollInterval (2ms, as serve), Redis product cards, the API listening on 127.0.0.1)%s\n",
		map[bool]string{true: ", products projector only", false: ""}[c.productsOnly])
	fmt.Fprintf(r.out, "   %s appends/s paced by a 1 ms ticker (open loop) over %d writers and %s products; %s warm-up, %s measured;\n",
		num(c.rate), c.writers, num(c.products), c.warmup, c.duration)
	fmt.Fprintf(r.out, "   each append is one event through Store.Append (every %dth of a product a ProductUpdated, else ProductStockAdjusted).\n", c.updateEvery)
	fmt.Fprintf(r.out, "   method: the clock starts when Append returns (commit acknowledged). Two watchers, each on its own connection,\n")
	fmt.Fprintf(r.out, "   poll every %s: one reads products.version for the products with pending events (visible = version reached),\n", c.poll)
	fmt.Fprintf(r.out, "   the other reads the events rows by offset (the baseline: plain visibility of the commit). Both figures include\n")
	fmt.Fprintf(r.out, "   the same <= 1 poll cycle of resolution.\n")
}

// setup creates the products (and the optional history), starts the application and waits until
// it has projected them.
func (r *lagRun) setup(ctx context.Context) error {
	store, err := eventstore.New(eventstore.Config{Pool: r.db.Pool})
	if err != nil {
		return err
	}
	if r.products, err = createLagProducts(ctx, store, r.cfg.products); err != nil {
		return err
	}
	if err := r.history(ctx, store); err != nil {
		return err
	}
	projectors := catalogProjectors()
	if r.cfg.productsOnly {
		projectors = productsOnly()
	}
	if r.app, err = r.env.startApp(ctx, r.db, projectors); err != nil {
		return err
	}
	catchUp := time.Now()
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	if ok, err := r.app.Checkpoints.WaitFor(ctx, store, productsProjector, head, 10*time.Minute); err != nil {
		return fmt.Errorf("waiting for the products projector to catch up: %w", err)
	} else if !ok {
		return errors.New("the products projector did not catch up with the log within 10 minutes")
	}
	if r.cfg.history > 0 {
		fmt.Fprintf(r.out, "   the engine caught up with the history in %s\n", time.Since(catchUp).Round(time.Millisecond))
	}
	return nil
}

func createLagProducts(ctx context.Context, store *eventstore.Store, n int) ([]*lagProduct, error) {
	return createProducts(ctx, store, n, 0)
}

// createProducts appends ProductCreated for products 1..n, 500 streams per Append, each with the
// given stock (0: a random stock of 10 to 99).
func createProducts(ctx context.Context, store *eventstore.Store, n int, stock int64) ([]*lagProduct, error) {
	r := newRand()
	products := make([]*lagProduct, n)
	var creates []eventstore.StreamAppend
	for i := range products {
		id := int64(i + 1)
		pc, ev := productCreated(id, r)
		if stock > 0 {
			pc.Stock = stock
			ev = newEvent(pc)
		}
		products[i] = &lagProduct{id: id, version: 1, stock: pc.Stock}
		creates = append(creates, eventstore.StreamAppend{StreamID: catalog.ProductStreamID(id), StreamType: catalog.ProductStreamType,
			Events: []eventstore.NewEvent{ev}})
		if len(creates) == 500 || i == len(products)-1 {
			if _, err := store.Append(ctx, requestMetadata(), creates...); err != nil {
				return nil, fmt.Errorf("creating products: %w", err)
			}
			creates = creates[:0]
		}
	}
	return products, nil
}

// history appends the log of a store that has been running for a while (-lag-history).
func (r *lagRun) history(ctx context.Context, store *eventstore.Store) error {
	historyProducts := r.cfg.history / 20
	if historyProducts == 0 {
		return nil
	}
	t0 := time.Now()
	if err := generateLog(ctx, r.env, store, int64(len(r.products))+1, historyProducts, 20, 5000, 3); err != nil {
		return fmt.Errorf("appending the history: %w", err)
	}
	if _, err := r.db.Pool.Exec(ctx, `VACUUM (ANALYZE) events`); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "   history: %s earlier events (%s products x 20) appended in %s before the engine started\n",
		num(historyProducts*20), num(historyProducts), time.Since(t0).Round(time.Millisecond))
	return nil
}

// startWatchers starts the two visibility watchers and the xmin monitor, each on a connection of
// its own.
func (r *lagRun) startWatchers(ctx context.Context) (*sync.WaitGroup, error) {
	r.rowW = &watcher{byProduct: map[int64][]*lagSample{}}
	r.evW = &watcher{byPosition: map[int64]*lagSample{}}
	r.xm = &xminMonitor{}
	r.watchErrs = make(chan error, 3)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context, *pgx.Conn) error{
		func(ctx context.Context, c *pgx.Conn) error { return r.rowW.watchProducts(ctx, c, r.cfg.poll) },
		func(ctx context.Context, c *pgx.Conn) error { return r.evW.watchEvents(ctx, c, r.cfg.poll) },
		func(ctx context.Context, c *pgx.Conn) error { return r.xm.run(ctx, c, 10*time.Millisecond) },
	} {
		conn, err := r.db.connect(ctx)
		if err != nil {
			return &wg, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close(context.Background())
			if err := run(ctx, conn); err != nil && ctx.Err() == nil {
				r.watchErrs <- err
			}
		}()
	}
	return &wg, nil
}

// drain lets the last events become visible (10 s at most).
func (r *lagRun) drain(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for (r.rowW.pending() > 0 || r.evW.pending() > 0) && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case err := <-r.watchErrs:
			return fmt.Errorf("watcher: %w", err)
		case err := <-r.app.Failed():
			return fmt.Errorf("the application stopped: %w", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return ctxErr(ctx)
}

// lagFigures are the window's samples, summarised.
type lagFigures struct {
	row, ev, call, sched  latencies
	unseenRow, unseenEv   int
	achieved              float64
	steps                 map[time.Time]int
	perSecond             map[int][]time.Duration
	windowCount, allCount int
}

func (r *lagRun) figures() lagFigures {
	f := lagFigures{steps: map[time.Time]int{}, perSecond: map[int][]time.Duration{}, allCount: len(r.samples)}
	var rowLat, evLat, callLat, schedLat []time.Duration
	var first, last time.Time
	for _, s := range r.samples {
		if !s.inWindow {
			continue
		}
		if first.IsZero() || s.committed.Before(first) {
			first = s.committed
		}
		last = maxTime(last, s.committed)
		callLat = append(callLat, s.committed.Sub(s.called))
		schedLat = append(schedLat, s.called.Sub(s.scheduled))
		if s.seenRow.IsZero() {
			f.unseenRow++
		} else {
			d := max(0, s.seenRow.Sub(s.committed))
			rowLat = append(rowLat, d)
			f.steps[s.seenRow]++
			sec := int(s.committed.Sub(r.windowStart) / time.Second)
			f.perSecond[sec] = append(f.perSecond[sec], d)
		}
		if s.seenEvent.IsZero() {
			f.unseenEv++
		} else {
			evLat = append(evLat, max(0, s.seenEvent.Sub(s.committed)))
		}
	}
	f.windowCount = len(callLat)
	if last.After(first) {
		f.achieved = float64(len(callLat)-1) / last.Sub(first).Seconds()
	}
	f.row, f.ev, f.call, f.sched = summarize(rowLat), summarize(evLat), summarize(callLat), summarize(schedLat)
	return f
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (r *lagRun) report() (result, error) {
	f := r.figures()
	out := r.out
	fmt.Fprintf(out, "   appended %s events in the window (%s/s achieved; %s in all, load ran %s); Append call p50 %s, p99 %s;\n",
		num(f.windowCount), num(f.achieved), num(f.allCount), r.loadTook.Round(time.Millisecond), ms(f.call.p50), ms(f.call.p99))
	fmt.Fprintf(out, "   start delay behind the pacer's schedule p50 %s, p99 %s; polls: products %s, events %s\n",
		ms(f.sched.p50), ms(f.sched.p99), num(r.rowW.polls), num(r.evW.polls))
	for _, l := range []struct {
		name string
		l    latencies
	}{{"products row visible (projection):", f.row}, {"events row visible (baseline):", f.ev}} {
		fmt.Fprintf(out, "   %-38s p50 %9s  p90 %9s  p99 %9s  max %9s  count %s\n", l.name,
			ms(l.l.p50), ms(l.l.p90), ms(l.l.p99), ms(l.l.max), num(l.l.n))
	}
	r.printSteps(f)
	fmt.Fprintf(out, "   CPU while measuring: %s\n", cpuUse(r.cpuA, r.cpuB))
	xmText, disturbed := r.xm.report()
	fmt.Fprintf(out, "   other databases' transactions holding an xid (they hold back every projector on the server): %s\n", xmText)
	if f.unseenRow > 0 || f.unseenEv > 0 {
		fmt.Fprintf(out, "   NOT SEEN within 10 s after the load: %d products rows, %d events rows (not in the percentiles)\n", f.unseenRow, f.unseenEv)
	}
	if f.row.n == 0 {
		return result{}, errors.New("no event became visible in the products table")
	}
	x := row{figure: fmt.Sprintf("lag at %s appends/s, API serving", num(r.cfg.rate)),
		measured: "p99 " + ms(f.row.p99) + " (p50 " + ms(f.row.p50) + ")", baseline: "p99 " + ms(f.ev.p99) + " (events row)",
		ratio:  ratioStr(float64(f.row.p99) / float64(max(f.ev.p99, time.Microsecond))),
		target: "p99 < " + ms(lagTarget), met: f.row.p99 < lagTarget && f.unseenRow == 0}
	if !x.met {
		x.note = busyNote(r.cpuA, r.cpuB)
		if disturbed {
			x.note = "other databases' transactions held xmin back meanwhile; rerun on a quiet server"
		}
	}
	fmt.Fprintf(out, "   the projection adds p50 %s, p99 %s over plain visibility (ratio = projection p99 / baseline p99;\n",
		ms(f.row.p50-f.ev.p50), ms(f.row.p99-f.ev.p99))
	fmt.Fprintf(out, "   the target is on the p99 itself)\n")
	verdict(out, x)
	return result{rows: []row{x}}, nil
}

func (r *lagRun) printSteps(f lagFigures) {
	biggest := 0
	for _, n := range f.steps {
		biggest = max(biggest, n)
	}
	fmt.Fprintf(r.out, "   products rows became visible in %s steps (polls that saw something new): %.1f events per step on average,\n",
		num(len(f.steps)), float64(f.row.n)/float64(max(1, len(f.steps))))
	fmt.Fprintf(r.out, "   %s at most (a big step is a big projector batch committing at once)\n", num(biggest))
	var slow []string
	for sec := 0; sec <= int(r.cfg.duration/time.Second); sec++ {
		if l := summarize(f.perSecond[sec]); l.n > 0 && l.p99 >= lagTarget {
			slow = append(slow, fmt.Sprintf("%ds:%s", sec, strings.ReplaceAll(ms(l.max), " ", "")))
		}
	}
	fmt.Fprintf(r.out, "   seconds of the window whose events had p99 >= %s: %d of %d", ms(lagTarget), len(slow), len(f.perSecond))
	if len(slow) > 0 {
		fmt.Fprintf(r.out, " (second:max %s)", strings.Join(slow, " "))
	}
	fmt.Fprintln(r.out)
}
