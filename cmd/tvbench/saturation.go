package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// saturationConfig holds the saturation benchmark's flags.
type saturationConfig struct {
	writers  int
	duration time.Duration
	warmup   time.Duration
	products int
}

func saturationFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.saturation.writers, "saturation-writers", 32, "saturation: appenders, each as fast as it can")
	fs.DurationVar(&c.saturation.duration, "saturation-duration", 30*time.Second, "saturation: measured time per projector set")
	fs.DurationVar(&c.saturation.warmup, "saturation-warmup", 3*time.Second, "saturation: warm-up load before measuring")
	fs.IntVar(&c.saturation.products, "saturation-products", 3200, "saturation: product streams the events are spread over")
}

func (c saturationConfig) validate() error {
	if err := positive(map[string]int{"saturation-writers": c.writers, "saturation-products": c.products}); err != nil {
		return err
	}
	return positive(map[string]time.Duration{"saturation-duration": c.duration})
}

const (
	saturationKeepUp   = 0.995 // projected / appended: 1.00 at two decimals
	saturationLagEnd   = time.Second
	saturationScaleMin = 0.5 // 8-projector throughput / 2-projector throughput
)

// satPhase is what one projector set achieved.
type satPhase struct {
	projectors          int
	appended, projected float64 // events/s in the window; projected is the slowest projector's
	slowest             string
	lagEvents           int64
	lagSeconds          float64
	drain               time.Duration
	note                string
}

func benchSaturation(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.saturation
	fmt.Fprintf(out, "== saturation: %d appenders as fast as they can (one ProductStockAdjusted per Store.Append, %s product streams)\n",
		c.writers, num(c.products))
	fmt.Fprintf(out, "   for %s after %s warm-up, with the application as serve builds it; first with the catalog's 2 projectors,\n", c.duration, c.warmup)
	fmt.Fprintf(out, "   then with 8 (the 2 plus 6 synthetic set-based projectors, each writing its own table: counts per stream, per\n")
	fmt.Fprintf(out, "   event type, per type and day, per stream type and hour, an audit copy of every event, each stream's latest).\n")
	fmt.Fprintf(out, "   baseline: appended events/s of the same run; projected events/s = the slowest projector's checkpoint advance\n")
	fmt.Fprintf(out, "   over the window; lag at the end = projector status (events, age of the oldest unprojected) when the load stops.\n")
	var res result
	var phases []satPhase
	for _, set := range [][]appProjector{catalogProjectors(), append(catalogProjectors(), syntheticProjectors()...)} {
		ph, err := runSatPhase(ctx, env, c, set, out)
		if err != nil {
			return res, fmt.Errorf("%d projectors: %w", len(set), err)
		}
		res.add(ph.row(out))
		phases = append(phases, ph)
	}
	scale := phases[1].projected / phases[0].projected
	x := row{figure: "saturation, 8 / 2 projectors", measured: num(phases[1].projected) + " projected events/s (8)",
		baseline: num(phases[0].projected) + " projected events/s (2)", ratio: ratioStr(scale),
		target: fmt.Sprintf(">= %.1f", saturationScaleMin), met: scale >= saturationScaleMin, note: phases[1].note}
	verdict(out, x)
	res.add(x)
	return res, nil
}

func (ph satPhase) row(out io.Writer) row {
	ratio := ph.projected / ph.appended
	x := row{figure: fmt.Sprintf("saturation, %d projectors", ph.projectors),
		measured: fmt.Sprintf("%s projected events/s, lag at end %.2fs", num(ph.projected), ph.lagSeconds),
		baseline: num(ph.appended) + " appended events/s", ratio: ratioStr(ratio),
		target: "ratio >= 1.0, lag at end < 1 s", met: ratio >= saturationKeepUp && ph.lagSeconds < saturationLagEnd.Seconds()}
	if !x.met {
		x.note = ph.note
	}
	verdict(out, x)
	return x
}

// satProduct is a product stream and its writer's knowledge of it (one writer at a time).
type satProduct struct {
	mu sync.Mutex
	lagProduct
}

func runSatPhase(ctx context.Context, env *env, c saturationConfig, projectors []appProjector, out io.Writer) (satPhase, error) {
	ph := satPhase{projectors: len(projectors)}
	db, err := env.newDB(ctx, int32(c.writers+16), nil)
	if err != nil {
		return ph, err
	}
	defer db.Close()
	if err := createSyntheticTables(ctx, db.Pool); err != nil {
		return ph, err
	}
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return ph, err
	}
	created, err := createLagProducts(ctx, store, c.products)
	if err != nil {
		return ph, err
	}
	a, err := env.startApp(ctx, db, projectors)
	if err != nil {
		return ph, err
	}
	defer a.Close()
	names := make([]string, len(projectors))
	for i, p := range projectors {
		names[i] = p.Name()
	}
	if _, err := waitAllProjected(ctx, a, names, 5*time.Minute); err != nil {
		return ph, err
	}
	op := satAppendOp(a.Store, created)
	env.progress("saturation: %d projectors, %s warm-up then %s", len(projectors), c.warmup, c.duration)
	if _, err := runWriters(ctx, c.writers, c.warmup, op); err != nil {
		return ph, fmt.Errorf("warm-up: %w", err)
	}
	return measureSatPhase(ctx, a, names, c, op, ph, out)
}

func measureSatPhase(ctx context.Context, a *appUnderTest, names []string, c saturationConfig,
	op func(context.Context, *rand.Rand) error, ph satPhase, out io.Writer,
) (satPhase, error) {
	before, head0, err := projectorPositions(ctx, a, names)
	if err != nil {
		return ph, err
	}
	cpuA := readCPU()
	sr, err := runWriters(ctx, c.writers, c.duration, op)
	if err != nil {
		return ph, err
	}
	cpuB := readCPU()
	after, head1, err := projectorPositions(ctx, a, names)
	if err != nil {
		return ph, err
	}
	st, err := a.Checkpoints.Status(ctx, names...)
	if err != nil {
		return ph, err
	}
	secs := sr.elapsed.Seconds()
	ph.appended = float64(head1-head0) / secs
	ph.projected = math.Inf(1)
	for _, n := range names {
		if rate := float64(after[n]-before[n]) / secs; rate < ph.projected {
			ph.projected, ph.slowest = rate, n
		}
	}
	for _, s := range st {
		ph.lagEvents, ph.lagSeconds = max(ph.lagEvents, s.LagEvents), max(ph.lagSeconds, s.LagSeconds)
	}
	ph.note = busyNote(cpuA, cpuB)
	ph.drain, err = waitAllProjected(ctx, a, names, 2*time.Minute)
	if err != nil {
		return ph, err
	}
	fmt.Fprintf(out, "   %d projectors: appended %s events in %s (%s/s, Append p99 %s); slowest projector %s projected %s/s;\n",
		len(names), num(head1-head0), sr.elapsed.Round(time.Millisecond), num(ph.appended), ms(sr.lat.p99), ph.slowest, num(ph.projected))
	fmt.Fprintf(out, "   lag when the load stopped: %s events, %.2f s (worst projector); all drained %s later; CPU: %s\n",
		num(ph.lagEvents), ph.lagSeconds, ph.drain.Round(time.Millisecond), cpuUse(cpuA, cpuB))
	return ph, nil
}

// satAppendOp appends the next event of a product no other writer holds at the moment.
func satAppendOp(store *eventstore.Store, created []*lagProduct) func(context.Context, *rand.Rand) error {
	products := make([]*satProduct, len(created))
	for i, p := range created {
		products[i] = &satProduct{lagProduct: *p}
	}
	var next atomic.Int64
	return func(ctx context.Context, r *rand.Rand) error {
		p := products[next.Add(1)%int64(len(products))]
		p.mu.Lock()
		defer p.mu.Unlock()
		delta, stock := nextStock(p.stock, r)
		_, err := store.Append(ctx, requestMetadata(), eventstore.StreamAppend{StreamID: catalog.ProductStreamID(p.id),
			StreamType: catalog.ProductStreamType, ExpectedVersion: p.version,
			Events: []eventstore.NewEvent{stockAdjusted(p.id, delta, stock)}})
		if err != nil {
			return err
		}
		p.version, p.stock = p.version+1, stock
		return nil
	}
}

// projectorPositions reads, for each projector, the position up to which it has handled every
// event it is given, and the head of the log: its checkpoint, or the head when it has nothing to
// do before it (a projector given none of the load's events moves its checkpoint only about once
// a second, see projections.Checkpoints.Given).
func projectorPositions(ctx context.Context, a *appUnderTest, names []string) (map[string]int64, int64, error) {
	head, err := a.Store.Head(ctx)
	if err != nil {
		return nil, 0, err
	}
	st, err := a.Checkpoints.Status(ctx, names...)
	if err != nil {
		return nil, 0, err
	}
	headCursor, ok, err := a.Store.CursorOf(ctx, head)
	if err != nil {
		return nil, 0, err
	}
	pos := map[string]int64{}
	for _, s := range st {
		pos[s.Name] = s.Position
		if ok && s.Position < head {
			reached, err := a.Checkpoints.Reached(ctx, s.Name, headCursor)
			if err != nil {
				return nil, 0, err
			}
			if reached {
				pos[s.Name] = head
			}
		}
	}
	return pos, head, nil
}

// waitAllProjected waits until every projector has reached the head of the log as it is now, and
// reports how long that took.
func waitAllProjected(ctx context.Context, a *appUnderTest, names []string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	head, err := a.Store.Head(ctx)
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		ok, err := a.Checkpoints.WaitFor(ctx, a.Store, n, head, timeout-time.Since(start))
		if err != nil {
			return 0, fmt.Errorf("waiting for %s: %w", n, err)
		}
		if !ok {
			return 0, errors.New(n + " did not reach the head of the log within " + timeout.String())
		}
	}
	return time.Since(start), nil
}
