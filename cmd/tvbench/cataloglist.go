package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// catalogListConfig holds the catalog-list benchmark's flags (the catalog is -products').
type catalogListConfig struct {
	wrkLoad
	pages    int
	postgres bool
}

func catalogListFlags(fs *flag.FlagSet, c *config) {
	wrkLoadFlags(fs, "catalog-list", &c.catalogList.wrkLoad)
	fs.IntVar(&c.catalogList.pages, "catalog-list-pages", 3, "catalog-list: pages of each category wrk cycles over (the first, then its next_cursor followed)")
	fs.BoolVar(&c.catalogList.postgres, "catalog-list-postgres", false,
		"catalog-list: each category's first page only, sent with X-Min-Position: 0 so that every listing is read from Postgres")
}

func (c catalogListConfig) validate() error {
	if err := positive(map[string]int{"catalog-list-pages": c.pages}); err != nil {
		return err
	}
	return c.wrkLoad.validate("catalog-list")
}

// Issue 14's targets for the category listing read from Postgres.
const (
	catalogListRate  = 2000 // req/s
	catalogListRatio = 0.3  // ÷ GET /products/{id}
)

func benchCatalogList(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c, sf := cfg.catalogList, cfg.storefront
	sr := storefrontRead{bench: "catalog-list", side: "listing", load: c.wrkLoad,
		figure: fmt.Sprintf("GET /products?category_id=…&sort=-price&limit=20, pages 1-%d as a shopper pages", c.pages),
		paths:  categoryPaths(sf.categories, "-price", 20), pages: c.pages,
		target: func(f wrkFigures) (bool, string) {
			return f.rates[0] >= catalogListRate && f.ratio >= catalogListRatio,
				fmt.Sprintf(">= %s req/s and >= %.1f", num(catalogListRate), catalogListRatio)
		}}
	how := fmt.Sprintf("and its next %d pages (next_cursor followed), as a shopper sends them: the first page from\n", c.pages-1) +
		"   the listings view, a next page read from Postgres (the keyset query on products_category_price_idx) the first\n" +
		"   time, then from the in-process answer cache until a change that may alter it"
	if c.postgres {
		sr.figure, sr.pages, sr.headers, sr.source = "GET /products?category_id=…&sort=-price&limit=20 (Postgres)", 1,
			map[string]string{"X-Min-Position": "0"}, "postgres"
		how = "sent with X-Min-Position: 0 so that the API answers from Postgres (the keyset query on\n" +
			"   products_category_price_idx, not the listings view: category-page measures that)"
	}
	fmt.Fprintf(out, "== catalog-list: GET /api/v1/products?category_id=...&sort=-price&limit=20 cycling over the %s categories of a\n", num(sf.categories))
	fmt.Fprintf(out, "   generated catalog of %s products, each category's first page %s;\n", num(sf.products), how)
	fmt.Fprintf(out, "   vs anonymous GET /api/v1/products/{id} (1,000 ids), both by wrk -t%d -c%d against one real `techvault serve`\n", c.threads, c.conns)
	fmt.Fprintf(out, "   process (LOG_FORMAT=json LOG_LEVEL=info, access log to a file); %d rounds x %s per side (order alternating)\n",
		c.rounds, c.duration)
	fmt.Fprintf(out, "   after %s warm-up per side\n", c.warmup)
	return measureStorefrontRead(ctx, env, cfg, sr, out)
}
