// Package commands runs the store's commands: each handler loads the streams it needs, lets the
// domain decide, and appends the recorded events. Nothing else is written by a command.
package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
)

// EventStore is what command handlers need of the event store.
type EventStore interface {
	// Load returns a stream's events in version order (none when it does not exist).
	Load(ctx context.Context, streamID string) ([]eventstore.Event, error)
	// Append appends atomically; a version clash is an error matching domain.ErrConcurrency.
	Append(ctx context.Context, md eventstore.Metadata, appends ...eventstore.StreamAppend) (eventstore.AppendResult, error)
	// AppendWithKey is Append that stores an Idempotency-Key row in the same statement; when the
	// key is taken, nothing is appended and the error matches eventstore.ErrKeyTaken.
	AppendWithKey(ctx context.Context, md eventstore.Metadata, key eventstore.KeyRecord, appends ...eventstore.StreamAppend) (eventstore.AppendResult, error)
	// LookupKey returns the live Idempotency-Key row of (actor, key); expired rows are absent.
	LookupKey(ctx context.Context, actor, key string, ttl time.Duration) (eventstore.StoredKey, bool, error)
	// DeleteExpiredKeys deletes Idempotency-Key rows older than ttl.
	DeleteExpiredKeys(ctx context.Context, ttl time.Duration) (int64, error)
}

// IDAllocator hands out resource ids when a command is decided, so the response names what it
// created.
type IDAllocator interface {
	NextID(ctx context.Context, kind string) (int64, error)
}

// Decoder turns stored events of one aggregate type into domain events.
type Decoder func(eventType string, schemaVersion int, data []byte) (domain.Event, error)

// loadEvents loads and decodes a stream.
func loadEvents(ctx context.Context, store EventStore, streamID string, decode Decoder) ([]domain.Event, error) {
	stored, err := store.Load(ctx, streamID)
	if err != nil {
		return nil, err
	}
	return decodeEvents(streamID, stored, decode)
}

// toNewEvents encodes domain events for appending.
func toNewEvents(events []domain.Event) ([]eventstore.NewEvent, error) {
	out := make([]eventstore.NewEvent, 0, len(events))
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", e.EventType(), err)
		}
		out = append(out, eventstore.NewEvent{Type: e.EventType(), SchemaVersion: e.SchemaVersion(), Data: b})
	}
	return out, nil
}

// Change is one aggregate's recorded events, to append at the version it was loaded at.
type Change struct {
	StreamID        string
	StreamType      string
	ExpectedVersion int64
	Events          []domain.Event
	cached          *cachedAggregate // the aggregate's state after Events, for the AggregateCache (nil: not cached)
}

// storeMetadata converts a command's metadata into the event store's, at the append boundary.
func storeMetadata(md domain.Metadata) eventstore.Metadata {
	return eventstore.Metadata{CorrelationID: md.CorrelationID, CausationID: md.CausationID, ActorID: md.ActorID,
		RequestID: md.RequestID}
}

// appendChanges appends the changes that recorded something; it returns the position of the
// last event (or 0 when nothing changed). result is the command's answer (without its position):
// when the command runs under an Idempotency-Key, it is stored with the key, in the same statement
// as the events.
func appendChanges(ctx context.Context, store EventStore, md domain.Metadata, result any, changes ...Change) (int64, error) {
	appends := make([]eventstore.StreamAppend, 0, len(changes))
	for _, c := range changes {
		if len(c.Events) == 0 {
			continue
		}
		evs, err := toNewEvents(c.Events)
		if err != nil {
			return 0, err
		}
		appends = append(appends, eventstore.StreamAppend{
			StreamID: c.StreamID, StreamType: c.StreamType, ExpectedVersion: c.ExpectedVersion, Events: evs,
		})
	}
	if len(appends) == 0 {
		return 0, nil
	}
	var (
		res eventstore.AppendResult
		err error
	)
	if run, ok := ctx.Value(keyedRunKey{}).(keyedRun); ok {
		b, merr := json.Marshal(result)
		if merr != nil {
			return 0, fmt.Errorf("encoding the result to store with the idempotency key: %w", merr)
		}
		res, err = store.AppendWithKey(ctx, storeMetadata(md), eventstore.KeyRecord{Actor: run.actor, Key: run.Key,
			RequestHash: run.RequestHash, Command: run.command, Result: b}, appends...)
	} else {
		res, err = store.Append(ctx, storeMetadata(md), appends...)
	}
	if obs, ok := store.(appendObserver); ok {
		switch {
		case err == nil:
			obs.appended(changes)
		case errors.Is(err, domain.ErrConcurrency):
			obs.clashed(changes)
		}
	}
	if err != nil {
		return 0, err
	}
	return res.LastPosition, nil
}

// MaxRetries bounds how often a command that is safe to retry is re-decided after a version clash.
const MaxRetries = 12

// retryOnConflict runs decide again, on fresh state, when it lost a version race. Only commands
// whose decision is re-made from the reloaded state may use it.
func retryOnConflict[T any](ctx context.Context, decide func(ctx context.Context) (T, error)) (T, error) {
	var (
		res T
		err error
	)
	for attempt := range MaxRetries {
		res, err = decide(ctx)
		if !errors.Is(err, domain.ErrConcurrency) {
			return res, err
		}
		// Full jitter, doubling from 1ms up to 64ms, so contenders spread out instead of
		// colliding again in lockstep.
		backoff := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(backoff):
		}
	}
	return res, domain.Conflict("too many concurrent changes; try again")
}

// conflictPolicy says what a command does when it loses a version race.
type conflictPolicy bool

const (
	// once: the command is decided once; a version clash is the client's 409 (a create, whose
	// new stream cannot clash but for a duplicate).
	once conflictPolicy = false
	// redecideOnConflict: the command is decided again on fresh state (see retryOnConflict).
	redecideOnConflict conflictPolicy = true
)

// execute is the pipeline every command runs, written once: under an Idempotency-Key it runs at
// most once (keyed); decide loads what it needs and returns the command's result and the changes
// it recorded; those are appended atomically, each stream at its expected version, with the
// result stored beside the key; a version clash re-decides on fresh state when the policy says so.
// withPosition puts the position of the last appended event into the result.
func execute[R any](ctx context.Context, store EventStore, md domain.Metadata, command string, policy conflictPolicy,
	withPosition func(R, int64) R, decide func(ctx context.Context) (R, []Change, error),
) (R, error) {
	run := func(ctx context.Context) (R, error) {
		res, changes, err := decideChecked(ctx, store, decide)
		if err != nil {
			var zero R
			return zero, err
		}
		pos, err := appendChanges(ctx, store, md, res, changes...)
		if err != nil {
			var zero R
			return zero, err
		}
		return withPosition(res, pos), nil
	}
	return keyed(ctx, store, md, command, func(ctx context.Context) (R, error) {
		if policy == redecideOnConflict {
			return retryOnConflict(ctx, run)
		}
		return run(ctx)
	}, withPosition)
}
