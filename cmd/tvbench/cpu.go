package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuSample is a snapshot of CPU time (Linux /proc; zero elsewhere), used to show how busy the
// machine was while a figure was measured: this machine may be shared, and a benchmark on two
// cores is sensitive to anything else running.
type cpuSample struct {
	at       time.Time
	total    float64 // busy seconds of all CPUs
	self     float64 // this process
	postgres float64 // every process named postgres (the server and all its backends, ended ones too)
	redis    float64 // every process named redis-server
	ok       bool
}

var clockTick = 100.0 // USER_HZ; 100 on every Linux this runs on

func readCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return s
	}
	// user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		s.total += x / clockTick
	}
	s.self = procCPU("/proc/self/stat")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(comm)) {
		case "postgres":
			// With the time of its ended children (the postmaster reaps every backend): a backend
			// that exits between two samples moves from the live sum to the postmaster's, so the
			// difference never goes negative.
			s.postgres += procCPU(d+"/stat") + procChildrenCPU(d+"/stat")
		case "redis-server":
			s.redis += procCPU(d + "/stat")
		}
	}
	s.ok = true
	return s
}

// procCPU returns utime+stime of a /proc/<pid>/stat file in seconds.
func procCPU(path string) float64 { return statSeconds(path, 11) }

// procChildrenCPU returns cutime+cstime (the ended children it waited for) of a /proc/<pid>/stat
// file in seconds.
func procChildrenCPU(path string) float64 { return statSeconds(path, 13) }

// statSeconds returns the sum of the two clock-tick fields at field and field+1 (counted after the
// command name) of a /proc/<pid>/stat file, in seconds.
func statSeconds(path string, field int) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// The command name may contain spaces; fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < field+2 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[field], 64)
	st, _ := strconv.ParseFloat(f[field+1], 64)
	return (u + st) / clockTick
}

// cpuOther is the CPU used by everything but tvbench, Postgres and Redis between two samples, in
// percent of one core (0 when unknown).
func cpuOther(a, b cpuSample) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || wall <= 0 {
		return 0
	}
	busy := (b.total - a.total) - (b.self - a.self) - (b.postgres - a.postgres) - (b.redis - a.redis)
	return max(0, 100*busy/wall)
}

// busyNote is the summary note of a missed target measured while other processes were busy.
func busyNote(a, b cpuSample) string {
	if o := cpuOther(a, b); o >= 25 {
		return fmt.Sprintf("other processes used %.0f%% CPU meanwhile; rerun on a quiet machine", o)
	}
	return ""
}

// cpuUse describes CPU use between two samples, in percent of one core.
func cpuUse(a, b cpuSample) string {
	if !a.ok || !b.ok {
		return "n/a"
	}
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return "n/a"
	}
	pct := func(x float64) float64 { return 100 * x / wall }
	total, self, pg, rd := pct(b.total-a.total), pct(b.self-a.self), pct(b.postgres-a.postgres), pct(b.redis-a.redis)
	return fmt.Sprintf("machine %.0f%% of %d00%%: tvbench %.0f%%, postgres %.0f%%, redis %.0f%%, everything else %.0f%%",
		total, numCPU(), self, pg, rd, max(0, total-self-pg-rd))
}

func numCPU() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 1
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			n++
		}
	}
	return max(n, 1)
}
