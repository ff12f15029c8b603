package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// checkoutConfig holds the checkout benchmark's flags.
type checkoutConfig struct {
	clients   int
	customers int
	products  int
	promo     bool
	served    bool
	duration  time.Duration
	warmup    time.Duration
}

func checkoutFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.checkout.clients, "checkout-clients", 16, "checkout: concurrent HTTP clients, each looping whole checkouts")
	fs.IntVar(&c.checkout.customers, "checkout-customers", 64, "checkout: customers registered through the API (each checkout takes the next)")
	fs.IntVar(&c.checkout.products, "checkout-products", 1000, "checkout: products (two at random per checkout)")
	fs.BoolVar(&c.checkout.promo, "checkout-promo", true, "checkout: redeem the promo code in every checkout (false: no RedeemPromo, no promo stream)")
	fs.BoolVar(&c.checkout.served, "checkout-served", true, "checkout: send the load to a `techvault serve` process (-http-get-techvault, or a fresh build) started on the readied database (false: to the application in this process)")
	fs.DurationVar(&c.checkout.duration, "checkout-duration", 20*time.Second, "checkout: measured time")
	fs.DurationVar(&c.checkout.warmup, "checkout-warmup", 3*time.Second, "checkout: warm-up before measuring")
}

func (c checkoutConfig) validate() error {
	if err := positive(map[string]int{"checkout-clients": c.clients, "checkout-customers": c.customers,
		"checkout-products": c.products}); err != nil {
		return err
	}
	if c.customers < c.clients || c.products < 2 {
		return fmt.Errorf("-checkout-customers must be at least -checkout-clients (%d), -checkout-products at least 2", c.clients)
	}
	return positive(map[string]time.Duration{"checkout-duration": c.duration})
}

const (
	checkoutTarget = 550         // checkouts/s
	checkoutLagEnd = time.Second // the orders projection's lag when the burst ends
)

func benchCheckout(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.checkout
	checkoutHeader(c, out)
	db, err := env.newDB(ctx, int32(c.clients+16), nil)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	s, err := startShop(ctx, env, db, c.customers, c.products, c.clients, out)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	var served *servedCatalog
	if c.served {
		dir, err := os.MkdirTemp("", "tvbench-checkout-")
		if err != nil {
			return result{}, err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		srv, err := serveShop(ctx, env, s, db, cfg.httpGet.techvault, dir)
		defer srv.stop()
		if err != nil {
			return result{}, err
		}
		served = srv
		fmt.Fprintf(out, "   the readied application stopped; techvault serve started on its database at %s\n", s.url)
	}
	op := s.checkoutOp(c.promo)
	env.progress("checkout: %s warm-up then %s", c.warmup, c.duration)
	if _, err := runWriters(ctx, c.clients, c.warmup, op); err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	if _, err := waitAllProjected(ctx, s.app, projectorNames(), 2*time.Minute); err != nil {
		return result{}, err
	}
	s.refused.Store(0)
	cpuA := readCPU()
	stopProfile := env.profile("checkout")
	sr, err := runWriters(ctx, c.clients, c.duration, op)
	stopProfile()
	if err != nil {
		return result{}, err
	}
	f := checkoutFigures{sr: sr, refused: s.refused.Load(), cpuA: cpuA, cpuB: readCPU()}
	if f.lag, err = burstLag(ctx, s.app); err != nil {
		return result{}, err
	}
	f.unpaid = s.unpaid.Load()
	if served != nil {
		f.accessLog = served.logSummary()
	}
	return checkoutRows(c, f, out), nil
}

// serveShop stops the shop's in-process application (its setup done and projected) and starts
// `techvault serve` (bin, or a fresh build into dir) on the same database; the shop's clients then
// send their requests to it, so that load generator and server are separate processes. The
// server stops with the returned catalog's stop. The application's store and checkpoints, on the benchmark's
// pool, still read the log and the lag.
func serveShop(ctx context.Context, env *env, s *shop, db *scratchDB, bin, dir string) (*servedCatalog, error) {
	s.app.Close()
	srv := &servedCatalog{db: db, logPath: filepath.Join(dir, "techvault-serve.log")}
	bin, err := techvaultBinary(ctx, env, bin, dir)
	if err != nil {
		return srv, err
	}
	if err := srv.serve(ctx, env, bin); err != nil {
		return srv, err
	}
	s.url = srv.url
	return srv, nil
}

// checkoutFigures is what the measured checkouts gave.
type checkoutFigures struct {
	sr              sideResult
	refused, unpaid int64
	lag             endLag
	cpuA, cpuB      cpuSample
	accessLog       string // the served process's log, summed up ("" when the application ran in this process)
}

func checkoutHeader(c checkoutConfig, out io.Writer) {
	fmt.Fprintf(out, "== checkout: whole checkouts through HTTP (POST /cart/items x2, %sPOST /orders), %d keep-alive\n",
		map[bool]string{true: "POST /cart/promo, ", false: "no promo code, "}[c.promo], c.clients)
	fmt.Fprintf(out, "   clients in this process, each checkout for the next of %d customers (Bearer tokens), against ", c.customers)
	if c.served {
		fmt.Fprintf(out, "a real `techvault\n")
		fmt.Fprintf(out, "   serve` process (LOG_FORMAT=json LOG_LEVEL=info, access log to a file, every projector; no Stripe: orders are\n")
		fmt.Fprintf(out, "   placed without payment) on a database readied by the application in this process (products, customers\n")
		fmt.Fprintf(out, "   registered through the API with an address, the promo code), which is stopped before the load;\n")
	} else {
		fmt.Fprintf(out, "the application as\n")
		fmt.Fprintf(out, "   serve builds it (internal/app, every projector, served on 127.0.0.1; abuse limits off, no Stripe: orders are\n")
		fmt.Fprintf(out, "   placed without payment);\n")
	}
	fmt.Fprintf(out, "   %s measured after %s warm-up; then the orders projection's lag (projections status)\n", c.duration, c.warmup)
	fmt.Fprintf(out, "   the moment the burst ends. Absolute target (no same-run baseline): >= %d checkouts/s, lag < %s\n", checkoutTarget, checkoutLagEnd)
}

// checkoutRows prints the measurement and returns its rows: checkouts placed per second, and the
// orders projection's lag at the end.
func checkoutRows(c checkoutConfig, f checkoutFigures, out io.Writer) result {
	sr, refused, lag := f.sr, f.refused, f.lag
	rate := float64(sr.ops-refused) / sr.elapsed.Seconds()
	requests := 3 + map[bool]float64{true: 1}[c.promo]
	fmt.Fprintf(out, "   %s checkouts in %s: %s placed (%s checkouts/s, %s requests/s), %s refused for contention (409 \"too many\n",
		num(sr.ops), sr.elapsed.Round(time.Millisecond), num(sr.ops-refused), num(rate), num(requests*sr.rate()), num(refused))
	fmt.Fprintf(out, "   concurrent changes\" once the command's retries are spent: two orders for the last units of a product\n")
	fmt.Fprintf(out, "   meet on its stream); checkout p50 %s, p90 %s, p99 %s (placed and refused); CPU: %s\n", ms(sr.lat.p50), ms(sr.lat.p90),
		ms(sr.lat.p99), cpuUse(f.cpuA, f.cpuB))
	if f.accessLog != "" {
		fmt.Fprintf(out, "   (techvault serve counts as \"everything else\" in the CPU line)\n   access log: %s\n", f.accessLog)
	} else {
		fmt.Fprintf(out, "   %s warnings %q counted, not printed (no Stripe configured)\n", num(f.unpaid), paymentWarning)
	}
	var res result
	for _, x := range []row{
		{figure: fmt.Sprintf("checkout over HTTP, %d clients%s", c.clients, map[bool]string{false: ", no promo"}[c.promo]),
			measured: fmt.Sprintf("%s checkouts/s, p99 %s, %s refused", num(rate), ms(sr.lat.p99), num(refused)),
			baseline: "none (absolute target)", target: fmt.Sprintf(">= %d checkouts/s", checkoutTarget), met: rate >= checkoutTarget},
		{figure: "orders projection lag at the end of the burst", measured: lag.String(), baseline: "none (absolute target)",
			target: "< " + checkoutLagEnd.String(), met: lag.seconds < checkoutLagEnd.Seconds()},
	} {
		if !x.met {
			x.note = busyNote(f.cpuA, f.cpuB)
		}
		verdict(out, x)
		res.add(x)
	}
	return res
}

// endLag is a projector's lag the moment a load ends, and how long it took to catch up.
type endLag struct {
	events  int64
	seconds float64
	drain   time.Duration
}

func (l endLag) String() string {
	return fmt.Sprintf("%.2f s (%s events), caught up %s later", l.seconds, num(l.events), l.drain.Round(time.Millisecond))
}

// burstLag reads the orders projector's lag (projections status) and waits until it catches up.
func burstLag(ctx context.Context, a *appUnderTest) (endLag, error) {
	st, err := a.Checkpoints.Status(ctx, ordersProjector)
	if err != nil {
		return endLag{}, err
	}
	if len(st) != 1 {
		return endLag{}, fmt.Errorf("projections status has no %s projector", ordersProjector)
	}
	l := endLag{events: st[0].LagEvents, seconds: st[0].LagSeconds}
	l.drain, err = waitAllProjected(ctx, a, []string{ordersProjector}, 2*time.Minute)
	return l, err
}
