package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// readChunk is how many events the baseline reads per query: the chunk size Rebuild reads with.
const readChunk = 2000

func benchRebuild(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	res := result{target: ">= 30,000 events/s"}
	per := max(1, cfg.rebuildPerProduct)
	products := max(1, cfg.rebuildEvents/per)
	total := products * per
	fmt.Fprintf(out, "== rebuild: projections.Rebuild(products) over %s events (%s products x %d events: ProductCreated, then\n",
		num(total), num(products), per)
	fmt.Fprintf(out, "   ProductStockAdjusted and every 3rd ProductUpdated), interleaved across products as a live log would be;\n")
	fmt.Fprintf(out, "   baseline: a plain sequential read of the same log with eventstore.Scan (one query, every event decoded, nothing\n")
	fmt.Fprintf(out, "   done with it); %d rebuild(s), each between two reads; a rebuild is stopped after %s (-rebuild-timeout)\n",
		cfg.rebuildRounds, cfg.rebuildTimeout)

	db, err := env.newDB(ctx, int32(cfg.rebuildLoaders+4), nil)
	if err != nil {
		return res, err
	}
	defer db.Close()
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return res, err
	}

	t0 := time.Now()
	if err := generateLog(ctx, env, store, 1, products, per, cfg.rebuildBatch, cfg.rebuildLoaders); err != nil {
		return res, fmt.Errorf("generating the log: %w", err)
	}
	genTook := time.Since(t0)
	t1 := time.Now()
	if _, err := db.Pool.Exec(ctx, `VACUUM (ANALYZE) events`); err != nil {
		return res, fmt.Errorf("vacuuming events: %w", err)
	}
	var size string
	_ = db.Pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('events'))`).Scan(&size)
	fmt.Fprintf(out, "   log generated in %s (%s events/s through Store.Append, %s per call, %d appenders); VACUUM ANALYZE %s; events table %s\n",
		genTook.Round(time.Millisecond), num(float64(total)/genTook.Seconds()), num(cfg.rebuildBatch), cfg.rebuildLoaders,
		time.Since(t1).Round(time.Millisecond), size)

	var (
		reads, rebuilds []float64
		mid             eventstore.Cursor
	)
	read := func(i int) error {
		n, d, m, err := readLog(ctx, db.Pool, int64(total)/2)
		if err != nil {
			return fmt.Errorf("reading the log: %w", err)
		}
		if n != int64(total) {
			return fmt.Errorf("read %d events, want %d", n, total)
		}
		mid = m
		rate := float64(n) / d.Seconds()
		reads = append(reads, rate)
		fmt.Fprintf(out, "   read %d     %s events in %s: %s events/s\n", i, num(n), d.Round(time.Millisecond), num(rate))
		return nil
	}
	if err := read(1); err != nil {
		return res, err
	}
	// Rebuild reads in chunks of 2,000 (ScanLimit): time one chunk from the middle of the log.
	chunk, err := timeChunk(ctx, db.Pool, mid)
	if err != nil {
		return res, err
	}
	whole := time.Duration(float64(chunk) * float64(total) / readChunk)
	fmt.Fprintf(out, "   one ScanLimit chunk of %s events from the middle of the log: %s (median of 3); the whole log in such chunks: ~%s\n",
		num(readChunk), ms(chunk), whole.Round(100*time.Millisecond))
	if single := time.Duration(float64(total) / reads[0] * float64(time.Second)); whole > 3*single {
		fmt.Fprintf(out, "   NOTE: chunked reading costs %.0fx one Scan: each chunk query reads far more than its chunk (see the plan of\n", float64(whole)/float64(single))
		fmt.Fprintf(out, "   eventstore's ScanLimit query: it should be an index scan on events_pkey)\n")
		res.note = fmt.Sprintf("a ScanLimit chunk costs %s: chunked reads %.0fx one Scan", ms(chunk), float64(whole)/float64(single))
	}
	for round := range cfg.rebuildRounds {
		stop := func() {}
		if round == 0 {
			stop = env.profile("rebuild")
		}
		cpuA := readCPU()
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, cfg.rebuildTimeout)
		st, err := projections.Rebuild(rctx, db.Pool, projections.Products{}, env.log)
		cancel()
		wall := time.Since(start)
		cpuB := readCPU()
		stop()
		if err != nil {
			if ctx.Err() != nil {
				return res, errInterrupted
			}
			if rctx.Err() == nil {
				return res, fmt.Errorf("rebuild: %w", err)
			}
			// Stopped: report the rate it had reached.
			rate := float64(st.Events) / wall.Seconds()
			fmt.Fprintf(out, "   rebuild %d  STOPPED after %s having applied %s of %s events: %s events/s; CPU: %s\n", round+1,
				wall.Round(time.Millisecond), num(st.Events), num(total), num(rate), cpuUse(cpuA, cpuB))
			rb, rd := rate, median(reads)
			res.figure = "<= " + num(rb) + " events/s (stopped)"
			res.baseline = num(rd) + " events/s (plain read)"
			res.ratio = ratioStr(rb / rd)
			fmt.Fprintf(out, "   rebuild did not finish in %s: at most %s events/s, plain read %s events/s: ratio %.2f;\n",
				cfg.rebuildTimeout, num(rb), num(rd), rb/rd)
			fmt.Fprintf(out, "            target >= 30,000 events/s: %s\n", metStr(false))
			return res, nil
		}
		rebuilds = append(rebuilds, st.EventsPerSecond())
		if res.note == "" {
			res.note = busyNote(cpuA, cpuB)
		}
		fmt.Fprintf(out, "   rebuild %d  %s events in %s: %s events/s (RebuildStats; wall %s); CPU: %s\n", round+1, num(st.Events),
			st.Duration.Round(time.Millisecond), num(st.EventsPerSecond()), wall.Round(time.Millisecond), cpuUse(cpuA, cpuB))
		if err := checkProducts(ctx, db.Pool, products, total); err != nil {
			return res, err
		}
		if err := read(round + 2); err != nil {
			return res, err
		}
	}
	fmt.Fprintf(out, "   check: products has %s rows whose versions add up to %s, one per event: the rebuild is complete\n", num(products), num(total))
	rb, rd := median(rebuilds), median(reads)
	res.figure = num(rb) + " events/s"
	res.baseline = num(rd) + " events/s (plain read)"
	res.ratio = ratioStr(rb / rd)
	res.met = rb >= 30000
	if res.met {
		res.note = ""
	}
	fmt.Fprintf(out, "   median   rebuild %s events/s, plain read %s events/s: ratio %.2f; target >= 30,000 events/s: %s\n",
		num(rb), num(rd), rb/rd, metStr(res.met))
	return res, nil
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
