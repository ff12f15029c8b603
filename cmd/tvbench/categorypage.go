package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// categoryPageConfig holds the category-page benchmark's flags (the catalog is -products').
type categoryPageConfig struct{ wrkLoad }

func categoryPageFlags(fs *flag.FlagSet, c *config) {
	wrkLoadFlags(fs, "category-page", &c.categoryPage.wrkLoad)
}

func (c categoryPageConfig) validate() error { return c.wrkLoad.validate("category-page") }

const categoryPageTarget = 0.6 // ÷ GET /products/{id}

func benchCategoryPage(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c, sf := cfg.categoryPage, cfg.storefront
	fmt.Fprintf(out, "== category-page: GET /api/v1/products?category_id=...&sort=-price&limit=20, the first page of each of the %s\n", num(sf.categories))
	fmt.Fprintf(out, "   categories of a generated catalog of %s products, answered from the listings view (X-Read-Source: redis, every\n", num(sf.products))
	fmt.Fprintf(out, "   page checked before the load) vs anonymous GET /api/v1/products/{id} (1,000 ids), both by wrk -t%d -c%d against\n", c.threads, c.conns)
	fmt.Fprintf(out, "   one real `techvault serve` process (LOG_FORMAT=json LOG_LEVEL=info, access log to a file); %d rounds x %s per\n", c.rounds, c.duration)
	fmt.Fprintf(out, "   side (order alternating) after %s warm-up per side\n", c.warmup)
	return measureStorefrontRead(ctx, env, cfg, storefrontRead{bench: "category-page", side: "category", load: c.wrkLoad,
		figure: "category page from the Redis view", paths: categoryPaths(sf.categories, "-price", 20), source: "redis",
		target: func(f wrkFigures) (bool, string) {
			return f.ratio >= categoryPageTarget, fmt.Sprintf(">= %.1f", categoryPageTarget)
		}}, out)
}
