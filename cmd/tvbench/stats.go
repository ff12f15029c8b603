package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// median of xs (0 when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// latencies summarises a set of durations.
type latencies struct {
	n                  int
	p50, p90, p99, max time.Duration
}

// summarize sorts ds in place and returns nearest-rank percentiles.
func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return latencies{n: len(ds), p50: q(0.50), p90: q(0.90), p99: q(0.99), max: ds[len(ds)-1]}
}

// ms formats a duration in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

// num formats n with thousands separators.
func num[T int | int64 | float64](n T) string {
	v := int64(math.Round(float64(n)))
	s := strconv.FormatInt(v, 10)
	neg := v < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func ratioStr(r float64) string {
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}

func abbreviate(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

// abRounds measures two sides round after round, the order alternating (A B, B A, A B, ...) so
// that a slow drift of the machine's load favours neither. It returns each side's per-round rates
// and the per-round ratios A/B: quote the median ratio, each pairing two sides measured back to
// back, which cancels drifts better than a ratio of medians.
func abRounds(rounds int, measure func(round, side int) (float64, error)) ([2][]float64, []float64, error) {
	var rates [2][]float64
	var ratios []float64
	for round := range rounds {
		order := [2]int{0, 1}
		if round%2 == 1 {
			order = [2]int{1, 0}
		}
		var got [2]float64
		for _, i := range order {
			r, err := measure(round, i)
			if err != nil {
				return rates, ratios, err
			}
			got[i] = r
			rates[i] = append(rates[i], r)
		}
		ratios = append(ratios, got[0]/got[1])
	}
	return rates, ratios, nil
}

// measuredSide is one side of a two-sided benchmark: its name and unit in the report, and how it
// is measured for a given time.
type measuredSide struct {
	name    string
	unit    string
	measure func(ctx context.Context, d time.Duration) (sideResult, error)
}

// writersSide is a side that runs op from writers goroutines (runWriters).
func writersSide(name, unit string, writers int, op func(context.Context, *rand.Rand) error) measuredSide {
	return measuredSide{name: name, unit: unit, measure: func(ctx context.Context, d time.Duration) (sideResult, error) {
		return runWriters(ctx, writers, d, op)
	}}
}

// sideFigures are the medians over the rounds of a two-sided measurement.
type sideFigures struct {
	ratio float64          // median of the per-round ratios (side 0 / side 1)
	rates [2]float64       // median rate of each side
	p99s  [2]time.Duration // median p99 of each side
}

// sideRounds warms both sides up, then measures them round after round (abRounds: order
// alternating), printing a line per side and round.
func sideRounds(ctx context.Context, env *env, rounds int, warmup, d time.Duration, sides [2]measuredSide, out io.Writer) (sideFigures, error) {
	for _, s := range sides {
		env.progress("warming up %s for %s", s.name, warmup)
		if _, err := s.measure(ctx, warmup); err != nil {
			return sideFigures{}, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	var p99s [2][]float64
	rates, ratios, err := abRounds(rounds, func(round, i int) (float64, error) {
		cpuA := readCPU()
		sr, err := sides[i].measure(ctx, d)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", sides[i].name, err)
		}
		p99s[i] = append(p99s[i], float64(sr.lat.p99))
		fmt.Fprintf(out, "   round %d  %-12s %7s %-10s p50 %-9s p99 %-9s (%s in %s; CPU: %s)\n", round+1, sides[i].name,
			num(sr.rate()), sides[i].unit, ms(sr.lat.p50), ms(sr.lat.p99), num(sr.ops), sr.elapsed.Round(time.Millisecond), cpuUse(cpuA, readCPU()))
		return sr.rate(), nil
	})
	if err != nil {
		return sideFigures{}, err
	}
	return sideFigures{ratio: median(ratios), rates: [2]float64{median(rates[0]), median(rates[1])},
		p99s: [2]time.Duration{time.Duration(median(p99s[0])), time.Duration(median(p99s[1]))}}, nil
}
