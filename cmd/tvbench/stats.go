package main

import (
	"bytes"
	"fmt"
	"math"
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
