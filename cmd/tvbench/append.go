package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// rawTableDDL is the append baseline's table: the columns, types, NOT NULLs and defaults of events,
// with a primary key on "offset" and nothing else (no triggers, CHECKs, UNIQUEs or other indexes).
const rawTableDDL = `CREATE TABLE events_raw (
    "offset"        bigserial   PRIMARY KEY,
    uuid            uuid        NOT NULL,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    version         bigint      NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    payload         json        NOT NULL,
    metadata        json        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    content_hash    bytea       NOT NULL,
    hash            bytea,
    created_at      timestamp   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id()
)`

const rawInsertSQL = `INSERT INTO events_raw (uuid, stream_id, stream_type, version, event_type, schema_version,
	payload, metadata, recorded_at, content_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

type sideResult struct {
	ops     int64
	elapsed time.Duration
	lat     latencies
}

func (s sideResult) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds()
}

// runWriters runs op from writers goroutines until d has passed and reports how many completed.
func runWriters(ctx context.Context, writers int, d time.Duration, op func(ctx context.Context, r *rand.Rand) error) (sideResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		lats     = make([][]time.Duration, writers)
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand()
			lat := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := op(ctx, r); err != nil {
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return sideResult{}, firstErr
	}
	if err := ctxErr(ctx); err != nil {
		return sideResult{}, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return sideResult{ops: int64(len(all)), elapsed: elapsed, lat: summarize(all)}, nil
}

func benchAppend(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	res := result{target: "ratio >= 0.70"}
	fmt.Fprintf(out, "== append: Store.Append of one event to a new stream (ExpectedVersion 0) vs a raw single-row INSERT\n")
	fmt.Fprintf(out, "   %d writers on one pool of %d connections, same program; %d rounds x %s per side (order alternating),\n",
		cfg.appendWriters, cfg.appendWriters, cfg.appendRounds, cfg.appendDuration)
	fmt.Fprintf(out, "   after %s warm-up per side%s\n", cfg.appendWarmup, map[bool]string{true: "; CHECKPOINT before each side", false: ""}[cfg.checkpoint])
	fmt.Fprintf(out, "   baseline table events_raw: events' columns, types, NOT NULLs and defaults, PRIMARY KEY (\"offset\") only:\n")
	fmt.Fprintf(out, "   no triggers (hash chain), no CHECK, no UNIQUE (stream_id, version)/(uuid)/(\"offset\"), no secondary indexes;\n")
	fmt.Fprintf(out, "   one INSERT ... VALUES per event (no RETURNING), same values computed in Go (UUIDv7, metadata JSON, SHA-256)\n")

	db, err := env.newDB(ctx, int32(cfg.appendWriters), nil)
	if err != nil {
		return res, err
	}
	defer db.Close()
	if _, err := db.Pool.Exec(ctx, rawTableDDL); err != nil {
		return res, fmt.Errorf("creating events_raw: %w", err)
	}
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return res, err
	}

	var nextID atomic.Int64
	sample, _ := productCreated(1, newRand())
	md, _ := json.Marshal(requestMetadata())
	fmt.Fprintf(out, "   payload: ProductCreated JSON of ~%d bytes, metadata JSON of ~%d bytes\n", len(mustJSON(sample)), len(md))

	storeOp := func(ctx context.Context, r *rand.Rand) error {
		id := nextID.Add(1)
		_, ev := productCreated(id, r)
		_, err := store.Append(ctx, requestMetadata(), eventstore.StreamAppend{
			StreamID: catalog.ProductStreamID(id), StreamType: catalog.ProductStreamType, ExpectedVersion: 0,
			Events: []eventstore.NewEvent{ev},
		})
		return err
	}
	rawOp := func(ctx context.Context, r *rand.Rand) error {
		id := nextID.Add(1)
		_, ev := productCreated(id, r)
		evID := uuid.Must(uuid.NewV7())
		meta, err := json.Marshal(requestMetadata())
		if err != nil {
			return err
		}
		at := time.Now().UTC().Truncate(time.Microsecond)
		content := sha256.Sum256(append(append(append([]byte{}, evID[:]...), ev.Data...), meta...))
		chained := sha256.Sum256(content[:])
		_, err = db.Pool.Exec(ctx, rawInsertSQL, evID.String(), catalog.ProductStreamID(id), catalog.ProductStreamType, int64(1),
			ev.Type, int32(ev.SchemaVersion), string(ev.Data), string(meta), at, content[:], chained[:])
		return err
	}
	sides := []struct {
		name string
		op   func(context.Context, *rand.Rand) error
	}{{"Store.Append", storeOp}, {"raw INSERT", rawOp}}

	for _, s := range sides {
		env.progress("append: warming up %s for %s", s.name, cfg.appendWarmup)
		if _, err := runWriters(ctx, cfg.appendWriters, cfg.appendWarmup, s.op); err != nil {
			return res, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	rates := map[string][]float64{}
	var ratios []float64
	cpuA := readCPU()
	for round := range cfg.appendRounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		got := map[string]sideResult{}
		for _, i := range order {
			s := sides[i]
			env.checkpoint(ctx, db.Pool)
			stop := func() {}
			if round == 0 {
				stop = env.profile("append-" + map[int]string{0: "store", 1: "raw"}[i])
			}
			sr, err := runWriters(ctx, cfg.appendWriters, cfg.appendDuration, s.op)
			stop()
			if err != nil {
				return res, fmt.Errorf("%s: %w", s.name, err)
			}
			got[s.name] = sr
			rates[s.name] = append(rates[s.name], sr.rate())
		}
		st, raw := got["Store.Append"], got["raw INSERT"]
		ratios = append(ratios, st.rate()/raw.rate())
		fmt.Fprintf(out, "   round %d  Store.Append %7s/s (p50 %s, p99 %s)   raw INSERT %7s/s (p50 %s, p99 %s)   ratio %.2f\n",
			round+1, num(st.rate()), ms(st.lat.p50), ms(st.lat.p99), num(raw.rate()), ms(raw.lat.p50), ms(raw.lat.p99), st.rate()/raw.rate())
	}
	cpuB := readCPU()
	fmt.Fprintf(out, "   CPU during the rounds: %s\n", cpuUse(cpuA, cpuB))
	a, b := median(rates["Store.Append"]), median(rates["raw INSERT"])
	// The ratio is the median of the per-round ratios: each pairs two sides measured back to back,
	// which cancels slow drifts of the machine's load better than a ratio of medians.
	ratio := median(ratios)
	res.figure = num(a) + " appends/s"
	res.baseline = num(b) + " raw inserts/s"
	res.ratio = ratioStr(ratio)
	res.met = ratio >= 0.7
	if !res.met {
		res.note = busyNote(cpuA, cpuB)
	}
	fmt.Fprintf(out, "   median   Store.Append %s appends/s, raw INSERT %s inserts/s; ratio (median of the per-round ratios) %.2f;\n",
		num(a), num(b), ratio)
	fmt.Fprintf(out, "            target >= 0.70: %s\n", metStr(res.met))
	return res, nil
}

func metStr(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
