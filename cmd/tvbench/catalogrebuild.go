package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"
)

// catalogRebuildConfig holds the catalog-rebuild benchmark's flags (the catalog is -products').
type catalogRebuildConfig struct {
	timeout time.Duration
}

func catalogRebuildFlags(fs *flag.FlagSet, c *config) {
	fs.DurationVar(&c.catalogRebuild.timeout, "catalog-rebuild-timeout", 5*time.Minute, "catalog-rebuild: give up on the rebuilds after this long")
}

func (c catalogRebuildConfig) validate() error {
	return positive(map[string]time.Duration{"catalog-rebuild-timeout": c.timeout})
}

const catalogRebuildTarget = 100_000 // events/s

func benchCatalogRebuild(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	sf := cfg.storefront
	fmt.Fprintf(out, "== catalog-rebuild: projections.RebuildAll of every catalog projector (%s), one after the other, over the log of a\n", projectorList())
	fmt.Fprintf(out, "   generated catalog of %s products in %s categories (%d events per product, and the categories' CategoryReferenced as\n",
		num(sf.products), num(sf.categories), sf.perProduct)
	fmt.Fprintf(out, "   the commands record them); the figure is the log's events over the rebuilds' total time; baseline: a plain\n")
	fmt.Fprintf(out, "   sequential read of the same log with eventstore.Scan\n")
	db, err := env.newDB(ctx, int32(sf.loaders+4), nil)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	gen, err := generateStorefront(ctx, env, db, sf)
	if err != nil {
		return result{}, err
	}
	fmt.Fprintf(out, "   log: %s events generated in %s (Store.Append, %s products per call, %d appenders)\n",
		num(gen.events), gen.took.Round(time.Millisecond), num(sf.batch), sf.loaders)
	n, readTook, _, err := readLog(ctx, db.Pool, 0)
	if err != nil {
		return result{}, fmt.Errorf("reading the log: %w", err)
	}
	readRate := float64(n) / readTook.Seconds()
	fmt.Fprintf(out, "   read     %s events in %s: %s events/s\n", num(n), readTook.Round(time.Millisecond), num(readRate))
	stop := env.profile("catalog-rebuild")
	cpuA := readCPU()
	rctx, cancel := context.WithTimeout(ctx, cfg.catalogRebuild.timeout)
	start := time.Now()
	stats, err := rebuildCatalog(rctx, env, db)
	wall := time.Since(start)
	cancel()
	cpuB := readCPU()
	stop()
	if err != nil {
		return result{}, err
	}
	for _, st := range stats {
		fmt.Fprintf(out, "   rebuild  %-10s read %s events in %s: %s events/s (load %s, set logged %s, indexes %s, swap %s)\n",
			st.Projector, num(st.Events), st.Duration.Round(time.Millisecond), num(st.EventsPerSecond()),
			st.Load.Round(time.Millisecond), st.Durable.Round(time.Millisecond), st.Index.Round(time.Millisecond), st.Swap.Round(time.Millisecond))
	}
	var products, categories int64
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM categories)`).Scan(&products, &categories); err != nil {
		return result{}, err
	}
	if products != int64(sf.products) || categories != int64(sf.categories) {
		return result{}, fmt.Errorf("after the rebuilds: %d products and %d categories, want %d and %d", products, categories, sf.products, sf.categories)
	}
	fmt.Fprintf(out, "   check: %s products and %s categories rebuilt; CPU: %s\n", num(products), num(categories), cpuUse(cpuA, cpuB))
	rate := float64(gen.events) / wall.Seconds()
	x := row{figure: fmt.Sprintf("rebuild every catalog projection, %s events", num(gen.events)), measured: num(rate) + " events/s",
		baseline: num(readRate) + " events/s (plain read)", ratio: ratioStr(rate / readRate),
		target: ">= " + num(catalogRebuildTarget) + " events/s", met: rate >= catalogRebuildTarget}
	if !x.met {
		x.note = busyNote(cpuA, cpuB)
	}
	verdict(out, x)
	return result{rows: []row{x}}, nil
}
