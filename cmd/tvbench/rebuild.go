package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	nethttp "net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/projections"
)

// readChunk is how many events the baseline reads per query: the chunk size Rebuild reads with.
const readChunk = 2000

// rebuildConfig holds the rebuild benchmark's flags.
type rebuildConfig struct {
	events     int
	perProduct int
	batch      int
	loaders    int
	rounds     int
	timeout    time.Duration
}

func rebuildFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.rebuild.events, "rebuild-events", 1_000_000, "rebuild: events in the log")
	fs.IntVar(&c.rebuild.perProduct, "rebuild-per-product", 20, "rebuild: events per product (products = events / this)")
	fs.IntVar(&c.rebuild.batch, "rebuild-batch", 5000, "rebuild: events per Append while generating the log")
	fs.IntVar(&c.rebuild.loaders, "rebuild-loaders", 3, "rebuild: concurrent appenders while generating the log")
	fs.IntVar(&c.rebuild.rounds, "rebuild-rounds", 1, "rebuild: rebuilds to time (each between two plain reads)")
	fs.DurationVar(&c.rebuild.timeout, "rebuild-timeout", 150*time.Second, "rebuild: stop a rebuild after this long and report the rate it reached")
}

func (c rebuildConfig) validate() error {
	if err := positive(map[string]int{"rebuild-events": c.events, "rebuild-per-product": c.perProduct,
		"rebuild-batch": c.batch, "rebuild-loaders": c.loaders, "rebuild-rounds": c.rounds}); err != nil {
		return err
	}
	return positive(map[string]time.Duration{"rebuild-timeout": c.timeout})
}

const rebuildTarget = 100_000 // events/s

// rebuildRun is the state of one rebuild benchmark.
type rebuildRun struct {
	env             *env
	cfg             rebuildConfig
	out             io.Writer
	db              *scratchDB
	products, total int
	reads, rebuilds []float64
	mid             eventstore.Cursor
	note            string
	app             *appUnderTest // the application serving while the rebuilds run
}

func benchRebuild(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.rebuild
	r := &rebuildRun{env: env, cfg: c, out: out, products: max(1, c.events/c.perProduct)}
	r.total = r.products * c.perProduct
	fmt.Fprintf(out, "== rebuild: projections.Rebuild(products) over %s events (%s products x %d events: ProductCreated, then\n",
		num(r.total), num(r.products), c.perProduct)
	fmt.Fprintf(out, "   ProductStockAdjusted and every 3rd ProductUpdated), interleaved across products as a live log would be;\n")
	fmt.Fprintf(out, "   baseline: a plain sequential read of the same log with eventstore.Scan (one query, every event decoded, nothing\n")
	fmt.Fprintf(out, "   done with it); %d rebuild(s), each between two reads; a rebuild is stopped after %s (-rebuild-timeout);\n",
		c.rounds, c.timeout)
	fmt.Fprintf(out, "   the application serves meanwhile (as serve builds it: the API on 127.0.0.1, every projector live, all at the\n")
	fmt.Fprintf(out, "   head of the log), and a client reads GET /api/v1/products/{id} every %s throughout each rebuild\n", rebuildProbeEvery)
	db, err := env.newDB(ctx, 48, nil)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	r.db = db
	if err := r.generate(ctx); err != nil {
		return result{}, err
	}
	if err := r.read(ctx, 1); err != nil {
		return result{}, err
	}
	if err := r.chunk(ctx); err != nil {
		return result{}, err
	}
	// Every projector starts at the head of the log (a rebuild moves its checkpoint there): the
	// live engine would take minutes to project a million events first.
	t0 := time.Now()
	if _, err := projections.RebuildAll(ctx, db.Pool, app.Projectors(), env.quiet); err != nil {
		return result{}, err
	}
	if r.app, err = env.startApp(ctx, db, nil); err != nil {
		return result{}, err
	}
	defer r.app.Close()
	if _, err := waitAllProjected(ctx, r.app, projectorNames(), 5*time.Minute); err != nil {
		return result{}, err
	}
	fmt.Fprintf(out, "   application started, every projector at the head of the log (rebuilt first, in %s)\n", time.Since(t0).Round(time.Millisecond))
	for round := range c.rounds {
		stopped, err := r.rebuild(ctx, round)
		if err != nil {
			return result{}, err
		}
		if stopped {
			break
		}
		if err := r.read(ctx, round+2); err != nil {
			return result{}, err
		}
	}
	return r.result(), nil
}

func (r *rebuildRun) generate(ctx context.Context) error {
	store, err := eventstore.New(eventstore.Config{Pool: r.db.Pool})
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := generateLog(ctx, r.env, store, 1, r.products, r.cfg.perProduct, r.cfg.batch, r.cfg.loaders); err != nil {
		return fmt.Errorf("generating the log: %w", err)
	}
	genTook := time.Since(t0)
	t1 := time.Now()
	if _, err := r.db.Pool.Exec(ctx, `VACUUM (ANALYZE) events`); err != nil {
		return fmt.Errorf("vacuuming events: %w", err)
	}
	var size string
	_ = r.db.Pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('events'))`).Scan(&size)
	fmt.Fprintf(r.out, "   log generated in %s (%s events/s through Store.Append, %s per call, %d appenders); VACUUM ANALYZE %s; events table %s\n",
		genTook.Round(time.Millisecond), num(float64(r.total)/genTook.Seconds()), num(r.cfg.batch), r.cfg.loaders,
		time.Since(t1).Round(time.Millisecond), size)
	return nil
}

// read times the baseline: the whole log in one Scan.
func (r *rebuildRun) read(ctx context.Context, i int) error {
	n, d, m, err := readLog(ctx, r.db.Pool, int64(r.total)/2)
	if err != nil {
		return fmt.Errorf("reading the log: %w", err)
	}
	if n != int64(r.total) {
		return fmt.Errorf("read %d events, want %d", n, r.total)
	}
	r.mid = m
	rate := float64(n) / d.Seconds()
	r.reads = append(r.reads, rate)
	fmt.Fprintf(r.out, "   read %d     %s events in %s: %s events/s\n", i, num(n), d.Round(time.Millisecond), num(rate))
	return nil
}

// chunk times one ScanLimit chunk from the middle of the log (Rebuild reads in such chunks).
func (r *rebuildRun) chunk(ctx context.Context) error {
	chunk, err := timeChunk(ctx, r.db.Pool, r.mid)
	if err != nil {
		return err
	}
	whole := time.Duration(float64(chunk) * float64(r.total) / readChunk)
	fmt.Fprintf(r.out, "   one ScanLimit chunk of %s events from the middle of the log: %s (median of 3); the whole log in such chunks: ~%s\n",
		num(readChunk), ms(chunk), whole.Round(100*time.Millisecond))
	if single := time.Duration(float64(r.total) / r.reads[0] * float64(time.Second)); whole > 3*single {
		fmt.Fprintf(r.out, "   NOTE: chunked reading costs %.0fx one Scan: each chunk query reads far more than its chunk\n", float64(whole)/float64(single))
		r.note = fmt.Sprintf("a ScanLimit chunk costs %s: chunked reads %.0fx one Scan", ms(chunk), float64(whole)/float64(single))
	}
	return nil
}

// rebuild times one rebuild; stopped is true when -rebuild-timeout ended it.
func (r *rebuildRun) rebuild(ctx context.Context, round int) (stopped bool, err error) {
	stop := func() {}
	if round == 0 {
		stop = r.env.profile("rebuild")
	}
	probe := startReadProbe(ctx, r.app.URL, r.products)
	cpuA := readCPU()
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	events, secs, err := rebuildProducts(rctx, r.db.Pool, r.env.log)
	cancel()
	wall := time.Since(start)
	cpuB := readCPU()
	stop()
	served := probe.stop()
	if err == nil && served.failed > 0 {
		return false, fmt.Errorf("during rebuild %d the API failed %d of %d reads (first: %w)", round+1, served.failed, served.ok+served.failed, served.first)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return false, errInterrupted
	case err != nil && rctx.Err() == nil:
		return false, fmt.Errorf("rebuild: %w", err)
	case err != nil: // stopped: report the rate it had reached
		rate := float64(events) / wall.Seconds()
		r.rebuilds = append(r.rebuilds, rate)
		r.note = fmt.Sprintf("stopped after %s", r.cfg.timeout)
		fmt.Fprintf(r.out, "   rebuild %d  STOPPED after %s having applied %s of %s events: %s events/s; CPU: %s\n", round+1,
			wall.Round(time.Millisecond), num(events), num(r.total), num(rate), cpuUse(cpuA, cpuB))
		return true, nil
	}
	rate := float64(events) / secs
	r.rebuilds = append(r.rebuilds, rate)
	if r.note == "" {
		r.note = busyNote(cpuA, cpuB)
	}
	fmt.Fprintf(r.out, "   rebuild %d  %s events in %.3fs: %s events/s (RebuildStats; wall %s); CPU: %s\n", round+1, num(events),
		secs, num(rate), wall.Round(time.Millisecond), cpuUse(cpuA, cpuB))
	fmt.Fprintf(r.out, "   served meanwhile: %s reads of GET /api/v1/products/{id}, all 200, slowest %s\n", num(served.ok), ms(served.slowest))
	if err := checkProducts(ctx, r.db.Pool, r.products, r.total); err != nil {
		return false, err
	}
	fmt.Fprintf(r.out, "   check: products has %s rows whose versions add up to %s, one per event: the rebuild is complete\n",
		num(r.products), num(r.total))
	return false, nil
}

func (r *rebuildRun) result() result {
	rb, rd := median(r.rebuilds), median(r.reads)
	x := row{figure: fmt.Sprintf("rebuild products, %s events", num(r.total)), measured: num(rb) + " events/s",
		baseline: num(rd) + " events/s (plain read)", ratio: ratioStr(rb / rd),
		target: ">= " + num(rebuildTarget) + " events/s", met: rb >= rebuildTarget}
	if !x.met {
		x.note = r.note
	}
	verdict(r.out, x)
	return result{rows: []row{x}}
}

// generateLog appends products x per events: round v appends the v-th event of every product, in
// multi-stream Appends of batch events (one event per stream), by loaders goroutines that each own
// a range of products.
func generateLog(ctx context.Context, env *env, store *eventstore.Store, firstID int64, products, per, batch, loaders int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		done     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	total := int64(products * per)
	start := time.Now()
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				n := done.Load()
				env.progress("rebuild: generated %s of %s events (%s/s)", num(n), num(total), num(float64(n)/time.Since(start).Seconds()))
			}
		}
	}()
	defer close(progressDone)
	loaders = max(1, min(loaders, products))
	for l := range loaders {
		lo, hi := products*l/loaders+1, products*(l+1)/loaders // product indexes lo..hi, ids firstID-1+index
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand()
			stock := make([]int64, hi-lo+1)
			for v := 1; v <= per && ctx.Err() == nil; v++ {
				for from := lo; from <= hi && ctx.Err() == nil; from += batch {
					to := min(hi, from+batch-1)
					apps := make([]eventstore.StreamAppend, 0, to-from+1)
					for idx := from; idx <= to; idx++ {
						id := firstID - 1 + int64(idx)
						var ev eventstore.NewEvent
						switch {
						case v == 1:
							var pc catalog.ProductCreated
							pc, ev = productCreated(id, r)
							stock[idx-lo] = pc.Stock
						case v%3 == 0:
							ev = productUpdated(id, r)
						default:
							var delta int64
							delta, stock[idx-lo] = nextStock(stock[idx-lo], r)
							ev = stockAdjusted(id, delta, stock[idx-lo])
						}
						apps = append(apps, eventstore.StreamAppend{StreamID: catalog.ProductStreamID(id),
							StreamType: catalog.ProductStreamType, ExpectedVersion: int64(v - 1), Events: []eventstore.NewEvent{ev}})
					}
					if _, err := store.Append(ctx, requestMetadata(), apps...); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
						return
					}
					done.Add(int64(len(apps)))
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		return firstErr
	}
	return ctxErr(ctx)
}

// readLog reads the whole log with one eventstore.Scan and does nothing with the events; it also
// returns the cursor of the event at position midAt in delivery order.
func readLog(ctx context.Context, pool *pgxpool.Pool, midAt int64) (int64, time.Duration, eventstore.Cursor, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, eventstore.Cursor{}, err
	}
	defer conn.Release()
	start := time.Now()
	var (
		n   int64
		mid eventstore.Cursor
	)
	_, err = eventstore.Scan(ctx, conn, eventstore.Cursor{}, func(e eventstore.Event) error {
		n++
		if n == midAt {
			mid = eventstore.Cursor{TxID: e.TxID, Position: e.Position}
		}
		return nil
	})
	return n, time.Since(start), mid, err
}

// timeChunk times ScanLimit reading one chunk after cursor (median of three).
func timeChunk(ctx context.Context, pool *pgxpool.Pool, after eventstore.Cursor) (time.Duration, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var ts []float64
	for range 3 {
		start := time.Now()
		if _, err := eventstore.ScanLimit(ctx, conn, after, readChunk, func(eventstore.Event) error { return nil }); err != nil {
			return 0, err
		}
		ts = append(ts, float64(time.Since(start)))
	}
	return time.Duration(median(ts)), nil
}

func checkProducts(ctx context.Context, pool *pgxpool.Pool, products, total int) error {
	var n, sum int64
	if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(version), 0) FROM products`).Scan(&n, &sum); err != nil {
		return err
	}
	if n != int64(products) || sum != int64(total) {
		return fmt.Errorf("after the rebuild products has %d rows with versions adding up to %d; want %d and %d", n, sum, products, total)
	}
	return nil
}

// rebuildProbeEvery is how often the rebuild benchmark's client reads a product while a rebuild runs.
const rebuildProbeEvery = 5 * time.Millisecond

// readProbe reads random products from the API until stopped, counting answers.
type readProbe struct {
	cancel context.CancelFunc
	done   chan probeResult
}

type probeResult struct {
	ok, failed int
	slowest    time.Duration
	first      error
}

func startReadProbe(ctx context.Context, base string, products int) *readProbe {
	ctx, cancel := context.WithCancel(ctx)
	p := &readProbe{cancel: cancel, done: make(chan probeResult, 1)}
	go func() {
		var res probeResult
		client := &nethttp.Client{Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		r := newRand()
		t := time.NewTicker(rebuildProbeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				p.done <- res
				return
			case <-t.C:
			}
			t0 := time.Now()
			_, _, err := getOK(ctx, client, fmt.Sprintf("%s/api/v1/products/%d", base, 1+r.IntN(products)), "")
			if ctx.Err() != nil {
				continue
			}
			if err != nil {
				res.failed++
				if res.first == nil {
					res.first = err
				}
				continue
			}
			res.ok++
			res.slowest = max(res.slowest, time.Since(t0))
		}
	}()
	return p
}

// stop ends the probe and returns what it saw.
func (p *readProbe) stop() probeResult {
	p.cancel()
	return <-p.done
}
