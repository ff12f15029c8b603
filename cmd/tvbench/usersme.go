package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	nethttp "net/http"
	"time"
)

// usersMeConfig holds the users-me benchmark's flags (the binary is -http-get-techvault's).
type usersMeConfig struct {
	wrkLoad
	products int
}

func usersMeFlags(fs *flag.FlagSet, c *config) {
	wrkLoadFlags(fs, "users-me", &c.usersMe.wrkLoad)
	fs.IntVar(&c.usersMe.products, "users-me-products", 1000, "users-me: products of the baseline (the ids wrk cycles over)")
}

func (c usersMeConfig) validate() error {
	if err := positive(map[string]int{"users-me-products": c.products}); err != nil {
		return err
	}
	return c.wrkLoad.validate("users-me")
}

const usersMeTarget = 0.7 // GET /users/me ÷ GET /products/{id}

func benchUsersMe(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.usersMe
	fmt.Fprintf(out, "== users-me: GET /api/v1/users/me with a customer's access token (wrk -H \"Authorization: Bearer ...\") vs\n")
	fmt.Fprintf(out, "   anonymous GET /api/v1/products/{id} (ids cycling over %s products), both driven by wrk -t%d -c%d against one\n",
		num(c.products), c.threads, c.conns)
	fmt.Fprintf(out, "   real `techvault serve` process (LOG_FORMAT=json LOG_LEVEL=info, access log to a file, abuse limits on: the\n")
	fmt.Fprintf(out, "   routes measured have none); %d rounds x %s per side (order alternating) after %s warm-up per side\n",
		c.rounds, c.duration, c.warmup)
	return measureCustomerRead(ctx, env, cfg.httpGet.techvault, customerRead{bench: "users-me", side: "users/me",
		path: "/api/v1/users/me", figure: "GET /users/me", load: c.wrkLoad, products: c.products, target: usersMeTarget}, out)
}

// customerRead is a customer's GET route measured under wrk against anonymous GET
// /products/{id} on one real techvault serve process.
type customerRead struct {
	bench    string // the benchmark's name (temporary directory)
	side     string // the side's name in the rounds
	path     string
	figure   string
	load     wrkLoad
	products int
	target   float64
	// prepare, when set, readies what the route reads (the server's URL, the customer's token,
	// the products' ids) before the warm-up.
	prepare func(ctx context.Context, base, token string, ids []int64, out io.Writer) error
}

// measureCustomerRead starts techvault serve on seeded products, registers a customer, prepares
// the route and measures it against GET /products/{id} (wrkRounds); it returns the row.
func measureCustomerRead(ctx context.Context, env *env, bin string, cr customerRead, out io.Writer) (result, error) {
	var res result
	wrk, dir, remove, err := wrkWorkspace(cr.bench)
	if err != nil {
		return res, err
	}
	defer remove()
	cat, err := startServedCatalog(ctx, env, bin, cr.products, dir, out)
	if err != nil {
		return res, err
	}
	defer cat.stop()
	token, err := customerToken(ctx, cat.url, out)
	if err != nil {
		return res, err
	}
	if cr.prepare != nil {
		if err := cr.prepare(ctx, cat.url, token, cat.ids, out); err != nil {
			return res, err
		}
	}
	cpuA := readCPU()
	f, err := wrkRounds(ctx, env, wrk, cr.load, [2]wrkTarget{
		{name: cr.side, url: cat.url + cr.path, headers: []string{"Authorization: Bearer " + token}},
		{name: "products", url: cat.url, script: cat.scriptPath}}, out)
	if err != nil {
		return res, err
	}
	cpuB := readCPU()
	fmt.Fprintf(out, "   access log: %s\n", cat.logSummary())
	fmt.Fprintf(out, "   (CPU lines: techvault serve and wrk are \"everything else\"; %s in all)\n", cpuUse(cpuA, cpuB))
	x := row{figure: fmt.Sprintf("%s, wrk -c%d, INFO access logs", cr.figure, cr.load.conns),
		measured: fmt.Sprintf("%s req/s, p99 %s", num(f.rates[0]), ms(f.p99s[0])),
		baseline: fmt.Sprintf("%s req/s, p99 %s (GET /products/{id})", num(f.rates[1]), ms(f.p99s[1])),
		ratio:    ratioStr(f.ratio), target: fmt.Sprintf(">= %.1f", cr.target), met: f.ratio >= cr.target}
	if !x.met {
		x.note = "techvault serve and wrk count as \"everything else\" in the CPU lines; rerun on a quiet machine"
	}
	verdict(out, x)
	res.add(x)
	return res, nil
}

// customerToken registers a customer through the served API and returns an access token for it
// (issueToken), once GET /users/me answers it (the users projection has the account).
func customerToken(ctx context.Context, base string, out io.Writer) (string, error) {
	client := &nethttp.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	acc, err := registerUser(ctx, client, base, 0)
	if err != nil {
		return "", err
	}
	token, err := issueToken(acc)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _, err := getOK(ctx, client, base+"/api/v1/users/me", token)
		if err == nil {
			// The body holds the account's (scratch) name and email: only its size is printed.
			fmt.Fprintf(out, "   checked: a customer registered through the API reads its account (%d bytes) with the token\n", len(b))
			return token, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("GET /users/me did not answer 200 within 30s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
