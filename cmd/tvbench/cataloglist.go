package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// catalogListConfig holds the catalog-list benchmark's flags (the catalog is -products').
type catalogListConfig struct{ wrkLoad }

func catalogListFlags(fs *flag.FlagSet, c *config) {
	wrkLoadFlags(fs, "catalog-list", &c.catalogList.wrkLoad)
}

func (c catalogListConfig) validate() error { return c.wrkLoad.validate("catalog-list") }

// Issue 14's targets for the category listing read from Postgres.
const (
	catalogListRate  = 2000 // req/s
	catalogListRatio = 0.3  // ÷ GET /products/{id}
)

func benchCatalogList(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c, sf := cfg.catalogList, cfg.storefront
	fmt.Fprintf(out, "== catalog-list: GET /api/v1/products?category_id=...&sort=-price&limit=20 cycling over the %s categories of a\n", num(sf.categories))
	fmt.Fprintf(out, "   generated catalog of %s products, sent with X-Min-Position: 0 so that the API answers from Postgres (the\n", num(sf.products))
	fmt.Fprintf(out, "   keyset query on products_category_price_idx, not the listings view: category-page measures that) vs anonymous\n")
	fmt.Fprintf(out, "   GET /api/v1/products/{id} (1,000 ids), both by wrk -t%d -c%d against one real `techvault serve` process\n", c.threads, c.conns)
	fmt.Fprintf(out, "   (LOG_FORMAT=json LOG_LEVEL=info, access log to a file); %d rounds x %s per side (order alternating) after %s\n",
		c.rounds, c.duration, c.warmup)
	fmt.Fprintf(out, "   warm-up per side\n")
	return measureStorefrontRead(ctx, env, cfg, storefrontRead{bench: "catalog-list", side: "listing", load: c.wrkLoad,
		figure: "GET /products?category_id=…&sort=-price&limit=20 (Postgres)", paths: categoryPaths(sf.categories, "-price", 20),
		headers: map[string]string{"X-Min-Position": "0"}, source: "postgres",
		target: func(f wrkFigures) (bool, string) {
			return f.rates[0] >= catalogListRate && f.ratio >= catalogListRatio,
				fmt.Sprintf(">= %s req/s and >= %.1f", num(catalogListRate), catalogListRatio)
		}}, out)
}
