package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// DefaultSnapshotEvery is how many events a load may replay after the latest snapshot (or from
// the start of a stream without one) before it writes a newer snapshot. Ten keeps a load of any
// stream about as dear as a load of a ten-event stream (measured: 50 cost long streams 0.58x of
// short ones through HTTP, 10 gave 1.08x), for one snapshot upsert every ten commands.
const DefaultSnapshotEvery = 10

// SnapshotStore is what the loader needs to read a stream from its latest snapshot. An
// EventStore that does not implement it is always loaded in full.
type SnapshotStore interface {
	// LoadSnapshotTail returns the stream's head version, its snapshot of this stream type and
	// schema version (nil when there is none) and the events after that snapshot (all of them
	// when there is none), read together.
	LoadSnapshotTail(ctx context.Context, streamID, streamType string, schemaVersion int) (eventstore.SnapshotTail, error)
	// LoadFrom returns the stream's events after a version, in order.
	LoadFrom(ctx context.Context, streamID string, afterVersion int64) ([]eventstore.Event, error)
	// SaveSnapshot stores a snapshot unless a newer one is stored already.
	SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error
	// DeleteSnapshot removes a snapshot if it is still the stored one.
	DeleteSnapshot(ctx context.Context, snap eventstore.Snapshot) error
}

// Option configures command handlers.
type Option func(*loader)

// WithLogger sets the logger for what a command does not fail on (a snapshot that could not be
// used or written). slog.Default() when not given.
func WithLogger(log *slog.Logger) Option { return func(l *loader) { l.log = log } }

// WithSnapshotEvery sets how many events a load may replay before it writes a snapshot
// (DefaultSnapshotEvery when not given; 0 writes none, existing snapshots are still read).
func WithSnapshotEvery(n int) Option { return func(l *loader) { l.every = int64(max(n, 0)) } }

// loader loads aggregates, from their latest snapshot when the store keeps snapshots.
type loader struct {
	store EventStore
	snaps SnapshotStore // nil: load every stream in full
	log   *slog.Logger
	every int64
	cache *AggregateCache // nil: none
}

func newLoader(store EventStore, snaps SnapshotStore, opts []Option) loader {
	l := loader{store: store, snaps: snaps, log: slog.Default(), every: DefaultSnapshotEvery}
	for _, o := range opts {
		o(&l)
	}
	return l
}

// aggregateKind is how one aggregate type is loaded and snapshotted. A is the aggregate (a
// pointer, nil when its stream is empty), S its snapshot state.
type aggregateKind[A any, S any] struct {
	name          string
	streamID      func(id int64) string
	streamType    string
	schemaVersion int
	decode        Decoder
	rehydrate     func(history []domain.Event) A
	rehydrateFrom func(state S, version int64, tail []domain.Event) (A, error)
	snapshot      func(A) S
	stateID       func(S) int64
}

var productKind = aggregateKind[*catalog.Product, catalog.ProductState]{
	name: "product", streamID: catalog.ProductStreamID, streamType: catalog.ProductStreamType,
	schemaVersion: catalog.ProductSnapshotSchemaVersion, decode: catalog.Decode,
	rehydrate: catalog.RehydrateProduct, rehydrateFrom: catalog.RehydrateProductFrom,
	snapshot: (*catalog.Product).Snapshot, stateID: func(s catalog.ProductState) int64 { return s.ID },
}

var categoryKind = aggregateKind[*catalog.Category, catalog.CategoryState]{
	name: "category", streamID: catalog.CategoryStreamID, streamType: catalog.CategoryStreamType,
	schemaVersion: catalog.CategorySnapshotSchemaVersion, decode: catalog.Decode,
	rehydrate: catalog.RehydrateCategory, rehydrateFrom: catalog.RehydrateCategoryFrom,
	snapshot: (*catalog.Category).Snapshot, stateID: func(s catalog.CategoryState) int64 { return s.ID },
}

// loadAggregate loads aggregate id of kind k: from its snapshot and the events after it when the
// snapshot is usable, from its whole stream otherwise. A snapshot is a cache, so anything wrong
// with it (missing, of another schema version, undecodable, impossible, ahead of the stream)
// only costs a full load. When the load replayed at least the snapshot interval
// (WithSnapshotEvery), it writes a snapshot of the state it loaded (committed events only, so
// independent of what the command then decides); failing to write one is logged, never returned.
func loadAggregate[A, S any](ctx context.Context, l loader, k aggregateKind[A, S], id int64) (A, error) {
	var zero A
	streamID := k.streamID(id)
	fail := func(err error) (A, error) { return zero, fmt.Errorf("loading %s %d: %w", k.name, id, err) }
	if l.snaps == nil {
		history, err := loadEvents(ctx, l.store, streamID, k.decode)
		if err != nil {
			return fail(err)
		}
		agg := k.rehydrate(history)
		remember(l, k, id, int64(len(history)), agg)
		return agg, nil
	}

	read, err := l.snaps.LoadSnapshotTail(ctx, streamID, k.streamType, k.schemaVersion)
	if err != nil {
		return fail(err)
	}
	tail, err := decodeEvents(streamID, read.Events, k.decode)
	if err != nil {
		return fail(err)
	}
	var (
		agg  A
		base int64 // the version the load started from: the snapshot's, or 0
	)
	if snap := read.Snapshot; snap != nil {
		agg, err = restore(k, id, read, tail)
		if err == nil {
			base = snap.Version
		} else {
			l.log.WarnContext(ctx, "snapshot ignored; loading the whole stream", "stream_id", streamID,
				"snapshot_version", snap.Version, "schema_version", snap.SchemaVersion, "error", err)
			if err := l.snaps.DeleteSnapshot(ctx, *snap); err != nil {
				l.log.WarnContext(ctx, "deleting unusable snapshot", "stream_id", streamID, "error", err)
			}
			stored, err := l.snaps.LoadFrom(ctx, streamID, 0)
			if err != nil {
				return fail(err)
			}
			if tail, err = decodeEvents(streamID, stored, k.decode); err != nil {
				return fail(err)
			}
		}
	}
	if base == 0 {
		agg = k.rehydrate(tail)
	}
	if replayed := int64(len(tail)); l.every > 0 && replayed >= l.every {
		saveSnapshot(ctx, l, k, streamID, base+replayed, agg)
	}
	remember(l, k, id, base+int64(len(tail)), agg)
	return agg, nil
}

// restore rebuilds the aggregate from a snapshot and the events after it, or says why the
// snapshot cannot be used.
func restore[A, S any](k aggregateKind[A, S], id int64, read eventstore.SnapshotTail, tail []domain.Event) (A, error) {
	var zero A
	snap := read.Snapshot
	if snap.Version > read.Head {
		return zero, fmt.Errorf("snapshot at version %d is ahead of the stream (at %d)", snap.Version, read.Head)
	}
	if n := int64(len(read.Events)); snap.Version+n != read.Head || n > 0 && read.Events[0].Version != snap.Version+1 {
		return zero, fmt.Errorf("events after snapshot version %d do not reach the head %d", snap.Version, read.Head)
	}
	var state S
	dec := json.NewDecoder(bytes.NewReader(snap.State))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&state); err != nil {
		return zero, fmt.Errorf("decoding snapshot state: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return zero, errors.New("decoding snapshot state: trailing data")
	}
	if got := k.stateID(state); got != id {
		return zero, fmt.Errorf("snapshot state is of %s %d", k.name, got)
	}
	return k.rehydrateFrom(state, snap.Version, tail)
}

// saveSnapshot writes the state of a just-loaded aggregate at version. A snapshot is a cache:
// a failure is logged and the command goes on.
func saveSnapshot[A, S any](ctx context.Context, l loader, k aggregateKind[A, S], streamID string, version int64, agg A) {
	state, err := json.Marshal(k.snapshot(agg))
	if err == nil {
		err = l.snaps.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: streamID, StreamType: k.streamType,
			SchemaVersion: k.schemaVersion, Version: version, State: state})
	}
	if err != nil {
		l.log.WarnContext(ctx, "snapshot not written", "stream_id", streamID, "version", version, "error", err)
	}
}

// decodeEvents decodes stored events of a stream.
func decodeEvents(streamID string, stored []eventstore.Event, decode Decoder) ([]domain.Event, error) {
	out := make([]domain.Event, 0, len(stored))
	for _, e := range stored {
		d, err := decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return nil, fmt.Errorf("stream %s version %d: %w", streamID, e.Version, err)
		}
		out = append(out, d)
	}
	return out, nil
}
