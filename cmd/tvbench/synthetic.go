package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// The saturation benchmark's six synthetic projectors: realistic set-based read models, each
// writing a table of its own, with the cost profile of the commerce projectors to come. Each
// folds its batch in Go and writes it with one statement; the position guards make a replayed
// batch change nothing.

// counterProjector counts events (and payload bytes) per key: per stream, per event type, per
// event type and day, per stream type and hour.
type counterProjector struct {
	name string
	key  func(e eventstore.Event) string
}

func (p counterProjector) Name() string          { return p.name }
func (p counterProjector) Tables() []string      { return []string{p.name} }
func (p counterProjector) StreamTypes() []string { return nil }

func (p counterProjector) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	idx := map[string]int{}
	var keys []string
	var events, bytes, last []int64
	for _, e := range batch {
		k := p.key(e)
		i, ok := idx[k]
		if !ok {
			i = len(keys)
			idx[k] = i
			keys, events, bytes, last = append(keys, k), append(events, 0), append(bytes, 0), append(last, 0)
		}
		events[i]++
		bytes[i] += int64(len(e.Data))
		last[i] = e.Position
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return []projections.Stmt{{SQL: t.Sub(`INSERT INTO {` + p.name + `} AS c (key, events, bytes, last_position)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
		ON CONFLICT (key) DO UPDATE SET events = c.events + excluded.events, bytes = c.bytes + excluded.bytes,
			last_position = excluded.last_position
		WHERE c.last_position < excluded.last_position`), Args: []any{keys, events, bytes, last}}}, nil
}

// auditProjector copies a few columns of every event (an audit trail).
type auditProjector struct{}

func (auditProjector) Name() string          { return "bench_audit" }
func (auditProjector) Tables() []string      { return []string{"bench_audit"} }
func (auditProjector) StreamTypes() []string { return nil }

func (auditProjector) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	n := len(batch)
	pos, streams, types, sizes, at := make([]int64, n), make([]string, n), make([]string, n), make([]int64, n), make([]time.Time, n)
	for i, e := range batch {
		pos[i], streams[i], types[i], sizes[i], at[i] = e.Position, e.StreamID, e.Type, int64(len(e.Data)), e.RecordedAt.UTC()
	}
	return []projections.Stmt{{SQL: t.Sub(`INSERT INTO {bench_audit} (position, stream_id, event_type, payload_bytes, recorded_at)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
		ON CONFLICT (position) DO NOTHING`), Args: []any{pos, streams, types, sizes, at}}}, nil
}

// lastSeenProjector keeps each stream's latest version, event type and time.
type lastSeenProjector struct{}

func (lastSeenProjector) Name() string          { return "bench_stream_last" }
func (lastSeenProjector) Tables() []string      { return []string{"bench_stream_last"} }
func (lastSeenProjector) StreamTypes() []string { return nil }

func (lastSeenProjector) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	latest := map[string]eventstore.Event{}
	for _, e := range batch {
		latest[e.StreamID] = e // delivery order: the last one wins
	}
	var streams, types []string
	var versions []int64
	var at []time.Time
	for s, e := range latest {
		streams, types, versions, at = append(streams, s), append(types, e.Type), append(versions, e.Version), append(at, e.RecordedAt.UTC())
	}
	if len(streams) == 0 {
		return nil, nil
	}
	return []projections.Stmt{{SQL: t.Sub(`INSERT INTO {bench_stream_last} AS c (stream_id, event_type, version, recorded_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[])
		ON CONFLICT (stream_id) DO UPDATE SET event_type = excluded.event_type, version = excluded.version,
			recorded_at = excluded.recorded_at
		WHERE c.version < excluded.version`), Args: []any{streams, types, versions, at}}}, nil
}

// syntheticProjectors are the six extra projectors.
func syntheticProjectors() []appProjector {
	return []appProjector{
		counterProjector{"bench_stream_counts", func(e eventstore.Event) string { return e.StreamID }},
		counterProjector{"bench_type_counts", func(e eventstore.Event) string { return e.Type }},
		counterProjector{"bench_type_daily", func(e eventstore.Event) string {
			return e.Type + " " + e.RecordedAt.UTC().Format(time.DateOnly)
		}},
		counterProjector{"bench_stream_type_hourly", func(e eventstore.Event) string {
			return e.StreamType + " " + e.RecordedAt.UTC().Truncate(time.Hour).Format(time.RFC3339)
		}},
		auditProjector{},
		lastSeenProjector{},
	}
}

// createSyntheticTables creates the synthetic projectors' tables in a scratch database.
func createSyntheticTables(ctx context.Context, pool *pgxpool.Pool) error {
	var ddl []string
	for _, p := range syntheticProjectors() {
		if c, ok := p.(counterProjector); ok {
			ddl = append(ddl, `CREATE TABLE `+c.name+` (key text PRIMARY KEY, events bigint NOT NULL,
				bytes bigint NOT NULL, last_position bigint NOT NULL)`)
		}
	}
	ddl = append(ddl,
		`CREATE TABLE bench_audit (position bigint PRIMARY KEY, stream_id text NOT NULL, event_type text NOT NULL,
			payload_bytes bigint NOT NULL, recorded_at timestamptz NOT NULL)`,
		`CREATE TABLE bench_stream_last (stream_id text PRIMARY KEY, event_type text NOT NULL, version bigint NOT NULL,
			recorded_at timestamptz NOT NULL)`)
	for _, q := range ddl {
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("creating the synthetic projectors' tables: %w", err)
		}
	}
	return nil
}
