package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one figure of a benchmark: what was measured, against which same-run baseline, the ratio
// and the target.
type row struct {
	figure   string
	measured string
	baseline string
	ratio    string
	target   string
	met      bool
	note     string // why a target may have been missed (a busy machine)
}

// result is one benchmark's rows in the summary.
type result struct {
	name string
	rows []row
	err  error
}

func (r *result) add(x row) { r.rows = append(r.rows, x) }

// verdict prints a row's closing line in a benchmark's block.
func verdict(w io.Writer, x row) {
	fmt.Fprintf(w, "   => %s: %s vs %s: ratio %s; target %s: %s\n", x.figure, x.measured, x.baseline, dash(x.ratio), x.target, metStr(x.met))
}

func metStr(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func printSummary(w io.Writer, results []result, took time.Duration) {
	fmt.Fprintf(w, "\n== summary (%s in all)\n", took.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tfigure\tmeasured\tsame-run baseline\tratio\ttarget\tmet?")
	fmt.Fprintln(tw, "---------\t------\t--------\t-----------------\t-----\t------\t----")
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\terror: %s\n", r.name, firstLine(r.err.Error()))
			continue
		}
		for _, x := range r.rows {
			met := "yes"
			if !x.met {
				met = "NO"
				if x.note != "" {
					met += " (" + x.note + ")"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.name, x.figure, dash(x.measured), dash(x.baseline), dash(x.ratio), dash(x.target), met)
		}
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "Each block above says how its figure and its baseline were measured. Go, Postgres and Redis share this")
	fmt.Fprintln(w, "machine's CPUs: a busy machine moves every figure; rerun on a quiet one before quoting a figure.")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
