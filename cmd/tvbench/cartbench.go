package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/eventstore"
)

// cartConfig holds the cart benchmark's flags.
type cartConfig struct {
	addClients   int
	placeClients int
	customers    int
	products     int
	duration     time.Duration
	warmup       time.Duration
	rounds       int
	orders       int
	loaders      int
	served       bool
}

func cartFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.cart.addClients, "cart-add-clients", 32, "cart: AddToCart clients (and Store.Append writers of the baseline)")
	fs.IntVar(&c.cart.placeClients, "cart-place-clients", 16, "cart: PlaceOrder clients")
	fs.IntVar(&c.cart.customers, "cart-customers", 256, "cart: customers registered through the API (carts readied per PlaceOrder phase)")
	fs.IntVar(&c.cart.products, "cart-products", 100, "cart: products (few, so that the orders make their streams long)")
	fs.DurationVar(&c.cart.duration, "cart-duration", 5*time.Second, "cart: measured time per side per round")
	fs.DurationVar(&c.cart.warmup, "cart-warmup", 2*time.Second, "cart: warm-up per side")
	fs.IntVar(&c.cart.rounds, "cart-rounds", 3, "cart: rounds (each measures both sides, order alternating)")
	fs.IntVar(&c.cart.orders, "cart-orders", 20_000, "cart: orders placed through the commands before PlaceOrder is measured again (the issue says 100000)")
	fs.IntVar(&c.cart.loaders, "cart-loaders", 16, "cart: concurrent order placers of that load")
	fs.BoolVar(&c.cart.served, "cart-served", true, "cart: send the load to a `techvault serve` process (-http-get-techvault, or a fresh build) started on the readied database (false: to the application in this process)")
}

func (c cartConfig) validate() error {
	if err := positive(map[string]int{"cart-add-clients": c.addClients, "cart-place-clients": c.placeClients,
		"cart-customers": c.customers, "cart-products": c.products, "cart-rounds": c.rounds, "cart-orders": c.orders,
		"cart-loaders": c.loaders}); err != nil {
		return err
	}
	if c.customers < c.addClients || c.products < cartOrderLines {
		return fmt.Errorf("-cart-customers must be at least -cart-add-clients (%d), -cart-products at least %d", c.addClients, cartOrderLines)
	}
	return positive(map[string]time.Duration{"cart-duration": c.duration})
}

const (
	cartAddTarget   = 0.8 // AddToCart ÷ Store.Append
	cartPlaceTarget = 0.5 // PlaceOrder ÷ Store.Append
	cartAgedTarget  = 0.9 // PlaceOrder after the orders ÷ PlaceOrder fresh
	cartOrderLines  = 3   // lines of every order placed
)

// cartRun is the state of one cart benchmark.
type cartRun struct {
	env  *env
	cfg  cartConfig
	out  io.Writer
	shop *shop
}

func benchCart(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	r := &cartRun{env: env, cfg: cfg.cart, out: out}
	r.header()
	db, err := env.newDB(ctx, int32(max(r.cfg.addClients, r.cfg.loaders)+16), nil)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	if r.shop, err = startShop(ctx, env, db, r.cfg.customers, r.cfg.products, max(r.cfg.addClients, r.cfg.placeClients), out); err != nil {
		return result{}, err
	}
	defer r.shop.close()
	if r.cfg.served {
		dir, err := os.MkdirTemp("", "tvbench-cart-")
		if err != nil {
			return result{}, err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		srv, err := serveShop(ctx, env, r.shop, db, cfg.httpGet.techvault, dir)
		defer srv.stop()
		if err != nil {
			return result{}, err
		}
		fmt.Fprintf(out, "   the readied application stopped; techvault serve started on its database at %s\n", r.shop.url)
		defer func() { fmt.Fprintf(out, "   access log: %s\n", srv.logSummary()) }()
	}
	return r.measure(ctx)
}

// baseline is the Store.Append side, in a scratch database of its own, new for each of the
// three measurements: a database grown by the rounds before (some 50,000 events a round) and
// vacuumed meanwhile would append slower, and move the ratios.
func (r *cartRun) baseline(ctx context.Context) (measuredSide, func(), error) {
	db, err := r.env.newDB(ctx, int32(r.cfg.addClients), nil)
	if err != nil {
		return measuredSide{}, nil, err
	}
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		db.Close()
		return measuredSide{}, nil, err
	}
	var nextID atomic.Int64
	return writersSide("Store.Append", "appends/s", r.cfg.addClients, newStreamAppendOp(store, &nextID)), db.Close, nil
}

func (r *cartRun) header() {
	c := r.cfg
	fmt.Fprintf(r.out, "== cart: the order platform's commands through HTTP from this process's clients, against %s (every projector, no Stripe)\n",
		map[bool]string{true: "a real `techvault serve` process (LOG_FORMAT=json LOG_LEVEL=info,\n   access log to a file) started on a database readied by the application in this process, which then stops",
			false: "the application as serve builds it,\n   served on 127.0.0.1 in this process (abuse limits off)"}[c.served])
	fmt.Fprintf(r.out, "   vs Store.Append of one event to a new stream by %d writers (the append\n", c.addClients)
	fmt.Fprintf(r.out, "   benchmark's side, in a new scratch database of its own for each of the three figures). AddToCart: %d clients, each call for the next of %d\n", c.addClients, c.customers)
	fmt.Fprintf(r.out, "   customers, one more of a product. PlaceOrder: %d clients; in phases, every customer's cart is readied\n", c.placeClients)
	fmt.Fprintf(r.out, "   through HTTP (%d lines, the promo code; not timed, projected before timing), then every customer\n", cartOrderLines)
	fmt.Fprintf(r.out, "   places an order (timed). Then %s orders are placed through HTTP over %s products (long product\n",
		num(c.orders), num(c.products))
	fmt.Fprintf(r.out, "   streams) and PlaceOrder is measured again. %d rounds x %s per side (order alternating) after %s warm-up per side\n",
		c.rounds, c.duration, c.warmup)
}

// measure runs the three measurements and returns their rows.
func (r *cartRun) measure(ctx context.Context) (result, error) {
	var res result
	c := r.cfg
	add := writersSide("AddToCart", "adds/s", c.addClients, r.shop.addOne)
	place := measuredSide{name: "PlaceOrder", unit: "orders/s", measure: r.placeOrders}
	cpuA := readCPU()
	base, closeBase, err := r.baseline(ctx)
	if err != nil {
		return res, err
	}
	fAdd, err := sideRounds(ctx, r.env, c.rounds, c.warmup, c.duration, [2]measuredSide{add, base}, r.out)
	closeBase()
	if err != nil {
		return res, err
	}
	fPlace, err := r.placeRounds(ctx, place)
	if err != nil {
		return res, err
	}
	cpuB := readCPU()
	note := busyNote(cpuA, cpuB)
	res.add(r.row(fmt.Sprintf("AddToCart over HTTP, %d clients", c.addClients), "adds/s", fAdd, cartAddTarget, note))
	res.add(r.row(fmt.Sprintf("PlaceOrder over HTTP, %d clients, %d lines + promo", c.placeClients, cartOrderLines), "orders/s", fPlace,
		cartPlaceTarget, note))
	if err := r.loadOrders(ctx); err != nil {
		return res, err
	}
	place.name = "PlaceOrder+"
	cpuA = readCPU()
	fAged, err := r.placeRounds(ctx, place)
	if err != nil {
		return res, err
	}
	res.add(r.agedRow(fPlace, fAged, busyNote(cpuA, readCPU())))
	return res, nil
}

// placeRounds measures PlaceOrder against a new baseline and says how many orders were refused.
func (r *cartRun) placeRounds(ctx context.Context, place measuredSide) (sideFigures, error) {
	base, closeBase, err := r.baseline(ctx)
	if err != nil {
		return sideFigures{}, err
	}
	defer closeBase()
	before := r.shop.refused.Load()
	f, err := sideRounds(ctx, r.env, r.cfg.rounds, r.cfg.warmup, r.cfg.duration, [2]measuredSide{place, base}, r.out)
	fmt.Fprintf(r.out, "   %s: %s orders refused for contention (409 after the command's retries; warm-up included), not counted\n",
		place.name, num(r.shop.refused.Load()-before))
	return f, err
}

// row is a figure measured against the append baseline.
func (r *cartRun) row(figure, unit string, f sideFigures, target float64, note string) row {
	x := row{figure: figure, measured: fmt.Sprintf("%s %s, p99 %s", num(f.rates[0]), unit, ms(f.p99s[0])),
		baseline: num(f.rates[1]) + " appends/s (Store.Append)", ratio: ratioStr(f.ratio),
		target: fmt.Sprintf(">= %.1f", target), met: f.ratio >= target}
	if !x.met {
		x.note = note
	}
	verdict(r.out, x)
	return x
}

// agedRow compares PlaceOrder after the orders with PlaceOrder fresh, each as its ratio to the
// append baseline of its own rounds (which cancels a change of the machine's load in between).
func (r *cartRun) agedRow(fresh, aged sideFigures, note string) row {
	ratio := aged.ratio / fresh.ratio
	fmt.Fprintf(r.out, "   PlaceOrder after %s orders: %s orders/s (%.2f x appends) vs fresh %s orders/s (%.2f x appends); direct ratio %.2f\n",
		num(r.cfg.orders), num(aged.rates[0]), aged.ratio, num(fresh.rates[0]), fresh.ratio, aged.rates[0]/fresh.rates[0])
	x := row{figure: fmt.Sprintf("PlaceOrder after %s orders, %d clients", num(r.cfg.orders), r.cfg.placeClients),
		measured: fmt.Sprintf("%s orders/s, p99 %s (%.2f x appends)", num(aged.rates[0]), ms(aged.p99s[0]), aged.ratio),
		baseline: fmt.Sprintf("%s orders/s fresh (%.2f x appends)", num(fresh.rates[0]), fresh.ratio),
		ratio:    ratioStr(ratio), target: fmt.Sprintf(">= %.1f", cartAgedTarget), met: ratio >= cartAgedTarget}
	if !x.met {
		x.note = note
	}
	verdict(r.out, x)
	return x
}

// addOne is POST /cart/items for the next customer: one more of the next of its first products
// (at most cart.MaxLines of them, the lines a cart may hold).
func (s *shop) addOne(ctx context.Context, _ *rand.Rand) error {
	c := s.customer()
	defer c.mu.Unlock()
	id := s.products[c.adds%min(len(s.products), cart.MaxLines)]
	c.adds++
	return s.addToCart(ctx, c, id)
}

// placeOrders measures PlaceOrder through HTTP for at least d of timed phases: each readies every
// customer's cart through the commands and waits for the projectors (not timed), then places
// every customer's order, placeClients at a time (timed).
func (r *cartRun) placeOrders(ctx context.Context, d time.Duration) (sideResult, error) {
	var (
		res sideResult
		all []time.Duration
	)
	for res.elapsed < d {
		if err := r.fillCarts(ctx); err != nil {
			return res, err
		}
		lats, took, err := r.placeAll(ctx)
		if err != nil {
			return res, err
		}
		res.elapsed += took
		all = append(all, lats...)
	}
	res.ops, res.lat = int64(len(all)), summarize(all)
	return res, nil
}

// fillCarts readies every customer's cart through the commands and waits for the projectors.
func (r *cartRun) fillCarts(ctx context.Context) error {
	s := r.shop
	if err := parallel(len(s.customers), 8, func(i int) error {
		return s.fillCart(ctx, s.customers[i], cartOrderLines, newRand())
	}); err != nil {
		return err
	}
	_, err := waitAllProjected(ctx, s.app, projectorNames(), time.Minute)
	return err
}

// placeAll places every customer's order through HTTP, placeClients at a time; it returns the
// latencies of the orders placed (not of those refused) and the time it took.
func (r *cartRun) placeAll(ctx context.Context) ([]time.Duration, time.Duration, error) {
	s := r.shop
	lats := make([]time.Duration, len(s.customers))
	t0 := time.Now()
	err := parallel(len(s.customers), r.cfg.placeClients, func(i int) error {
		t := time.Now()
		refused, err := s.refusal(ctx, s.customers[i], s.placeOrder(ctx, s.customers[i]))
		if !refused {
			lats[i] = time.Since(t)
		}
		return err
	})
	took := time.Since(t0)
	return slices.DeleteFunc(lats, func(d time.Duration) bool { return d == 0 }), took, err
}

// loadOrders places cfg.orders orders through the commands (a cart readied, then PlaceOrder),
// loaders at a time, waits for the projectors and vacuums: the store of a shop that has taken
// that many orders.
func (r *cartRun) loadOrders(ctx context.Context) error {
	s, n := r.shop, r.cfg.orders
	t0 := time.Now()
	var done, refused atomic.Int64
	err := parallel(n, r.cfg.loaders, func(i int) error {
		c := s.customers[i%len(s.customers)]
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := s.fillCart(ctx, c, cartOrderLines, newRand()); err != nil {
			return err
		}
		wasRefused, err := s.refusal(ctx, c, s.placeOrder(ctx, c))
		if err != nil {
			return err
		}
		if wasRefused {
			refused.Add(1) // contention, retries spent: refusal emptied the cart
			return nil
		}
		if k := done.Add(1); k%int64(max(n/10, 1)) == 0 {
			r.env.progress("cart: %s of %s orders placed in %s", num(k), num(n), time.Since(t0).Round(time.Second))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading orders: %w", err)
	}
	took := time.Since(t0)
	catchUp, err := waitAllProjected(ctx, s.app, projectorNames(), time.Hour)
	if err != nil {
		return err
	}
	t1 := time.Now()
	if _, err := s.app.Pool.Exec(ctx, "VACUUM (ANALYZE)"); err != nil {
		return fmt.Errorf("vacuuming: %w", err)
	}
	head, err := s.app.Store.Head(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "   load: %s orders placed through HTTP (DELETE /cart, %d x POST /cart/items, POST /cart/promo, POST /orders each; %d at a\n",
		num(done.Load()), cartOrderLines, r.cfg.loaders)
	fmt.Fprintf(r.out, "   time) in %s (%s orders/s); projectors caught up %s later; VACUUM (ANALYZE) %s; the log holds %s events,\n",
		took.Round(time.Millisecond), num(float64(n)/took.Seconds()), catchUp.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond), num(head))
	fmt.Fprintf(r.out, "   a product stream ~%s stock reservations; %s of the orders refused for contention (409 after retries)\n",
		num(cartOrderLines*n/r.cfg.products), num(refused.Load()))
	return nil
}
