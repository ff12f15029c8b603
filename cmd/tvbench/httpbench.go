package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
	api "github.com/techvault/techvault/http"
	"github.com/techvault/techvault/projections"
)

// loadResult is one run of the load generator against one server.
type loadResult struct {
	requests int64
	errors   int64
	elapsed  time.Duration
	lat      latencies
	sources  map[string]int64 // X-Read-Source values
	firstErr string
}

func (l loadResult) rate() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.requests) / l.elapsed.Seconds()
}

// runLoad drives base with conns concurrent clients, each on its own keep-alive connection, for d:
// client i asks for ids[i], ids[i+conns], ... cycling. It records every request's latency.
func runLoad(ctx context.Context, base string, ids []int64, conns int, d time.Duration) loadResult {
	tr := &nethttp.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &nethttp.Client{Transport: tr, Timeout: 10 * time.Second}
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = base + "/api/v1/products/" + strconv.FormatInt(id, 10)
	}
	type worker struct {
		lat      []time.Duration
		errs     int64
		sources  map[string]int64
		firstErr string
	}
	ws := make([]worker, conns)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := worker{lat: make([]time.Duration, 0, 1<<14), sources: map[string]int64{}}
			i := c % len(urls)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req, _ := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, urls[i], nil)
				i = (i + conns) % len(urls)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					w.errs++
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				lat := time.Since(t0)
				if err != nil || resp.StatusCode != nethttp.StatusOK {
					w.errs++
					if w.firstErr == "" {
						w.firstErr = fmt.Sprintf("status %d %v", resp.StatusCode, err)
					}
					continue
				}
				w.lat = append(w.lat, lat)
				w.sources[resp.Header.Get(api.ReadSourceHeader)]++
			}
			ws[c] = w
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start), sources: map[string]int64{}}
	var all []time.Duration
	for _, w := range ws {
		all = append(all, w.lat...)
		res.errors += w.errs
		for k, v := range w.sources {
			res.sources[k] += v
		}
		if res.firstErr == "" {
			res.firstErr = w.firstErr
		}
	}
	res.requests = int64(len(all))
	res.lat = summarize(all)
	return res
}

// serveOn serves h on 127.0.0.1 with serve's timeouts; the returned function stops it.
func serveOn(h nethttp.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &nethttp.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func benchHTTP(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	res := result{target: "ratio >= 0.50"}
	fmt.Fprintf(out, "== http: GET /api/v1/products/{id}, the real API (http.New, real dependencies, product cards in Redis) vs\n")
	fmt.Fprintf(out, "   a bare Gin handler returning the same JSON bytes from a map; both on 127.0.0.1 in this process, driven by\n")
	fmt.Fprintf(out, "   the same load generator: %d concurrent clients on keep-alive connections, ids cycling over %s products,\n",
		cfg.httpConns, num(cfg.httpProducts))
	fmt.Fprintf(out, "   %d rounds x %s per side (order alternating) after %s warm-up per side. The real server's logger is\n",
		cfg.httpRounds, cfg.httpDuration, cfg.httpWarmup)
	fmt.Fprintf(out, "   slog JSON at warn level into io.Discard (no access-log output); engine and cards view run as in serve.\n")

	db, err := env.newDB(ctx, 20, nil) // serve's DB_MAX_CONNS default
	if err != nil {
		return res, err
	}
	defer db.Close()
	rdb, prefix, cleanRedis, err := env.newRedis(ctx)
	if err != nil {
		return res, err
	}
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return res, err
	}
	catalogCmds := commands.NewCatalog(store, store.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"}))

	// Seed through the commands, as the API would.
	md := eventstore.Metadata{ActorID: "tvbench", RequestID: "tvbench-seed"}
	var cats []int64
	for i := range 12 {
		c, err := catalogCmds.CreateCategory(ctx, md, commands.CreateCategory{Name: fmt.Sprintf("%s %d", kinds[i%len(kinds)], i), Description: "Benchmark category"})
		if err != nil {
			return res, fmt.Errorf("seeding categories: %w", err)
		}
		cats = append(cats, c.ID)
	}
	ids := make([]int64, cfg.httpProducts)
	var (
		seedWG  sync.WaitGroup
		seedMu  sync.Mutex
		seedErr error
		lastPos int64
	)
	for w := range 8 {
		seedWG.Add(1)
		go func() {
			defer seedWG.Done()
			r := newRand()
			for i := w; i < len(ids); i += 8 {
				cat := cats[i%len(cats)]
				p, err := catalogCmds.CreateProduct(ctx, md, commands.CreateProduct{Name: productName(int64(i), r),
					Description: phrases[r.IntN(len(phrases))], Price: domain.Money(1999 + r.Int64N(250000)), CategoryID: &cat, Stock: r.Int64N(100)})
				seedMu.Lock()
				if err != nil && seedErr == nil {
					seedErr = err
				}
				ids[i] = p.ID
				lastPos = max(lastPos, p.Position)
				seedMu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	seedWG.Wait()
	if seedErr != nil {
		return res, fmt.Errorf("seeding products: %w", seedErr)
	}

	// The application as serve wires it.
	bgCtx, stopBg := context.WithCancel(ctx)
	var bg sync.WaitGroup
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	quietAtExit := newMutableHandler(env.log.Handler())
	stopMuting := context.AfterFunc(ctx, quietAtExit.mute) // an interrupt is not a warning
	defer stopMuting()
	engine, err := projections.NewEngine(projections.EngineConfig{DB: sqlDB, Projectors: projections.All(),
		Logger: slog.New(quietAtExit), PollInterval: 10 * time.Millisecond})
	if err != nil {
		stopBg()
		return res, err
	}
	cards, err := projections.NewProductCards(projections.ProductCardsConfig{Pool: db.Pool, Redis: rdb, Prefix: prefix,
		Logger: slog.New(quietAtExit)})
	if err != nil {
		stopBg()
		return res, err
	}
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		quietAtExit.mute()
		_ = engine.Close()
		stopBg()
		bg.Wait()
		_ = sqlDB.Close()
		cleanRedis()
	}()
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := engine.Run(bgCtx); err != nil && bgCtx.Err() == nil {
			env.log.Error("projection engine stopped", "err", err)
		}
	}()
	checkpoints := projections.NewCheckpoints(db.Pool)
	if ok, err := checkpoints.WaitFor(ctx, store, projections.ProductsProjector, lastPos, 60*time.Second); err != nil {
		return res, fmt.Errorf("waiting for the products projection: %w", err)
	} else if !ok {
		return res, errors.New("the products projection did not catch up with the seed within 60s")
	}
	// The cards view starts once the table is complete, so its first resync writes every card.
	bg.Add(1)
	go func() {
		defer bg.Done()
		_ = cards.Run(bgCtx)
	}()
	for !cards.Ready() || cards.Syncs() == 0 {
		if ctx.Err() != nil {
			return res, errInterrupted
		}
		time.Sleep(10 * time.Millisecond)
	}

	server, err := api.New(api.Config{
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Pool:        db.Pool,
		Redis:       rdb,
		Store:       store,
		Catalog:     catalogCmds,
		Queries:     projections.NewCatalogQueries(db.Pool),
		Cards:       cards,
		Checkpoints: checkpoints,
		Projectors:  projections.All(),
	})
	if err != nil {
		return res, err
	}
	stops = append(stops, server.Shutdown)
	realURL, stopReal, err := serveOn(server.Handler())
	if err != nil {
		return res, err
	}
	stops = append(stops, stopReal)

	// The bare server answers with the very bytes the real one serves from Redis.
	var extraURL string
	bodies := make(map[int64][]byte, len(ids))
	probe := &nethttp.Client{Timeout: 5 * time.Second}
	fromRedis := 0
	for attempt := 0; ; attempt++ {
		fromRedis = 0
		for _, id := range ids {
			resp, err := probe.Get(realURL + "/api/v1/products/" + strconv.FormatInt(id, 10))
			if err != nil {
				return res, fmt.Errorf("GET product %d: %w", id, err)
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				return res, fmt.Errorf("GET product %d: %w", id, err)
			}
			if resp.StatusCode != nethttp.StatusOK {
				return res, fmt.Errorf("GET product %d: status %d", id, resp.StatusCode)
			}
			if resp.Header.Get(api.ReadSourceHeader) == "redis" {
				fromRedis++
			}
			bodies[id] = b
		}
		if fromRedis == len(ids) || attempt == 50 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if fromRedis != len(ids) {
		return res, fmt.Errorf("only %d of %d products were answered from Redis (X-Read-Source: redis)", fromRedis, len(ids))
	}
	probe.CloseIdleConnections()
	bare := gin.New()
	bare.GET("/api/v1/products/:id", func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		b, ok := bodies[id]
		if err != nil || !ok {
			c.Status(nethttp.StatusNotFound)
			return
		}
		c.Data(nethttp.StatusOK, "application/json; charset=utf-8", b)
	})
	bareURL, stopBare, err := serveOn(bare)
	if err != nil {
		return res, err
	}
	stops = append(stops, stopBare)
	if cfg.httpBreakdown {
		// Diagnostic: the bare handler plus the one Redis GET the real handler makes.
		withRedis := gin.New()
		withRedis.GET("/api/v1/products/:id", func(c *gin.Context) {
			b, err := rdb.Get(c, prefix+"product:"+c.Param("id")).Bytes()
			if err != nil {
				c.Status(nethttp.StatusInternalServerError)
				return
			}
			c.Data(nethttp.StatusOK, "application/json; charset=utf-8", b)
		})
		u, stop, err := serveOn(withRedis)
		if err != nil {
			return res, err
		}
		stops = append(stops, stop)
		extraURL = u
	}
	sample := bodies[ids[0]]
	fmt.Fprintf(out, "   checked: all %s products answered by the real API with X-Read-Source: redis; the bare handler serves those\n", num(len(ids)))
	fmt.Fprintf(out, "   same bodies (%d bytes for product %d, e.g. %s)\n", len(sample), ids[0], abbreviate(sample, 60))

	sides := []struct{ name, url string }{{"real API", realURL}, {"bare Gin", bareURL}}
	if extraURL != "" {
		sides = append(sides, struct{ name, url string }{"bare+GET", extraURL})
	}
	for _, s := range sides {
		env.progress("http: warming up %s for %s", s.name, cfg.httpWarmup)
		if r := runLoad(ctx, s.url, ids, cfg.httpConns, cfg.httpWarmup); r.errors > 0 {
			return res, fmt.Errorf("%s warm-up: %d errors, first: %s", s.name, r.errors, r.firstErr)
		}
	}
	rates := map[string][]float64{}
	p99s := map[string][]float64{}
	var ratios []float64
	var sourceTotals = map[string]int64{}
	cpuStart := readCPU()
	for round := range cfg.httpRounds {
		order := []int{0, 1, 2}[:len(sides)]
		if round%2 == 1 {
			slices.Reverse(order)
		}
		got := map[string]loadResult{}
		for _, i := range order {
			s := sides[i]
			stop := func() {}
			if round == 0 {
				stop = env.profile("http-" + map[int]string{0: "real", 1: "bare", 2: "bare-redis"}[i])
			}
			cpuA := readCPU()
			r := runLoad(ctx, s.url, ids, cfg.httpConns, cfg.httpDuration)
			cpu := cpuUse(cpuA, readCPU())
			stop()
			if err := ctxErr(ctx); err != nil {
				return res, err
			}
			if r.errors > 0 {
				return res, fmt.Errorf("%s: %d failed requests, first: %s", s.name, r.errors, r.firstErr)
			}
			got[s.name] = r
			rates[s.name] = append(rates[s.name], r.rate())
			p99s[s.name] = append(p99s[s.name], float64(r.lat.p99))
			if i == 0 {
				for k, v := range r.sources {
					sourceTotals[k] += v
				}
			}
			fmt.Fprintf(out, "   round %d  %-8s %8s req/s  p50 %s  p99 %s  (%s requests; CPU: %s)\n", round+1, s.name,
				num(r.rate()), ms(r.lat.p50), ms(r.lat.p99), num(r.requests), cpu)
		}
		ratios = append(ratios, got["real API"].rate()/got["bare Gin"].rate())
	}
	if sourceTotals["redis"] == 0 || len(sourceTotals) > 1 {
		fmt.Fprintf(out, "   WARNING: the real API's answers by X-Read-Source: %v\n", sourceTotals)
	} else {
		fmt.Fprintf(out, "   every measured answer of the real API came from Redis (%s with X-Read-Source: redis)\n", num(sourceTotals["redis"]))
	}
	cpuEnd := readCPU()
	a, b := median(rates["real API"]), median(rates["bare Gin"])
	pa, pb := time.Duration(median(p99s["real API"])), time.Duration(median(p99s["bare Gin"]))
	ratio := median(ratios) // paired: see benchAppend
	res.figure = fmt.Sprintf("%s req/s, p99 %s", num(a), ms(pa))
	res.baseline = fmt.Sprintf("%s req/s, p99 %s (bare Gin)", num(b), ms(pb))
	res.ratio = ratioStr(ratio)
	res.met = ratio >= 0.5
	if !res.met {
		res.note = busyNote(cpuStart, cpuEnd)
	}
	fmt.Fprintf(out, "   median   real API %s req/s (p99 %s), bare Gin %s req/s (p99 %s); ratio (median of the per-round ratios) %.2f;\n",
		num(a), ms(pa), num(b), ms(pb), ratio)
	fmt.Fprintf(out, "            target >= 0.50: %s\n", metStr(res.met))
	if extraURL == "" && !res.met {
		fmt.Fprintf(out, "   (run `go run ./cmd/tvbench http -http-breakdown` to see how much of the gap is the Redis round trip)\n")
	}
	if extraURL != "" {
		c := median(rates["bare+GET"])
		fmt.Fprintf(out, "   breakdown: bare Gin plus one Redis GET per request %s req/s (p99 %s): the Redis round trip alone takes the\n",
			num(c), ms(time.Duration(median(p99s["bare+GET"]))))
		fmt.Fprintf(out, "   bare handler to %.2f of its rate; the rest of the real API (middleware, handler) to %.2f of that\n", c/b, a/c)
	}
	return res, nil
}

func abbreviate(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

// mutableHandler is a slog handler that can be silenced, so that components stopped on purpose do
// not log their cancellation as a warning.
type mutableHandler struct {
	h     slog.Handler
	muted *atomic.Bool
}

func newMutableHandler(h slog.Handler) *mutableHandler {
	return &mutableHandler{h: h, muted: new(atomic.Bool)}
}

func (m *mutableHandler) mute() { m.muted.Store(true) }

func (m *mutableHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !m.muted.Load() && m.h.Enabled(ctx, l)
}

func (m *mutableHandler) Handle(ctx context.Context, r slog.Record) error {
	if m.muted.Load() {
		return nil
	}
	return m.h.Handle(ctx, r)
}

func (m *mutableHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &mutableHandler{h: m.h.WithAttrs(as), muted: m.muted}
}

func (m *mutableHandler) WithGroup(name string) slog.Handler {
	return &mutableHandler{h: m.h.WithGroup(name), muted: m.muted}
}
