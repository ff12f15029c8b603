package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// load runs the paced open-loop load: writer w owns products w, w+W, ... so versions are known
// without reading; the pacer hands each writer its due events.
func (r *lagRun) load(ctx context.Context) error {
	c := r.cfg
	jobs := make([]chan time.Time, c.writers)
	for i := range jobs {
		jobs[i] = make(chan time.Time, 4096)
	}
	start := time.Now()
	windowStart := start.Add(c.warmup)
	r.windowStart = windowStart
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var (
		mu       sync.Mutex
		writeErr error
		wg       sync.WaitGroup
	)
	for w := range c.writers {
		var mine []*lagProduct
		for i := w; i < len(r.products); i += c.writers {
			mine = append(mine, r.products[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			local, err := r.write(loadCtx, stopLoad, mine, jobs[w], windowStart)
			mu.Lock()
			defer mu.Unlock()
			r.samples = append(r.samples, local...)
			if err != nil && writeErr == nil {
				writeErr = err
				stopLoad()
			}
		}()
	}
	r.env.progress("lag: %s warm-up then %s at %s appends/s", c.warmup, c.duration, num(c.rate))
	stopProf := r.pace(loadCtx, jobs, start, windowStart)
	wg.Wait()
	r.xm.setActive(false)
	r.cpuB = readCPU()
	r.loadTook = time.Since(start)
	stopProf()
	if writeErr != nil {
		return fmt.Errorf("appending: %w", writeErr)
	}
	return ctxErr(ctx)
}

// write appends the next event of one of mine for every schedule it receives.
func (r *lagRun) write(ctx context.Context, abort func(), mine []*lagProduct, jobs <-chan time.Time, windowStart time.Time) ([]*lagSample, error) {
	rnd := newRand()
	var local []*lagSample
	var firstErr error
	next := 0
	for sched := range jobs {
		if ctx.Err() != nil || firstErr != nil {
			continue // drain
		}
		p := mine[next%len(mine)]
		next++
		s, err := lagAppend(ctx, r.app.Store, p, rnd, r.cfg.updateEvery, sched, windowStart, r.rowW, r.evW)
		if err != nil {
			firstErr = err
			abort()
			continue
		}
		local = append(local, s)
	}
	return local, firstErr
}

// pace hands out, at each 1 ms tick, every event due by now (so a late tick catches up), then
// closes the writers' channels. It starts the CPU sample and profile at the window's start.
func (r *lagRun) pace(ctx context.Context, jobs []chan time.Time, start, windowStart time.Time) (stopProfile func()) {
	stopProf := func() {}
	profiling := false
	total := int(float64(r.cfg.rate) * (r.cfg.warmup + r.cfg.duration).Seconds())
	interval := time.Second / time.Duration(r.cfg.rate)
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	defer func() {
		for _, c := range jobs {
			close(c)
		}
	}()
	for issued := 0; issued < total; {
		select {
		case <-ctx.Done():
			return stopProf
		case now := <-ticker.C:
			if !profiling && now.After(windowStart) {
				stopProf, profiling = r.env.profile("lag"), true
				r.cpuA = readCPU()
				r.xm.setActive(true)
			}
			due := min(total, int(now.Sub(start)/interval))
			for ; issued < due; issued++ {
				jobs[issued%len(jobs)] <- start.Add(time.Duration(issued) * interval)
			}
		}
	}
	return stopProf
}
