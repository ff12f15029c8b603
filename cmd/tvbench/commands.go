package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	nethttp "net/http"
	"strconv"
	"sync"
	"time"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// commandsConfig holds the commands benchmark's flags.
type commandsConfig struct {
	clients       int
	duration      time.Duration
	warmup        time.Duration
	shortProducts int
	shortLen      int
	longProducts  int
	longLen       int
}

func commandsFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.commands.clients, "commands-clients", 16, "commands: concurrent HTTP clients")
	fs.DurationVar(&c.commands.duration, "commands-duration", 30*time.Second, "commands: measured time per side")
	fs.DurationVar(&c.commands.warmup, "commands-warmup", 3*time.Second, "commands: warm-up per side")
	fs.IntVar(&c.commands.shortProducts, "commands-short-products", 2000, "commands: products with short streams (many, so that they stay short)")
	fs.IntVar(&c.commands.shortLen, "commands-short-events", 10, "commands: events in a short stream")
	fs.IntVar(&c.commands.longProducts, "commands-long-products", 32, "commands: products with long streams")
	fs.IntVar(&c.commands.longLen, "commands-long-events", 10_000, "commands: events in a long stream")
}

func (c commandsConfig) validate() error {
	if err := positive(map[string]int{"commands-clients": c.clients, "commands-short-products": c.shortProducts,
		"commands-short-events": c.shortLen, "commands-long-products": c.longProducts, "commands-long-events": c.longLen}); err != nil {
		return err
	}
	if c.longProducts < c.clients || c.shortProducts < c.clients {
		return fmt.Errorf("-commands-*-products must be at least -commands-clients (%d): each client owns products", c.clients)
	}
	return positive(map[string]time.Duration{"commands-duration": c.duration})
}

const commandsTarget = 0.8 // long / short

func benchCommands(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.commands
	fmt.Fprintf(out, "== commands: POST /api/v1/products/{id}/stock {\"delta\":1} through HTTP to the application as serve builds it\n")
	fmt.Fprintf(out, "   (internal/app, served on 127.0.0.1), %d clients on keep-alive connections, each owning its products, %s per side\n",
		c.clients, c.duration)
	fmt.Fprintf(out, "   after %s warm-up: %s products with %s-event streams vs %s products with %s-event streams (appended directly,\n",
		c.warmup, num(c.shortProducts), num(c.shortLen), num(c.longProducts), num(c.longLen))
	fmt.Fprintf(out, "   %s events per Store.Append); baseline: the short streams; the figure: the long ones\n", num(min(1000, c.longLen)))
	var res result
	db, err := env.newDB(ctx, int32(c.clients+16), nil)
	if err != nil {
		return res, err
	}
	defer db.Close()
	shortIDs, longIDs, err := commandStreams(ctx, env, db, c, out)
	if err != nil {
		return res, err
	}
	a, err := env.startApp(ctx, db, catalogProjectors())
	if err != nil {
		return res, err
	}
	defer a.Close()
	if _, err := waitAllProjected(ctx, a, []string{productsProjector}, 10*time.Minute); err != nil {
		return res, err
	}
	var rates [2]float64
	cpuA := readCPU()
	for i, side := range []struct {
		name string
		ids  []int64
	}{{"short", shortIDs}, {"long", longIDs}} {
		lr, err := commandSide(ctx, env, a.URL, c, side.name, side.ids, out)
		if err != nil {
			return res, err
		}
		rates[i] = lr.rate()
	}
	cpuB := readCPU()
	ratio := rates[1] / rates[0]
	x := row{figure: fmt.Sprintf("commands over HTTP, %d clients, %s-event streams", c.clients, num(c.longLen)),
		measured: num(rates[1]) + " commands/s (long)", baseline: num(rates[0]) + fmt.Sprintf(" commands/s (%s-event)", num(c.shortLen)),
		ratio: ratioStr(ratio), target: fmt.Sprintf(">= %.1f", commandsTarget), met: ratio >= commandsTarget}
	if !x.met {
		x.note = busyNote(cpuA, cpuB)
	}
	verdict(out, x)
	res.add(x)
	return res, nil
}

// commandSide warms up, then measures one side.
func commandSide(ctx context.Context, env *env, base string, c commandsConfig, name string, ids []int64, out io.Writer) (loadResult, error) {
	env.progress("commands: %s streams, %s warm-up then %s", name, c.warmup, c.duration)
	if r := postStock(ctx, base, ids, c.clients, c.warmup); r.errors > 0 {
		return r, fmt.Errorf("%s warm-up: %d failed commands, first: %s", name, r.errors, r.firstErr)
	}
	cpuA := readCPU()
	r := postStock(ctx, base, ids, c.clients, c.duration)
	cpuB := readCPU()
	if err := ctxErr(ctx); err != nil {
		return r, err
	}
	if r.errors > 0 {
		return r, fmt.Errorf("%s: %d failed commands, first: %s", name, r.errors, r.firstErr)
	}
	fmt.Fprintf(out, "   %-5s streams: %8s commands/s  p50 %s  p99 %s  (%s commands, ~%.1f per product; CPU: %s)\n", name,
		num(r.rate()), ms(r.lat.p50), ms(r.lat.p99), num(r.requests), float64(r.requests)/float64(len(ids)), cpuUse(cpuA, cpuB))
	return r, nil
}

// commandStreams appends the short and the long product streams; it returns their ids.
func commandStreams(ctx context.Context, env *env, db *scratchDB, c commandsConfig, out io.Writer) ([]int64, []int64, error) {
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return nil, nil, err
	}
	t0 := time.Now()
	if err := generateLog(ctx, env, store, 1, c.shortProducts, c.shortLen, 5000, 3); err != nil {
		return nil, nil, fmt.Errorf("short streams: %w", err)
	}
	shortIDs := make([]int64, c.shortProducts)
	for i := range shortIDs {
		shortIDs[i] = int64(i + 1)
	}
	longIDs := make([]int64, c.longProducts)
	for i := range longIDs {
		longIDs[i] = int64(c.shortProducts + i + 1)
	}
	if err := appendLongStreams(ctx, store, longIDs, c.longLen); err != nil {
		return nil, nil, fmt.Errorf("long streams: %w", err)
	}
	fmt.Fprintf(out, "   streams appended in %s\n", time.Since(t0).Round(time.Millisecond))
	return shortIDs, longIDs, nil
}

// appendLongStreams appends n events to each product (a ProductCreated, then stock changes) in
// Appends of up to 1,000 events of one stream, four streams at a time.
func appendLongStreams(ctx context.Context, store *eventstore.Store, ids []int64, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	sem := make(chan struct{}, 4)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- appendLongStream(ctx, store, id, n)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func appendLongStream(ctx context.Context, store *eventstore.Store, id int64, n int) error {
	r := newRand()
	pc, created := productCreated(id, r)
	stock := pc.Stock
	evs := []eventstore.NewEvent{created}
	for version := int64(0); version < int64(n); {
		for len(evs) < min(1000, n-int(version)) {
			var delta int64
			delta, stock = nextStock(stock, r)
			evs = append(evs, stockAdjusted(id, delta, stock))
		}
		if _, err := store.Append(ctx, requestMetadata(), eventstore.StreamAppend{StreamID: catalog.ProductStreamID(id),
			StreamType: catalog.ProductStreamType, ExpectedVersion: version, Events: evs}); err != nil {
			return err
		}
		version += int64(len(evs))
		evs = evs[:0]
	}
	return nil
}

// loadResult is what a Go HTTP load generator measured.
type loadResult struct {
	requests int64
	errors   int64
	elapsed  time.Duration
	lat      latencies
	firstErr string
}

func (l loadResult) rate() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.requests) / l.elapsed.Seconds()
}

// postStock has clients concurrent clients post {"delta":1} for d: client i to ids i, i+clients, ...
func postStock(ctx context.Context, base string, ids []int64, clients int, d time.Duration) loadResult {
	client := loadClient(clients)
	defer client.CloseIdleConnections()
	ws := make([]loadResult, clients)
	lats := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += clients {
				url := base + "/api/v1/products/" + strconv.FormatInt(ids[i%len(ids)], 10) + "/stock"
				t0 := time.Now()
				if err := postOne(ctx, client, url); err != nil {
					ws[w].errors++
					ws[w].firstErr = firstNonEmpty(ws[w].firstErr, err.Error())
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start)}
	var all []time.Duration
	for w := range ws {
		all = append(all, lats[w]...)
		res.errors += ws[w].errors
		res.firstErr = firstNonEmpty(res.firstErr, ws[w].firstErr)
	}
	res.requests, res.lat = int64(len(all)), summarize(all)
	return res
}

// firstNonEmpty returns a unless it is empty.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// stockDelta is the body of every stock adjustment the commands benchmark posts.
var stockDelta = []byte(`{"delta":1}`)

func postOne(ctx context.Context, client *nethttp.Client, url string) error {
	return postJSON(ctx, client, url, benchAdminToken, stockDelta, nethttp.StatusOK, nil)
}
