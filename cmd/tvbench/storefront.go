package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
)

// The storefront at scale (issue 14): a generated catalog of -products products in -categories
// categories, shared by catalog-list, catalog-search, category-page and catalog-rebuild.

// storefrontConfig holds the generator's flags (shared by the four benchmarks).
type storefrontConfig struct {
	products   int
	categories int
	perProduct int
	batch      int
	loaders    int
}

func storefrontFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.storefront.products, "products", 100_000, "catalog-*, category-page: products of the generated catalog")
	fs.IntVar(&c.storefront.categories, "categories", 200, "catalog-*, category-page: categories of the generated catalog")
	fs.IntVar(&c.storefront.perProduct, "storefront-events-per-product", 3, "catalog-*, category-page: events per product "+
		"(ProductCreated, then ProductStockAdjusted: sales and restocks)")
	fs.IntVar(&c.storefront.batch, "storefront-batch", 2000, "catalog-*, category-page: products per Append while generating")
	fs.IntVar(&c.storefront.loaders, "storefront-loaders", 3, "catalog-*, category-page: concurrent appenders while generating")
}

func (c storefrontConfig) validate() error {
	if err := positive(map[string]int{"products": c.products, "categories": c.categories,
		"storefront-events-per-product": c.perProduct, "storefront-batch": c.batch, "storefront-loaders": c.loaders}); err != nil {
		return err
	}
	if c.products < c.categories {
		return fmt.Errorf("-products (%d) must be at least -categories (%d)", c.products, c.categories)
	}
	return nil
}

// The generated catalog's words: a product is "<brand> <kind> <series> <size><suffix>", its
// description three phrases; 40 brands × 40 kinds, so that two words (a brand and a kind) find
// about one product in 1,600.
var (
	sfBrands = []string{"Aurora", "Kestrel", "Nimbus", "Vertex", "Quasar", "Helix", "Orion", "Zephyr", "Crème", "Ærø",
		"Falcon", "Boreal", "Cobalt", "Dynamo", "Ember", "Fjord", "Glacier", "Halcyon", "Ion", "Juniper",
		"Krypton", "Lumen", "Meridian", "Nova", "Onyx", "Pulsar", "Quill", "Raven", "Sable", "Titan",
		"Umbra", "Vanta", "Wyvern", "Xenon", "Yonder", "Zenith", "Atlas", "Borealis", "Citrine", "Délice"}
	sfKinds = []string{"Laptop", "Monitor", "Keyboard", "Headset", "GPU", "SSD", "Router", "Webcam", "Dock", "Mouse",
		"Tablet", "Speaker", "Microphone", "Charger", "Cable", "Hub", "Projector", "Printer", "Scanner", "Drone",
		"Smartwatch", "Earbuds", "Controller", "Joystick", "Motherboard", "Processor", "Memory", "Enclosure", "Switch", "Modem",
		"Soundbar", "Amplifier", "Turntable", "Camera", "Lens", "Tripod", "Gimbal", "Stylus", "Trackpad", "Desk"}
	sfSeries   = []string{"Pro", "Air", "Max", "Lite", "Ultra", "Mini", "X", "S", "Plus", "Studio", "Go", "Edge", "Neo", "One", "Flex", "Prime"}
	sfPhrases1 = []string{"Low-latency wireless with a 40-hour battery and USB-C charging.", "Factory-calibrated panel, 144 Hz refresh and a height-adjustable stand.",
		"Hot-swappable switches, PBT keycaps and per-key RGB lighting.", "PCIe 4.0 NVMe drive with 7,000 MB/s reads.", "Tri-band Wi-Fi 6E mesh with 2.5 GbE."}
	sfPhrases2 = []string{"Aluminium body, matte finish.", "Recycled plastics and plastic-free packaging.", "Café-tested, naïve-proof set-up in five minutes.",
		"Ships with a braided cable and a travel pouch.", "Firmware updates over the air for five years."}
	sfPhrases3 = []string{"Two-year warranty.", "Three-year warranty, advance replacement.", "Five-year warranty.", "Lifetime support.", "Made to be repaired: every part sold separately."}
)

func sfProduct(id, categories int64, r *rand.Rand) catalog.ProductCreated {
	cat := 1 + (id-1)%categories
	stock := 1 + r.Int64N(200)
	if r.IntN(100) < 8 {
		stock = 0
	}
	return catalog.ProductCreated{ProductID: id,
		Name:        fmt.Sprintf("%s %s %s %d", sfBrands[r.IntN(len(sfBrands))], sfKinds[r.IntN(len(sfKinds))], sfSeries[r.IntN(len(sfSeries))], 10+r.IntN(990)),
		Description: sfPhrases1[r.IntN(len(sfPhrases1))] + " " + sfPhrases2[r.IntN(len(sfPhrases2))] + " " + sfPhrases3[r.IntN(len(sfPhrases3))],
		Price:       domain.Money(500 + r.Int64N(249_500)), Currency: catalog.Currency, CategoryID: &cat, Stock: stock}
}

// searchQueries are two-word searches of the generated catalog (a brand and a kind), every other
// one with its last word cut short as a customer types it.
func searchQueries(n int) []string {
	r := rand.New(rand.NewPCG(14, 14))
	out := make([]string, n)
	for i := range out {
		kind := strings.ToLower(sfKinds[r.IntN(len(sfKinds))])
		if i%2 == 1 && len(kind) > 3 {
			kind = kind[:len(kind)-1-r.IntN(len(kind)-3)]
		}
		out[i] = strings.ToLower(sfBrands[r.IntN(len(sfBrands))]) + " " + kind
	}
	return out
}

// storefrontLog is what generateStorefront appended.
type storefrontLog struct {
	events int64
	took   time.Duration
}

// generateStorefront appends the catalog through the event store's multi-stream Append (one
// Append per -storefront-batch products, with the categories' CategoryReferenced as the commands
// record them): the categories, then every product's ProductCreated, then rounds of
// ProductStockAdjusted. Loader l owns the categories c with (c-1) % loaders == l and their
// products (product p is in category 1 + (p-1) % categories), so no two loaders write a stream.
func generateStorefront(ctx context.Context, env *env, db *scratchDB, c storefrontConfig) (storefrontLog, error) {
	start := time.Now()
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return storefrontLog{}, err
	}
	cats := make([]eventstore.StreamAppend, c.categories)
	for i := range cats {
		id := int64(i + 1)
		cats[i] = eventstore.StreamAppend{StreamID: catalog.CategoryStreamID(id), StreamType: catalog.CategoryStreamType,
			Events: []eventstore.NewEvent{newEvent(catalog.CategoryCreated{CategoryID: id, Name: fmt.Sprintf("%s %ss", sfBrands[i%len(sfBrands)], sfKinds[i%len(sfKinds)]),
				Description: fmt.Sprintf("Category %d of the generated storefront.", id)})}}
	}
	if _, err := store.Append(ctx, requestMetadata(), cats...); err != nil {
		return storefrontLog{}, fmt.Errorf("creating categories: %w", err)
	}
	loaders := min(c.loaders, c.categories)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		events   = int64(c.categories)
	)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for l := range loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand()
			var ids []int64
			for id := int64(1); id <= int64(c.products); id++ {
				if (id-1)%int64(c.categories)%int64(loaders) == int64(l) {
					ids = append(ids, id)
				}
			}
			stock := make(map[int64]int64, len(ids))
			catVersion := map[int64]int64{}
			n := int64(0)
			for round := 1; round <= c.perProduct && lctx.Err() == nil; round++ {
				for from := 0; from < len(ids) && lctx.Err() == nil; from += c.batch {
					chunk := ids[from:min(from+c.batch, len(ids))]
					apps := make([]eventstore.StreamAppend, 0, len(chunk)+c.categories/loaders+1)
					refs := map[int64][]eventstore.NewEvent{}
					var refOrder []int64
					for _, id := range chunk {
						var ev eventstore.NewEvent
						if round == 1 {
							pc := sfProduct(id, int64(c.categories), r)
							stock[id] = pc.Stock
							ev = newEvent(pc)
							if refs[*pc.CategoryID] == nil {
								refOrder = append(refOrder, *pc.CategoryID)
							}
							refs[*pc.CategoryID] = append(refs[*pc.CategoryID], newEvent(catalog.CategoryReferenced{CategoryID: *pc.CategoryID, ProductID: id}))
						} else {
							var delta int64
							delta, stock[id] = nextStock(stock[id], r)
							ev = stockAdjusted(id, delta, stock[id])
						}
						apps = append(apps, eventstore.StreamAppend{StreamID: catalog.ProductStreamID(id), StreamType: catalog.ProductStreamType,
							ExpectedVersion: int64(round - 1), Events: []eventstore.NewEvent{ev}})
					}
					for _, cat := range refOrder {
						v := catVersion[cat]
						if v == 0 {
							v = 1 // CategoryCreated
						}
						apps = append(apps, eventstore.StreamAppend{StreamID: catalog.CategoryStreamID(cat), StreamType: catalog.CategoryStreamType,
							ExpectedVersion: v, Events: refs[cat]})
						catVersion[cat] = v + int64(len(refs[cat]))
					}
					if _, err := store.Append(lctx, requestMetadata(), apps...); err != nil {
						fail(fmt.Errorf("appending the catalog: %w", err))
						return
					}
					for _, a := range apps {
						n += int64(len(a.Events))
					}
				}
			}
			mu.Lock()
			events += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil && !errors.Is(firstErr, context.Canceled) {
		return storefrontLog{}, firstErr
	}
	if err := ctxErr(ctx); err != nil {
		return storefrontLog{}, err
	}
	// The id sequences as the commands would have left them.
	if _, err := db.Pool.Exec(ctx, `SELECT setval('category_ids', $1), setval('product_ids', $2)`, c.categories, c.products); err != nil {
		return storefrontLog{}, fmt.Errorf("setting the id sequences: %w", err)
	}
	if _, err := db.Pool.Exec(ctx, `VACUUM (ANALYZE) events`); err != nil {
		return storefrontLog{}, fmt.Errorf("vacuuming events: %w", err)
	}
	env.progress("storefront: %s events appended in %s", num(events), time.Since(start).Round(time.Millisecond))
	return storefrontLog{events: events, took: time.Since(start)}, nil
}

// rebuildCatalog rebuilds every catalog projector, as `techvault projections
// rebuild categories products` does, and returns each one's stats.
func rebuildCatalog(ctx context.Context, env *env, db *scratchDB) ([]projections.RebuildStats, error) {
	return projections.RebuildAll(ctx, db.Pool, catalogproj.Projectors(), env.quiet)
}

// storefrontRead is one wrk side against the served storefront: its requests (a Lua script) and
// whether they must be answered from the listings view.
type storefrontRead struct {
	bench  string
	side   string
	figure string
	load   wrkLoad
	target func(f wrkFigures) (bool, string) // met, target text
	// paths are the requests wrk cycles over; headers are sent with each.
	paths   []string
	headers map[string]string
	// source, when set, is the X-Read-Source every path must be answered with before measuring.
	source string
	// pages, when above 1, adds to every path the next pages (its next_cursor followed, as a
	// shopper paging through), up to pages in all, read from the server before the load.
	pages int
}

// servedStorefront generates the catalog into a scratch database, rebuilds its projections,
// starts techvault serve on it and waits until 1,000 products (GET /products/{id}, the baseline
// side) are answered from Redis.
func servedStorefront(ctx context.Context, env *env, cfg config, dir string, out io.Writer) (*servedCatalog, error) {
	c := cfg.storefront
	db, err := env.newDB(ctx, int32(c.loaders+4), nil)
	if err != nil {
		return nil, err
	}
	s := &servedCatalog{db: db, logPath: filepath.Join(dir, "techvault-serve.log"), scriptPath: filepath.Join(dir, "ids.lua"),
		stops: []func(){db.Close}}
	if err := s.startStorefront(ctx, env, cfg, dir, out); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *servedCatalog) startStorefront(ctx context.Context, env *env, cfg config, dir string, out io.Writer) error {
	c := cfg.storefront
	gen, err := generateStorefront(ctx, env, s.db, c)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := rebuildCatalog(ctx, env, s.db); err != nil {
		return err
	}
	if _, err := s.db.Pool.Exec(ctx, `ANALYZE products; ANALYZE categories`); err != nil {
		return err
	}
	fmt.Fprintf(out, "   catalog: %s products in %s categories, %s events generated in %s (Store.Append, %s products per call), projections rebuilt in %s\n",
		num(c.products), num(c.categories), num(gen.events), gen.took.Round(time.Millisecond), num(c.batch), time.Since(t0).Round(time.Millisecond))
	bin, err := techvaultBinary(ctx, env, cfg.httpGet.techvault, dir)
	if err != nil {
		return err
	}
	if err := s.serve(ctx, env, bin); err != nil {
		return err
	}
	took, err := waitConsumersAtHead(ctx, s.db.Pool, 5*time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   techvault serve started; its other consumers (users, orders, effects: never given these events) walked the\n")
	fmt.Fprintf(out, "   generated log to its head in %s before the load\n", took.Round(time.Millisecond))
	r := newRand()
	for range min(1000, c.products) {
		s.ids = append(s.ids, 1+r.Int64N(int64(c.products)))
	}
	if s.bodies, err = fetchBodies(ctx, s.url, s.ids); err != nil {
		return err
	}
	return writeWrkScript(s.scriptPath, s.ids)
}

// writePathsScript writes a wrk Lua script whose requests cycle over paths, each with headers.
func writePathsScript(path string, paths []string, headers map[string]string) error {
	var b strings.Builder
	b.WriteString("local paths = {")
	for i, p := range paths {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(strconv.Quote(p))
	}
	b.WriteString("}\nlocal headers = {")
	first := true
	for k, v := range headers {
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "[%s]=%s", strconv.Quote(k), strconv.Quote(v))
	}
	b.WriteString("}\nlocal i = math.random(#paths)\n")
	b.WriteString("request = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i], headers)\nend\n")
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// measureStorefrontRead serves the generated storefront and measures sr's requests against GET
// /products/{id} on the same process (wrkRounds).
func measureStorefrontRead(ctx context.Context, env *env, cfg config, sr storefrontRead, out io.Writer) (result, error) {
	var res result
	wrk, dir, remove, err := wrkWorkspace(sr.bench)
	if err != nil {
		return res, err
	}
	defer remove()
	cat, err := servedStorefront(ctx, env, cfg, dir, out)
	if err != nil {
		return res, err
	}
	defer cat.stop()
	if sr.pages > 1 {
		if sr.paths, err = withNextPages(ctx, cat.url, sr.paths, sr.pages, sr.headers); err != nil {
			return res, err
		}
	}
	if err := checkPaths(ctx, cat.url, sr, out); err != nil {
		return res, err
	}
	script := filepath.Join(dir, "paths.lua")
	if err := writePathsScript(script, sr.paths, sr.headers); err != nil {
		return res, err
	}
	cpuA := readCPU()
	f, err := wrkRounds(ctx, env, wrk, sr.load, [2]wrkTarget{{name: sr.side, url: cat.url, script: script},
		{name: "products", url: cat.url, script: cat.scriptPath}}, out)
	if err != nil {
		return res, err
	}
	cpuB := readCPU()
	fmt.Fprintf(out, "   access log: %s\n", cat.logSummary())
	fmt.Fprintf(out, "   (CPU lines: techvault serve and wrk are \"everything else\"; %s in all)\n", cpuUse(cpuA, cpuB))
	met, target := sr.target(f)
	x := row{figure: fmt.Sprintf("%s, wrk -c%d, INFO access logs", sr.figure, sr.load.conns),
		measured: fmt.Sprintf("%s req/s, p99 %s", num(f.rates[0]), ms(f.p99s[0])),
		baseline: fmt.Sprintf("%s req/s, p99 %s (GET /products/{id})", num(f.rates[1]), ms(f.p99s[1])),
		ratio:    ratioStr(f.ratio), target: target, met: met}
	if !met {
		x.note = "techvault serve and wrk count as \"everything else\" in the CPU lines; rerun on a quiet machine"
	}
	verdict(out, x)
	res.add(x)
	return res, nil
}

// withNextPages returns paths with, after each, the paths of its next pages (the answer's
// next_cursor followed), up to pages per path.
func withNextPages(ctx context.Context, base string, paths []string, pages int, headers map[string]string) ([]string, error) {
	client := loadClient(4)
	defer client.CloseIdleConnections()
	out := make([]string, 0, len(paths)*pages)
	for _, p := range paths {
		out = append(out, p)
		next := p
		for range pages - 1 {
			req, err := newGet(ctx, base+next, headers)
			if err != nil {
				return nil, err
			}
			b, _, err := do(client, req, "", nethttp.StatusOK)
			if err != nil {
				return nil, fmt.Errorf("GET %s: %w", next, err)
			}
			var page struct {
				NextCursor string `json:"next_cursor"`
			}
			if err := json.Unmarshal(b, &page); err != nil {
				return nil, fmt.Errorf("GET %s: %w", next, err)
			}
			if page.NextCursor == "" {
				break
			}
			next = p + "&cursor=" + url.QueryEscape(page.NextCursor)
			out = append(out, next)
		}
	}
	return out, nil
}

// checkPaths reads every path once (with sr's headers) and, when sr.source is set, until it is
// answered from there (the listings view stores a page on its first read); it prints one answer.
func checkPaths(ctx context.Context, base string, sr storefrontRead, out io.Writer) error {
	client := loadClient(4)
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	var sample []byte
	for _, p := range sr.paths {
		for {
			req, err := newGet(ctx, base+p, sr.headers)
			if err != nil {
				return err
			}
			b, h, err := do(client, req, "", 200)
			if err == nil && (sr.source == "" || h.Get(readSourceHeader) == sr.source) {
				sample = b
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("GET %s: not answered 200 from %q within 60s (source %q, error %w)", p, sr.source, h.Get(readSourceHeader), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	from := "any source"
	if sr.source != "" {
		from = readSourceHeader + ": " + sr.source
	}
	fmt.Fprintf(out, "   checked: the %d paths answer 200 with %s (e.g. %s: %d bytes, %s)\n", len(sr.paths), from, sr.paths[len(sr.paths)-1],
		len(sample), abbreviate(sample, 80))
	return nil
}

// categoryPaths are the pages wrk cycles over: every category's first page of sort.
func categoryPaths(categories int, sort string, limit int) []string {
	out := make([]string, categories)
	for i := range out {
		out[i] = fmt.Sprintf("/api/v1/products?category_id=%d&sort=%s&limit=%d", i+1, url.QueryEscape(sort), limit)
	}
	return out
}

// newGet is a GET of url with headers.
func newGet(ctx context.Context, url string, headers map[string]string) (*nethttp.Request, error) {
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req, nil
}

// waitConsumersAtHead waits until every consumer group of the served process has its checkpoint
// at the head of the log, and their number has held for two seconds (each writes its first
// checkpoint after its first batch). A serve started on a generated log has its catalog
// projectors rebuilt, but its other consumers begin at the start of the log and walk it, a minute
// of Postgres on a slow machine: measuring meanwhile would measure that walk.
func waitConsumersAtHead(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	store, err := eventstore.New(eventstore.Config{Pool: pool})
	if err != nil {
		return 0, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return 0, err
	}
	last, stableSince := -1, time.Now()
	for {
		var n, behind int
		if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE coalesce(offset_acked, 0) < $1) FROM projector_offsets`,
			head).Scan(&n, &behind); err != nil {
			return 0, err
		}
		if n != last {
			last, stableSince = n, time.Now()
		}
		if n > 0 && behind == 0 && time.Since(stableSince) >= 2*time.Second {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("%d of %d consumers not at the head of the log after %s", behind, n, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, errInterrupted
		case <-time.After(100 * time.Millisecond):
		}
	}
}
