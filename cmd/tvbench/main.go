// Command tvbench measures Tech Vault against same-run baselines:
//
//	go run ./cmd/tvbench [flags] all|append|lag|saturation|commands|rebuild|http-get|signin|users-me|checkout|cart|cart-get|
//	    catalog-list|catalog-search|category-page|catalog-rebuild [flags]
//
// Every benchmark works in a scratch database of its own (CREATE DATABASE tvbench_<random> on the
// server of TEST_DATABASE_URL, migrated, dropped WITH (FORCE) at the end, on failure and on
// Ctrl-C) and a Redis key prefix of its own (deleted at the end). The application under test is
// built by internal/app, as `techvault serve` builds it (http-get, users-me and cart-get run the
// real binary). Nothing is asserted: the tool measures, prints one block per benchmark, each
// figure as a ratio to a baseline measured in the same run, and a summary table; it exits non-zero
// only when a benchmark could not run. One file per benchmark; env.go, stats.go, wrk.go (driving
// wrk), accounts.go (the API's accounts and JSON calls), shopdata.go (the order platform's
// customers, products, promo code and checkout calls) and storefront.go (issue 14's generated
// catalog and its served reads) hold what they share.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// config holds every flag; each benchmark's file registers its own.
type config struct {
	adminURL      string
	redisURL      string
	checkpoint    bool
	cpuProfileDir string

	append     appendConfig
	lag        lagConfig
	saturation saturationConfig
	commands   commandsConfig
	rebuild    rebuildConfig
	httpGet    httpGetConfig
	signin     signinConfig
	usersMe    usersMeConfig
	checkout   checkoutConfig
	cart       cartConfig
	cartGet    cartGetConfig

	storefront     storefrontConfig
	catalogList    catalogListConfig
	catalogSearch  catalogSearchConfig
	categoryPage   categoryPageConfig
	catalogRebuild catalogRebuildConfig
}

// benchmark is one runnable benchmark: its name, a line for the usage text, its flags and run.
type benchmark struct {
	name  string
	about string
	flags func(fs *flag.FlagSet, c *config)
	run   func(ctx context.Context, env *env, cfg config, out io.Writer) (result, error)
}

var benchmarks = []benchmark{
	{"append", "Store.Append, 32 writers, vs raw INSERT (target ratio >= 0.9)", appendFlags, benchAppend},
	{"lag", "commit -> visible in products at 1,000 appends/s, API serving (target p99 < 20 ms)", lagFlags, benchLag},
	{"saturation", "32 appenders flat out, 2 then 8 projectors (projected/appended >= 1.0, 8/2 >= 0.5)", saturationFlags, benchSaturation},
	{"commands", "POST /products/{id}/stock over HTTP on 10,000- vs 10-event streams (target >= 0.8)", commandsFlags, benchCommands},
	{"rebuild", "Rebuild(products) over 1M events vs a plain read (target >= 100,000 events/s)", rebuildFlags, benchRebuild},
	{"http-get", "wrk -t2 -c32 GET /products/{id}: techvault serve vs bare Gin (target >= 0.7)", httpGetFlags, benchHTTPGet},
	{"signin", "16 clients POST /auth/login over HTTP vs bare argon2id checks, same params (target >= 0.8)", signinFlags, benchSignin},
	{"users-me", "wrk -t2 -c32 GET /users/me vs GET /products/{id}, one techvault serve (target >= 0.7)", usersMeFlags, benchUsersMe},
	{"checkout", "16 clients loop whole checkouts over HTTP (target >= 550/s; orders lag at the end < 1 s)", checkoutFlags, benchCheckout},
	{"cart", "AddToCart (32 clients), PlaceOrder (16) vs Store.Append; PlaceOrder after -cart-orders orders (>= 0.8, 0.5, 0.9x)", cartFlags, benchCart},
	{"cart-get", "wrk -t2 -c32 GET /cart (3 lines) vs GET /products/{id}, one techvault serve (target >= 0.7)", cartGetFlags, benchCartGet},
	{"catalog-list", "wrk -t2 -c32 category listing by -price from Postgres, -products catalog (>= 2,000 req/s and >= 0.3x GET /products/{id})", catalogListFlags, benchCatalogList},
	{"catalog-search", "wrk -t2 -c32 two-word search, -products catalog (>= 1,000 req/s, p99 < 50 ms)", catalogSearchFlags, benchCatalogSearch},
	{"category-page", "wrk -t2 -c32 category pages from the Redis view, -products catalog (>= 0.6x GET /products/{id})", categoryPageFlags, benchCategoryPage},
	{"catalog-rebuild", "Rebuild every catalog projector over the -products catalog's log (>= 100,000 events/s)", catalogRebuildFlags, benchCatalogRebuild},
}

func envOr(def string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	return def
}

func newFlagSet(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("tvbench", flag.ContinueOnError)
	fs.StringVar(&cfg.adminURL, "admin-url", envOr("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "TEST_DATABASE_URL"),
		"server on which scratch databases are created (env TEST_DATABASE_URL)")
	fs.StringVar(&cfg.redisURL, "redis-url", envOr("redis://127.0.0.1:6379/0", "TEST_REDIS_URL"), "Redis (env TEST_REDIS_URL)")
	fs.BoolVar(&cfg.checkpoint, "checkpoint", true, "run CHECKPOINT before each measured side of the append benchmark (needs superuser; cluster-wide)")
	fs.StringVar(&cfg.cpuProfileDir, "cpuprofile-dir", "", "write a Go CPU profile of the first measured round of each side into this directory")
	storefrontFlags(fs, cfg)
	for _, b := range benchmarks {
		b.flags(fs, cfg)
	}
	return fs
}

func usage(fs *flag.FlagSet, w io.Writer) func() {
	return func() {
		fmt.Fprintf(w, "usage: tvbench [flags] all|<benchmark> [flags]\n\n")
		for _, b := range benchmarks {
			fmt.Fprintf(w, "  %-15s %s\n", b.name, b.about)
		}
		fmt.Fprintf(w, "  %-15s every benchmark, in that order, then a summary table\n\nflags:\n", "all")
		fs.PrintDefaults()
	}
}

// positive reports the first of the named values that is not positive.
func positive[T int | time.Duration](vals map[string]T) error {
	for name, v := range vals {
		if v <= 0 {
			return fmt.Errorf("-%s must be positive, got %v", name, v)
		}
	}
	return nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == bareGinCommand {
		os.Exit(runBareGin(os.Args[2:], os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parseArgs parses flags before and after the benchmark's name and selects the benchmarks.
func parseArgs(args []string, cfg *config, stderr io.Writer) ([]benchmark, int) {
	fs := newFlagSet(cfg)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return nil, 2
	}
	which := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tvbench: unexpected arguments %q\n", fs.Args())
		return nil, 2
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(stderr, "tvbench:", err)
		return nil, 2
	}
	var selected []benchmark
	for _, b := range benchmarks {
		if which == "all" || which == b.name {
			selected = append(selected, b)
		}
	}
	if len(selected) == 0 {
		fmt.Fprintf(stderr, "tvbench: unknown benchmark %q\n\n", which)
		fs.Usage()
		return nil, 2
	}
	return selected, -1
}

func (c config) validate() error {
	for _, err := range []error{c.append.validate(), c.lag.validate(), c.saturation.validate(),
		c.commands.validate(), c.rebuild.validate(), c.httpGet.validate(), c.signin.validate(), c.usersMe.validate(),
		c.checkout.validate(), c.cart.validate(), c.cartGet.validate(), c.storefront.validate(), c.catalogList.validate(),
		c.catalogSearch.validate(), c.categoryPage.validate(), c.catalogRebuild.validate()} {
		if err != nil {
			return err
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfg config
	selected, code := parseArgs(args, &cfg, stderr)
	if code >= 0 {
		return code
	}
	env, err := newEnv(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "tvbench:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopSignals := onInterrupt(cancel, env, stderr)
	defer stopSignals()

	fmt.Fprintf(stdout, "tvbench: %s on %s/%s, %d CPUs (GOMAXPROCS %d), %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), env.serverInfo(ctx))
	fmt.Fprintf(stdout, "tvbench: Postgres server %s, Redis %s. Each figure is a ratio to a baseline of the same run; nothing is asserted.\n",
		maskURL(cfg.adminURL), maskURL(cfg.redisURL))
	start := time.Now()
	results, failed := runAll(ctx, env, cfg, selected, stdout)
	env.cleanup.runAll()
	printSummary(stdout, results, time.Since(start))
	switch {
	case ctx.Err() != nil:
		return 130
	case failed:
		return 1
	}
	return 0
}

func runAll(ctx context.Context, env *env, cfg config, selected []benchmark, stdout io.Writer) ([]result, bool) {
	var results []result
	failed := false
	for _, b := range selected {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stdout, "\n")
		bstart := time.Now()
		res, err := b.run(ctx, env, cfg, stdout)
		res.name = b.name
		if err != nil && ctx.Err() != nil {
			err = errInterrupted
		}
		if err != nil {
			failed = true
			res.err = err
			fmt.Fprintf(stdout, "   %s FAILED: %v\n", b.name, err)
		}
		fmt.Fprintf(stdout, "   (%s took %s)\n", b.name, time.Since(bstart).Round(time.Second))
		results = append(results, res)
	}
	return results, failed
}

// onInterrupt cancels the run on the first Ctrl-C and forces the cleanup on the second.
func onInterrupt(cancel func(), env *env, stderr io.Writer) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		fmt.Fprintln(stderr, "\ntvbench: interrupted; stopping and dropping scratch databases (Ctrl-C again to force)")
		cancel()
		select {
		case <-sigs:
		case <-time.After(45 * time.Second):
		}
		fmt.Fprintln(stderr, "tvbench: forcing cleanup")
		env.cleanup.runAll()
		os.Exit(130)
	}()
	return func() { signal.Stop(sigs) }
}
