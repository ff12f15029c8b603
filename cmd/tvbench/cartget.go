package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	nethttp "net/http"
	"time"
)

// cartGetConfig holds the cart-get benchmark's flags (the binary is -http-get-techvault's).
type cartGetConfig struct {
	wrkLoad
	products int
}

func cartGetFlags(fs *flag.FlagSet, c *config) {
	wrkLoadFlags(fs, "cart-get", &c.cartGet.wrkLoad)
	fs.IntVar(&c.cartGet.products, "cart-get-products", 1000, "cart-get: products of the baseline (the ids wrk cycles over)")
}

func (c cartGetConfig) validate() error {
	if err := positive(map[string]int{"cart-get-products": c.products}); err != nil {
		return err
	}
	if c.products < cartGetLines {
		return fmt.Errorf("-cart-get-products must be at least %d (the cart's lines)", cartGetLines)
	}
	return c.wrkLoad.validate("cart-get")
}

const (
	cartGetTarget = 0.7 // GET /cart ÷ GET /products/{id}
	cartGetLines  = 3   // lines of the cart read
)

func benchCartGet(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.cartGet
	fmt.Fprintf(out, "== cart-get: GET /api/v1/cart of a customer with a %d-line cart (its access token: wrk -H \"Authorization: Bearer\n", cartGetLines)
	fmt.Fprintf(out, "   ...\"; one batch of two queries on the read models in Postgres: the cart with its promo, its lines joined to\n")
	fmt.Fprintf(out, "   the products' current prices) vs anonymous GET /api/v1/products/{id} (ids cycling over %s products), both\n",
		num(c.products))
	fmt.Fprintf(out, "   driven by wrk -t%d -c%d against one real `techvault serve` process (LOG_FORMAT=json LOG_LEVEL=info, access\n",
		c.threads, c.conns)
	fmt.Fprintf(out, "   log to a file, abuse limits on: neither route has one); %d rounds x %s per side (order alternating) after\n",
		c.rounds, c.duration)
	fmt.Fprintf(out, "   %s warm-up per side\n", c.warmup)
	return measureCustomerRead(ctx, env, cfg.httpGet.techvault, customerRead{bench: "cart-get", side: "cart",
		path: "/api/v1/cart", figure: fmt.Sprintf("GET /cart (%d lines)", cartGetLines), load: c.wrkLoad, products: c.products,
		target: cartGetTarget, prepare: fillServedCart}, out)
}

// fillServedCart adds the first products to the customer's cart through the served API and waits
// until GET /cart shows every line (the carts projection has them).
func fillServedCart(ctx context.Context, base, token string, ids []int64, out io.Writer) error {
	client := &nethttp.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for _, id := range ids[:cartGetLines] {
		body := fmt.Appendf(nil, `{"product_id":%d,"quantity":2}`, id)
		if err := postJSON(ctx, client, base+"/api/v1/cart/items", token, body, nethttp.StatusCreated, nil); err != nil {
			return fmt.Errorf("AddToCart: %w", err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _, err := getOK(ctx, client, base+"/api/v1/cart", token)
		var cart struct {
			Lines []json.RawMessage `json:"lines"`
		}
		if err == nil {
			err = json.Unmarshal(b, &cart)
		}
		if err == nil && len(cart.Lines) == cartGetLines {
			fmt.Fprintf(out, "   checked: the customer's GET /cart answers its %d lines (%d bytes)\n", cartGetLines, len(b))
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("GET /cart did not show %d lines within 30s (error: %w)", cartGetLines, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
