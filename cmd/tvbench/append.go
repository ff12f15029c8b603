package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
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

// appendConfig holds the append benchmark's flags.
type appendConfig struct {
	writers  int
	duration time.Duration
	warmup   time.Duration
	rounds   int
}

func appendFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.append.writers, "append-writers", 32, "append: concurrent writers (and pool size)")
	fs.DurationVar(&c.append.duration, "append-duration", 5*time.Second, "append: measured time per side per round")
	fs.DurationVar(&c.append.warmup, "append-warmup", 2*time.Second, "append: warm-up per side")
	fs.IntVar(&c.append.rounds, "append-rounds", 3, "append: rounds (each measures both sides, order alternating)")
}

func (c appendConfig) validate() error {
	if err := positive(map[string]int{"append-writers": c.writers, "append-rounds": c.rounds}); err != nil {
		return err
	}
	return positive(map[string]time.Duration{"append-duration": c.duration})
}

const appendTarget = 0.9

// appendSide is one side of the append benchmark: an operation run by every writer.
type appendSide struct {
	name string
	op   func(context.Context, *rand.Rand) error
}

func benchAppend(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.append
	var res result
	fmt.Fprintf(out, "== append: Store.Append of one event to a new stream (ExpectedVersion 0) vs a raw single-row INSERT\n")
	fmt.Fprintf(out, "   %d writers on one pool of %d connections, same program; %d rounds x %s per side (order alternating),\n",
		c.writers, c.writers, c.rounds, c.duration)
	fmt.Fprintf(out, "   after %s warm-up per side%s\n", c.warmup, map[bool]string{true: "; CHECKPOINT before each side", false: ""}[cfg.checkpoint])
	fmt.Fprintf(out, "   baseline table events_raw: events' columns, types, NOT NULLs and defaults, PRIMARY KEY (\"offset\") only:\n")
	fmt.Fprintf(out, "   no triggers (hash chain), no CHECK, no UNIQUE (stream_id, version)/(uuid)/(\"offset\"), no secondary indexes;\n")
	fmt.Fprintf(out, "   one INSERT ... VALUES per event (no RETURNING), same values computed in Go (UUIDv7, metadata JSON, SHA-256)\n")

	db, err := env.newDB(ctx, int32(c.writers), nil)
	if err != nil {
		return res, err
	}
	defer db.Close()
	sides, err := appendSides(ctx, db, out)
	if err != nil {
		return res, err
	}
	for _, s := range sides {
		env.progress("append: warming up %s for %s", s.name, c.warmup)
		if _, err := runWriters(ctx, c.writers, c.warmup, s.op); err != nil {
			return res, fmt.Errorf("%s warm-up: %w", s.name, err)
		}
	}
	cpuA := readCPU()
	rates, ratios, err := appendRounds(ctx, env, db, c, sides, out)
	if err != nil {
		return res, err
	}
	cpuB := readCPU()
	fmt.Fprintf(out, "   CPU during the rounds: %s\n", cpuUse(cpuA, cpuB))
	// The ratio is the median of the per-round ratios: each pairs two sides measured back to back,
	// which cancels slow drifts of the machine's load better than a ratio of medians.
	ratio := median(ratios)
	x := row{figure: fmt.Sprintf("append, %d writers", c.writers), measured: num(median(rates[0])) + " appends/s",
		baseline: num(median(rates[1])) + " raw inserts/s", ratio: ratioStr(ratio),
		target: fmt.Sprintf(">= %.1f", appendTarget), met: ratio >= appendTarget}
	if !x.met {
		x.note = busyNote(cpuA, cpuB)
	}
	verdict(out, x)
	res.add(x)
	return res, nil
}

// appendSides prepares the baseline table and returns the two sides: Store.Append, raw INSERT.
func appendSides(ctx context.Context, db *scratchDB, out io.Writer) ([]appendSide, error) {
	if _, err := db.Pool.Exec(ctx, rawTableDDL); err != nil {
		return nil, fmt.Errorf("creating events_raw: %w", err)
	}
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return nil, err
	}
	var nextID atomic.Int64
	sample, _ := productCreated(1, newRand())
	md, _ := json.Marshal(requestMetadata())
	fmt.Fprintf(out, "   payload: ProductCreated JSON of ~%d bytes, metadata JSON of ~%d bytes\n", len(mustJSON(sample)), len(md))
	storeOp := newStreamAppendOp(store, &nextID)
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
	return []appendSide{{"Store.Append", storeOp}, {"raw INSERT", rawOp}}, nil
}

// newStreamAppendOp is the append benchmark's measured operation, the single-event append rate
// other benchmarks compare with: Store.Append of one ProductCreated to a new stream (ExpectedVersion
// 0), the product's id taken from nextID.
func newStreamAppendOp(store *eventstore.Store, nextID *atomic.Int64) func(context.Context, *rand.Rand) error {
	return func(ctx context.Context, r *rand.Rand) error {
		id := nextID.Add(1)
		_, ev := productCreated(id, r)
		_, err := store.Append(ctx, requestMetadata(), eventstore.StreamAppend{
			StreamID: catalog.ProductStreamID(id), StreamType: catalog.ProductStreamType, ExpectedVersion: 0,
			Events: []eventstore.NewEvent{ev},
		})
		return err
	}
}

// appendRounds measures both sides per round (order alternating) and returns each side's rates
// and the per-round ratios.
func appendRounds(ctx context.Context, env *env, db *scratchDB, c appendConfig, sides []appendSide, out io.Writer) ([2][]float64, []float64, error) {
	var rates [2][]float64
	var ratios []float64
	for round := range c.rounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		var got [2]sideResult
		for _, i := range order {
			env.checkpoint(ctx, db.Pool)
			stop := func() {}
			if round == 0 {
				stop = env.profile("append-" + []string{"store", "raw"}[i])
			}
			sr, err := runWriters(ctx, c.writers, c.duration, sides[i].op)
			stop()
			if err != nil {
				return rates, nil, fmt.Errorf("%s: %w", sides[i].name, err)
			}
			got[i] = sr
			rates[i] = append(rates[i], sr.rate())
		}
		st, raw := got[0], got[1]
		ratios = append(ratios, st.rate()/raw.rate())
		fmt.Fprintf(out, "   round %d  Store.Append %7s/s (p50 %s, p99 %s)   raw INSERT %7s/s (p50 %s, p99 %s)   ratio %.2f\n",
			round+1, num(st.rate()), ms(st.lat.p50), ms(st.lat.p99), num(raw.rate()), ms(raw.lat.p50), ms(raw.lat.p99), st.rate()/raw.rate())
	}
	return rates, ratios, nil
}
