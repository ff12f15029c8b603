package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkLoad is how wrk loads a server: threads, connections, and the rounds that measure it.
type wrkLoad struct {
	threads  int
	conns    int
	duration time.Duration
	warmup   time.Duration
	rounds   int
}

// wrkLoadFlags registers a benchmark's wrk flags, named after it (-<name>-threads, -<name>-conns, ...).
func wrkLoadFlags(fs *flag.FlagSet, name string, w *wrkLoad) {
	fs.IntVar(&w.threads, name+"-threads", 2, name+": wrk threads (-t)")
	fs.IntVar(&w.conns, name+"-conns", 32, name+": wrk connections (-c)")
	fs.DurationVar(&w.duration, name+"-duration", 10*time.Second, name+": wrk duration per side per round (-d)")
	fs.DurationVar(&w.warmup, name+"-warmup", 3*time.Second, name+": wrk warm-up per side")
	fs.IntVar(&w.rounds, name+"-rounds", 3, name+": rounds (each measures both sides, order alternating)")
}

func (w wrkLoad) validate(name string) error {
	if err := positive(map[string]int{name + "-threads": w.threads, name + "-conns": w.conns, name + "-rounds": w.rounds}); err != nil {
		return err
	}
	if w.duration < time.Second {
		return fmt.Errorf("-%s-duration must be at least 1s (wrk counts whole seconds), got %s", name, w.duration)
	}
	return nil
}

// wrkTarget is one side under wrk: its name in the report, the URL, and a Lua script or headers.
type wrkTarget struct {
	name    string
	url     string
	script  string   // a Lua script's path (empty: GET url)
	headers []string // wrk -H values
}

// wrkWorkspace finds wrk and makes a temporary directory; the returned function removes it.
func wrkWorkspace(name string) (wrk, dir string, remove func(), err error) {
	wrk, err = exec.LookPath("wrk")
	if err != nil {
		return "", "", nil, errors.New("wrk is not installed (make bench installs it: apt-get install -y wrk)")
	}
	dir, err = os.MkdirTemp("", "tvbench-"+name+"-")
	if err != nil {
		return "", "", nil, err
	}
	return wrk, dir, func() { _ = os.RemoveAll(dir) }, nil
}

// writeWrkScript writes a wrk Lua script whose requests cycle over the products (each wrk thread
// starts at its own offset).
func writeWrkScript(path string, ids []int64) error {
	var b strings.Builder
	b.WriteString("local ids = {")
	for i, id := range ids {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteString("}\nlocal i = math.random(#ids)\n")
	b.WriteString("request = function()\n  i = i % #ids + 1\n  return wrk.format(\"GET\", \"/api/v1/products/\" .. ids[i])\nend\n")
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// wrkResult is what wrk printed.
type wrkResult struct {
	rate     float64
	p99      time.Duration
	requests int64
	non2xx   int64
	errors   string
}

var (
	wrkRate     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP99      = regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkErrors   = regexp.MustCompile(`Socket errors:[^\n]*`)
)

func runWrk(ctx context.Context, wrk string, w wrkLoad, t wrkTarget, d time.Duration) (wrkResult, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-t" + strconv.Itoa(w.threads), "-c" + strconv.Itoa(w.conns), "-d" + strconv.Itoa(secs) + "s", "--latency"}
	for _, h := range t.headers {
		args = append(args, "-H", h)
	}
	if t.script != "" {
		args = append(args, "-s", t.script)
	}
	cmd := exec.CommandContext(ctx, wrk, append(args, t.url)...)
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, outBuf.String())
	}
	o := outBuf.String()
	m := wrkRate.FindStringSubmatch(o)
	if m == nil {
		return wrkResult{}, fmt.Errorf("no Requests/sec in wrk's output: %s", o)
	}
	var r wrkResult
	r.rate, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkP99.FindStringSubmatch(o); m != nil {
		r.p99, _ = time.ParseDuration(m[1])
	}
	if m := wrkRequests.FindStringSubmatch(o); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkNon2xx.FindStringSubmatch(o); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	r.errors = wrkErrors.FindString(o)
	return r, nil
}

// wrkFigures are the medians over the rounds of a two-sided wrk measurement.
type wrkFigures struct {
	ratio float64          // median of the per-round ratios (side 0 / side 1)
	rates [2]float64       // median req/s of each side
	p99s  [2]time.Duration // median p99 of each side
}

// wrkRounds warms both targets up, then measures them round after round (order alternating); a
// non-2xx answer or a socket error fails the measurement.
func wrkRounds(ctx context.Context, env *env, wrk string, w wrkLoad, ts [2]wrkTarget, out io.Writer) (wrkFigures, error) {
	for _, t := range ts {
		env.progress("warming up %s for %s", t.name, w.warmup)
		if _, err := runWrk(ctx, wrk, w, t, w.warmup); err != nil {
			return wrkFigures{}, err
		}
	}
	var p99s [2][]float64
	rates, ratios, err := abRounds(w.rounds, func(round, i int) (float64, error) {
		cpuA := readCPU()
		r, err := runWrk(ctx, wrk, w, ts[i], w.duration)
		if err != nil {
			return 0, err
		}
		if r.non2xx > 0 || r.errors != "" {
			return 0, fmt.Errorf("%s: %d non-2xx responses %s", ts[i].name, r.non2xx, r.errors)
		}
		p99s[i] = append(p99s[i], float64(r.p99))
		fmt.Fprintf(out, "   round %d  %-9s %8s req/s  p99 %-9s (%s requests; CPU: %s)\n", round+1, ts[i].name, num(r.rate),
			ms(r.p99), num(r.requests), cpuUse(cpuA, readCPU()))
		return r.rate, nil
	})
	if err != nil {
		return wrkFigures{}, err
	}
	return wrkFigures{ratio: median(ratios), rates: [2]float64{median(rates[0]), median(rates[1])},
		p99s: [2]time.Duration{time.Duration(median(p99s[0])), time.Duration(median(p99s[1]))}}, nil
}
