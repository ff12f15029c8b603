package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// catalogSearchConfig holds the catalog-search benchmark's flags (the catalog is -products').
type catalogSearchConfig struct {
	wrkLoad
	queries  int
	postgres bool
}

func catalogSearchFlags(fs *flag.FlagSet, c *config) {
	wrkLoadFlags(fs, "catalog-search", &c.catalogSearch.wrkLoad)
	fs.IntVar(&c.catalogSearch.queries, "catalog-search-queries", 200, "catalog-search: distinct two-word searches wrk cycles over")
	fs.BoolVar(&c.catalogSearch.postgres, "catalog-search-postgres", false,
		"catalog-search: send X-Min-Position: 0, so that every search is read from Postgres (not the in-process answer cache)")
}

func (c catalogSearchConfig) validate() error {
	if err := positive(map[string]int{"catalog-search-queries": c.queries}); err != nil {
		return err
	}
	return c.wrkLoad.validate("catalog-search")
}

// Issue 14's targets for a two-word search.
const (
	catalogSearchRate = 1000 // req/s
	catalogSearchP99  = 50 * time.Millisecond
)

func benchCatalogSearch(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c, sf := cfg.catalogSearch, cfg.storefront
	qs := searchQueries(c.queries)
	paths := make([]string, len(qs))
	for i, q := range qs {
		paths[i] = "/api/v1/products?q=" + url.QueryEscape(q) + "&limit=20"
	}
	from, headers, source, figure := "as a client sends it: the first read of each from Postgres, the next from the in-process answer cache until a change that may alter it",
		map[string]string(nil), "", "GET /products?q=<two words>&limit=20"
	if c.postgres {
		from, headers, source, figure = "with X-Min-Position: 0, so every search is read from Postgres", map[string]string{"X-Min-Position": "0"},
			"postgres", "GET /products?q=<two words>&limit=20 (Postgres)"
	}
	fmt.Fprintf(out, "== catalog-search: GET /api/v1/products?q=<two words>&limit=20 (ranked full-text search) cycling over %d\n", len(qs))
	fmt.Fprintf(out, "   searches of a brand and a kind (every other one with its last word cut short: %s) in a generated\n",
		strings.Join(qs[:min(4, len(qs))], ", "))
	fmt.Fprintf(out, "   catalog of %s products, vs anonymous GET /api/v1/products/{id} (1,000 ids), both by wrk -t%d -c%d against one\n", num(sf.products), c.threads, c.conns)
	fmt.Fprintf(out, "   real `techvault serve` process (LOG_FORMAT=json LOG_LEVEL=info, access log to a file); %d rounds x %s per side\n", c.rounds, c.duration)
	fmt.Fprintf(out, "   (order alternating) after %s warm-up per side; each search %s\n", c.warmup, from)
	return measureStorefrontRead(ctx, env, cfg, storefrontRead{bench: "catalog-search", side: "search", load: c.wrkLoad,
		figure: figure, paths: paths, source: source, headers: headers,
		target: func(f wrkFigures) (bool, string) {
			return f.rates[0] >= catalogSearchRate && f.p99s[0] < catalogSearchP99,
				fmt.Sprintf(">= %s req/s, p99 < %s", num(catalogSearchRate), ms(catalogSearchP99))
		}}, out)
}
