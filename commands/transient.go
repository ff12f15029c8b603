package commands

import (
	"context"
	"time"

	"github.com/techvault/techvault/eventstore"
)

// unavailable marks a transient failure with domain.ErrUnavailable.
func unavailable(err error) error { return eventstore.Unavailable(err) }

// retryOnce reports whether an operation that failed with err should be tried once more: the
// failure is transient and the caller is still waiting.
func retryOnce(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && eventstore.Transient(err)
}

// resilientStore is the EventStore decorator for transient failures. Reads are retried once. An
// append is retried once only when it certainly had no effect (nothing was sent), or when it
// carries an Idempotency-Key, which makes the retry safe: the key is looked up first, and if the
// first attempt committed the command answers with its stored result. Otherwise the failure is
// returned as domain.ErrUnavailable (the outcome is unknown; the client repeats with its key).
type resilientStore struct{ EventStore }

func (s resilientStore) Load(ctx context.Context, streamID string) ([]eventstore.Event, error) {
	evs, err := s.EventStore.Load(ctx, streamID)
	if retryOnce(ctx, err) {
		evs, err = s.EventStore.Load(ctx, streamID)
	}
	return evs, unavailable(err)
}

func (s resilientStore) LookupKey(ctx context.Context, actor, key string, ttl time.Duration) (eventstore.StoredKey, bool, error) {
	k, ok, err := s.EventStore.LookupKey(ctx, actor, key, ttl)
	if retryOnce(ctx, err) {
		k, ok, err = s.EventStore.LookupKey(ctx, actor, key, ttl)
	}
	return k, ok, unavailable(err)
}

func (s resilientStore) Append(ctx context.Context, md eventstore.Metadata, appends ...eventstore.StreamAppend) (eventstore.AppendResult, error) {
	res, err := s.EventStore.Append(ctx, md, appends...)
	if retryOnce(ctx, err) && eventstore.SafeToRetry(err) {
		res, err = s.EventStore.Append(ctx, md, appends...)
	}
	return res, unavailable(err)
}

func (s resilientStore) AppendWithKey(ctx context.Context, md eventstore.Metadata, key eventstore.KeyRecord, appends ...eventstore.StreamAppend) (eventstore.AppendResult, error) {
	res, err := s.EventStore.AppendWithKey(ctx, md, key, appends...)
	if !retryOnce(ctx, err) {
		return res, unavailable(err)
	}
	if !eventstore.SafeToRetry(err) {
		// The append may have committed: its key says so.
		_, found, lerr := s.LookupKey(ctx, key.Actor, key.Key, IdempotencyKeyTTL)
		if lerr != nil {
			return res, unavailable(err)
		}
		if found {
			return eventstore.AppendResult{}, eventstore.ErrKeyTaken
		}
	}
	res, err = s.EventStore.AppendWithKey(ctx, md, key, appends...)
	return res, unavailable(err)
}

// resilientIDs retries a transient failure to allocate an id once: taking a sequence value has no
// effect but a harmless gap.
type resilientIDs struct{ IDAllocator }

func (a resilientIDs) NextID(ctx context.Context, kind string) (int64, error) {
	id, err := a.IDAllocator.NextID(ctx, kind)
	if retryOnce(ctx, err) {
		id, err = a.IDAllocator.NextID(ctx, kind)
	}
	return id, unavailable(err)
}

// resilientSnapshots wraps the store's snapshots, when it keeps any (nil otherwise), so that a
// snapshot load is retried once and reported as domain.ErrUnavailable like any other read.
func resilientSnapshots(store EventStore) SnapshotStore {
	snaps, ok := store.(SnapshotStore)
	if !ok {
		return nil
	}
	return resilientSnapshotStore{snaps}
}

type resilientSnapshotStore struct{ SnapshotStore }

func (s resilientSnapshotStore) LoadSnapshotTail(ctx context.Context, streamID, streamType string, schemaVersion int) (eventstore.SnapshotTail, error) {
	read, err := s.SnapshotStore.LoadSnapshotTail(ctx, streamID, streamType, schemaVersion)
	if retryOnce(ctx, err) {
		read, err = s.SnapshotStore.LoadSnapshotTail(ctx, streamID, streamType, schemaVersion)
	}
	return read, unavailable(err)
}
