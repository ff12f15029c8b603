// Command tvbench measures Tech Vault against same-run baselines:
//
//	go run ./cmd/tvbench [flags] all|append|lag|rebuild|http [flags]
//
// Every benchmark works in a scratch database of its own (CREATE DATABASE tvbench_<random> on the
// server of TEST_DATABASE_URL, migrated, dropped WITH (FORCE) at the end, on failure and on
// Ctrl-C) and a Redis key prefix of its own (deleted at the end). Nothing is asserted: the tool
// measures, prints one block per benchmark and a summary table, and exits non-zero only when a
// benchmark could not run.
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
	"text/tabwriter"
	"time"
)

// config holds every flag.
type config struct {
	adminURL      string
	redisURL      string
	checkpoint    bool
	cpuProfileDir string

	appendWriters  int
	appendDuration time.Duration
	appendWarmup   time.Duration
	appendRounds   int

	lagRate     int
	lagDuration time.Duration
	lagWarmup   time.Duration
	lagPoll     time.Duration
	lagWriters  int
	lagProducts int
	lagCards    bool
	lagBatch    int
	lagUpdates  int
	lagHistory  int
	lagOnly     bool

	rebuildEvents     int
	rebuildPerProduct int
	rebuildBatch      int
	rebuildLoaders    int
	rebuildRounds     int
	rebuildTimeout    time.Duration

	httpConns     int
	httpDuration  time.Duration
	httpWarmup    time.Duration
	httpRounds    int
	httpProducts  int
	httpBreakdown bool
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

	fs.IntVar(&cfg.appendWriters, "append-writers", 32, "append: concurrent writers (and pool size)")
	fs.DurationVar(&cfg.appendDuration, "append-duration", 5*time.Second, "append: measured time per side per round")
	fs.DurationVar(&cfg.appendWarmup, "append-warmup", 2*time.Second, "append: warm-up per side")
	fs.IntVar(&cfg.appendRounds, "append-rounds", 3, "append: rounds (each measures both sides, order alternating)")

	fs.IntVar(&cfg.lagRate, "lag-rate", 1000, "lag: appends per second")
	fs.DurationVar(&cfg.lagDuration, "lag-duration", 15*time.Second, "lag: measured time")
	fs.DurationVar(&cfg.lagWarmup, "lag-warmup", 3*time.Second, "lag: warm-up at the same rate before measuring")
	fs.DurationVar(&cfg.lagPoll, "lag-poll", time.Millisecond, "lag: pause between visibility polls of each watcher")
	fs.IntVar(&cfg.lagWriters, "lag-writers", 16, "lag: writers sharing the paced load")
	fs.IntVar(&cfg.lagProducts, "lag-products", 1000, "lag: products the events are spread over")
	fs.BoolVar(&cfg.lagCards, "lag-cards", true, "lag: also run the Redis product cards view, as serve does")
	fs.IntVar(&cfg.lagUpdates, "lag-update-every", 5, "lag: every Nth event of a product is a ProductUpdated, the rest ProductStockAdjusted (0: none)")
	fs.IntVar(&cfg.lagHistory, "lag-history", 0, "lag: events already in the log (other products, 20 each), projected before measuring")
	fs.IntVar(&cfg.lagBatch, "lag-batch", 0, "lag: EngineConfig.BatchSize (0: the engine's default, as serve)")
	fs.BoolVar(&cfg.lagOnly, "lag-products-only", false, "lag: run only the products projector (serve runs all)")

	fs.IntVar(&cfg.rebuildEvents, "rebuild-events", 1_000_000, "rebuild: events in the log")
	fs.IntVar(&cfg.rebuildPerProduct, "rebuild-per-product", 20, "rebuild: events per product (products = events / this)")
	fs.IntVar(&cfg.rebuildBatch, "rebuild-batch", 5000, "rebuild: events per Append while generating the log")
	fs.IntVar(&cfg.rebuildLoaders, "rebuild-loaders", 3, "rebuild: concurrent appenders while generating the log")
	fs.IntVar(&cfg.rebuildRounds, "rebuild-rounds", 1, "rebuild: rebuilds to time (each between two plain reads)")
	fs.DurationVar(&cfg.rebuildTimeout, "rebuild-timeout", 150*time.Second, "rebuild: stop a rebuild after this long and report the rate it reached")

	fs.IntVar(&cfg.httpConns, "http-conns", 64, "http: concurrent keep-alive connections")
	fs.DurationVar(&cfg.httpDuration, "http-duration", 10*time.Second, "http: measured time per side per round")
	fs.DurationVar(&cfg.httpWarmup, "http-warmup", 2*time.Second, "http: warm-up per side")
	fs.IntVar(&cfg.httpRounds, "http-rounds", 2, "http: rounds (each measures both sides, order alternating)")
	fs.IntVar(&cfg.httpProducts, "http-products", 1000, "http: products seeded (ids cycle over them)")
	fs.BoolVar(&cfg.httpBreakdown, "http-breakdown", false, "http: also measure a bare handler that makes the real one's Redis GET (diagnostic)")
	return fs
}

const usageHead = `usage: tvbench [flags] all|append|lag|rebuild|http [flags]

  append   one-event Store.Append to distinct streams vs raw INSERTs into a plain table (target ratio >= 0.7)
  lag      commit -> visible in the products read table at a steady rate (target p99 < 100 ms)
  rebuild  projections.Rebuild of products over the log (target >= 30,000 events/s)
  http     GET /api/v1/products/{id} on the real API vs a bare Gin handler (target ratio >= 0.5)
  all      the four, in that order, then a summary table

flags:
`

func (c config) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"append-writers", c.appendWriters}, {"append-rounds", c.appendRounds}, {"lag-rate", c.lagRate},
		{"lag-writers", c.lagWriters}, {"lag-products", c.lagProducts}, {"rebuild-events", c.rebuildEvents},
		{"rebuild-per-product", c.rebuildPerProduct}, {"rebuild-batch", c.rebuildBatch}, {"rebuild-loaders", c.rebuildLoaders},
		{"rebuild-rounds", c.rebuildRounds}, {"http-conns", c.httpConns}, {"http-rounds", c.httpRounds}, {"http-products", c.httpProducts}} {
		if f.v <= 0 {
			return fmt.Errorf("-%s must be positive, got %d", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"append-duration", c.appendDuration}, {"lag-duration", c.lagDuration}, {"lag-poll", c.lagPoll},
		{"rebuild-timeout", c.rebuildTimeout}, {"http-duration", c.httpDuration}} {
		if f.v <= 0 {
			return fmt.Errorf("-%s must be positive, got %s", f.name, f.v)
		}
	}
	if c.lagRate > 100_000 {
		return fmt.Errorf("-lag-rate above 100,000/s is not supported, got %d", c.lagRate)
	}
	if c.lagWriters > c.lagProducts {
		return fmt.Errorf("-lag-writers (%d) must not exceed -lag-products (%d): each writer owns products", c.lagWriters, c.lagProducts)
	}
	return nil
}

// benchmark is one runnable benchmark.
type benchmark struct {
	name string
	run  func(ctx context.Context, env *env, cfg config, out io.Writer) (result, error)
}

var benchmarks = []benchmark{
	{"append", benchAppend},
	{"lag", benchLag},
	{"rebuild", benchRebuild},
	{"http", benchHTTP},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfg config
	fs := newFlagSet(&cfg)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	which := fs.Arg(0)
	// Flags may also follow the benchmark name.
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tvbench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(stderr, "tvbench:", err)
		return 2
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
		return 2
	}

	env, err := newEnv(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "tvbench:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
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

	fmt.Fprintf(stdout, "tvbench: %s on %s/%s, %d CPUs (GOMAXPROCS %d), %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), env.serverInfo(ctx))
	fmt.Fprintf(stdout, "tvbench: Postgres server %s, Redis %s. Figures are medians of alternating runs; nothing is asserted.\n",
		maskURL(cfg.adminURL), maskURL(cfg.redisURL))

	var results []result
	failed := false
	start := time.Now()
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
	env.cleanup.runAll()
	printSummary(stdout, results, time.Since(start))
	if ctx.Err() != nil {
		return 130
	}
	if failed {
		return 1
	}
	return 0
}

// result is one benchmark's line in the summary.
type result struct {
	name     string
	figure   string
	baseline string
	ratio    string
	target   string
	met      bool
	note     string
	err      error
}

func printSummary(w io.Writer, results []result, took time.Duration) {
	fmt.Fprintf(w, "\n== summary (%s in all)\n", took.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tfigure\tsame-run baseline\tratio\ttarget\tmet?")
	fmt.Fprintln(tw, "---------\t------\t-----------------\t-----\t------\t----")
	for _, r := range results {
		met := "yes"
		if !r.met {
			met = "NO"
		}
		if r.note != "" {
			met += " (" + r.note + ")"
		}
		if r.err != nil {
			met = "error: " + firstLine(r.err.Error())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, dash(r.figure), dash(r.baseline), dash(r.ratio), dash(r.target), met)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "ratio: append = Store.Append / raw INSERT rate and http = real API / bare Gin rate, each the median of the")
	fmt.Fprintln(w, "per-round ratios (sides measured back to back); lag = projection p99 / plain-visibility p99 (the target is on")
	fmt.Fprintln(w, "the p99 itself); rebuild = rebuild / plain read rate. Targets are the issue's; each block above says how its")
	fmt.Fprintln(w, "figure was measured. Go, Postgres and Redis share this machine's CPUs: a busy machine moves every figure.")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
