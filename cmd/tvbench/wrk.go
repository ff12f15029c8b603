package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

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

func runWrk(ctx context.Context, wrk string, c httpGetConfig, script, url string, d time.Duration) (wrkResult, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, wrk, "-t"+strconv.Itoa(c.threads), "-c"+strconv.Itoa(c.conns), "-d"+strconv.Itoa(secs)+"s",
		"--latency", "-s", script, url)
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

// wrkRounds warms both sides up, then measures them round after round (order alternating). It
// returns the median of the per-round ratios (real / bare), the median rates and p99s.
func wrkRounds(ctx context.Context, env *env, wrk string, c httpGetConfig, s *httpGetSides, out io.Writer) (float64, [2]float64, [2]time.Duration, error) {
	urls := [2]string{s.realURL, s.bareURL}
	names := [2]string{"techvault", "bare Gin"}
	var rates [2][]float64
	var p99s [2][]float64
	var ratios []float64
	for i := range urls {
		env.progress("http-get: warming up %s for %s", names[i], c.warmup)
		if _, err := runWrk(ctx, wrk, c, s.scriptPath, urls[i], c.warmup); err != nil {
			return 0, [2]float64{}, [2]time.Duration{}, err
		}
	}
	for round := range c.rounds {
		order := []int{0, 1}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		var got [2]float64
		for _, i := range order {
			cpuA := readCPU()
			r, err := runWrk(ctx, wrk, c, s.scriptPath, urls[i], c.duration)
			if err != nil {
				return 0, [2]float64{}, [2]time.Duration{}, err
			}
			if r.non2xx > 0 || r.errors != "" {
				return 0, [2]float64{}, [2]time.Duration{}, fmt.Errorf("%s: %d non-2xx responses %s", names[i], r.non2xx, r.errors)
			}
			got[i] = r.rate
			rates[i], p99s[i] = append(rates[i], r.rate), append(p99s[i], float64(r.p99))
			fmt.Fprintf(out, "   round %d  %-9s %8s req/s  p99 %-9s (%s requests; CPU: %s)\n", round+1, names[i], num(r.rate),
				ms(r.p99), num(r.requests), cpuUse(cpuA, readCPU()))
		}
		ratios = append(ratios, got[0]/got[1])
	}
	return median(ratios), [2]float64{median(rates[0]), median(rates[1])}, [2]time.Duration{time.Duration(median(p99s[0])), time.Duration(median(p99s[1]))}, nil
}
