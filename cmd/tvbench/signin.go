package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	nethttp "net/http"
	"runtime"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/techvault/techvault/auth"
)

// signinConfig holds the signin benchmark's flags.
type signinConfig struct {
	clients  int
	users    int
	duration time.Duration
	warmup   time.Duration
	rounds   int
}

func signinFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.signin.clients, "signin-clients", 16, "signin: concurrent sign-in clients (and bare hashing goroutines)")
	fs.IntVar(&c.signin.users, "signin-users", 64, "signin: accounts registered through the API, signed in at random")
	fs.DurationVar(&c.signin.duration, "signin-duration", 10*time.Second, "signin: measured time per side per round")
	fs.DurationVar(&c.signin.warmup, "signin-warmup", 2*time.Second, "signin: warm-up per side")
	fs.IntVar(&c.signin.rounds, "signin-rounds", 3, "signin: rounds (each measures both sides, order alternating)")
}

func (c signinConfig) validate() error {
	if err := positive(map[string]int{"signin-clients": c.clients, "signin-users": c.users, "signin-rounds": c.rounds}); err != nil {
		return err
	}
	return positive(map[string]time.Duration{"signin-duration": c.duration})
}

const signinTarget = 0.8 // sign-ins/s ÷ bare hashes/s

func benchSignin(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.signin
	p := auth.DefaultParams
	fmt.Fprintf(out, "== signin: POST /api/v1/auth/login through HTTP to the application as serve builds it (internal/app, served\n")
	fmt.Fprintf(out, "   on 127.0.0.1, abuse limits off), %d keep-alive clients signing in as %d accounts at random, vs %d goroutines\n",
		c.clients, c.users, c.clients)
	fmt.Fprintf(out, "   calling argon2id.ComparePasswordAndHash bare, same params (auth.DefaultParams: m=%d KiB, t=%d, p=%d);\n",
		p.Memory, p.Iterations, p.Parallelism)
	fmt.Fprintf(out, "   the server hashes at most %d at once (auth's bound, 2 x GOMAXPROCS), the bare side all %d; %d rounds x %s\n",
		2*runtime.GOMAXPROCS(0), c.clients, c.rounds, c.duration)
	fmt.Fprintf(out, "   per side (order alternating) after %s warm-up per side, both sides in this one process\n", c.warmup)
	var res result
	db, err := env.newDB(ctx, int32(c.clients+8), nil)
	if err != nil {
		return res, err
	}
	defer db.Close()
	a, err := env.startApp(ctx, db, nil, withoutLimits)
	if err != nil {
		return res, err
	}
	defer a.Close()
	client := loadClient(c.clients)
	defer client.CloseIdleConnections()
	sides, err := signinSides(ctx, client, a.URL, c, out)
	if err != nil {
		return res, err
	}
	cpuA := readCPU()
	f, err := sideRounds(ctx, env, c.rounds, c.warmup, c.duration, sides, out)
	if err != nil {
		return res, err
	}
	cpuB := readCPU()
	fmt.Fprintf(out, "   CPU during the rounds: %s\n", cpuUse(cpuA, cpuB))
	x := row{figure: fmt.Sprintf("sign-in over HTTP, %d clients", c.clients), measured: num(f.rates[0]) + " sign-ins/s",
		baseline: num(f.rates[1]) + " bare argon2id checks/s", ratio: ratioStr(f.ratio),
		target: fmt.Sprintf(">= %.1f", signinTarget), met: f.ratio >= signinTarget}
	if !x.met {
		x.note = busyNote(cpuA, cpuB)
	}
	verdict(out, x)
	res.add(x)
	return res, nil
}

// signinSides registers the accounts through the API, checks that one signs in, and returns the
// two sides: sign-in over HTTP, the bare argon2id check.
func signinSides(ctx context.Context, client *nethttp.Client, base string, c signinConfig, out io.Writer) ([2]measuredSide, error) {
	var sides [2]measuredSide
	t0 := time.Now()
	if err := registerUsers(ctx, client, base, c.users, min(c.clients, 4)); err != nil {
		return sides, err
	}
	var session struct {
		AccessToken string `json:"access_token"`
	}
	url := base + "/api/v1/auth/login"
	if err := postJSON(ctx, client, url, "", loginBody(0), nethttp.StatusOK, &session); err != nil {
		return sides, fmt.Errorf("signing in: %w", err)
	}
	if session.AccessToken == "" {
		return sides, errors.New("signing in: the answer has no access_token")
	}
	fmt.Fprintf(out, "   %d accounts registered through POST /api/v1/auth/register in %s; a sign-in answers an access token\n",
		c.users, time.Since(t0).Round(time.Millisecond))
	bodies := make([][]byte, c.users)
	for i := range bodies {
		bodies[i] = loginBody(i)
	}
	p := auth.DefaultParams
	hash, err := argon2id.CreateHash(benchPassword, &argon2id.Params{Memory: p.Memory, Iterations: p.Iterations,
		Parallelism: p.Parallelism, SaltLength: p.SaltLength, KeyLength: p.KeyLength})
	if err != nil {
		return sides, err
	}
	sides[0] = writersSide("sign-in", "sign-ins/s", c.clients, func(ctx context.Context, r *rand.Rand) error {
		return postJSON(ctx, client, url, "", bodies[r.IntN(len(bodies))], nethttp.StatusOK, nil)
	})
	sides[1] = writersSide("argon2id", "checks/s", c.clients, func(context.Context, *rand.Rand) error {
		ok, err := argon2id.ComparePasswordAndHash(benchPassword, hash)
		if err == nil && !ok {
			err = errors.New("argon2id: the password does not match its own hash")
		}
		return err
	})
	return sides, nil
}
