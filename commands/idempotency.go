package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
)

// IdempotencyKeyTTL is how long an Idempotency-Key is honoured. An older key is forgotten: a
// request repeating it runs again.
const IdempotencyKeyTTL = 24 * time.Hour

// Idempotency is a request's Idempotency-Key and the hash of the request it came with (method,
// path and canonical body). Give it to a command with WithIdempotency.
type Idempotency struct {
	Key         string
	RequestHash []byte
}

type idempotencyKey struct{}

// WithIdempotency returns ctx carrying the key: every command run with that context answers a
// repeat of the key with the first answer, and a reuse of the key for another request with a
// conflict.
func WithIdempotency(ctx context.Context, k Idempotency) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, k)
}

// keyedRun is what appendChanges needs to store the key with the events: set by keyed.
type keyedRun struct {
	actor   string
	command string
	Idempotency
}

type keyedRunKey struct{}

// errKeyReused is the conflict answered when a key comes back with another request.
var errKeyReused = domain.Conflict("Idempotency-Key was used with another request")

// storedRefusal is the result stored with a key when the command's first answer was a refusal
// that appended events of its own (an order refused for a changed price moves the cart to the new
// prices): a repeat of the key is answered with the same refusal, not run again. Only the
// price_changed refusal is stored so.
type storedRefusal struct {
	Refused *refusal `json:"refused"`
	at      int64    // the position of the append that stored it (not stored: the key row has it)
}

// RefusedAt is a refusal whose command appended events nevertheless (an order refused for a
// changed price reprices the cart): Position is that append's, for reading its effects with
// X-Min-Position.
type RefusedAt struct {
	Err      error
	Position int64
}

func (e *RefusedAt) Error() string { return e.Err.Error() }
func (e *RefusedAt) Unwrap() error { return e.Err }

type refusal struct {
	Kind    string `json:"kind"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

const refusedPriceChanged = "price_changed"

// refusalOf is what a stored refusal answers (nil when the result is not one), position the
// position of the append that stored it.
func refusalOf(result []byte, position int64) error {
	var r storedRefusal
	if json.Unmarshal(result, &r) != nil || r.Refused == nil || r.Refused.Kind != refusedPriceChanged {
		return nil
	}
	return &RefusedAt{Err: &domain.Error{Kind: domain.ErrPriceChanged, Field: r.Refused.Field, Message: r.Refused.Message},
		Position: position}
}

// keyed runs a command under the context's Idempotency-Key, if it has one: a live key of the same
// actor answers with the stored result (restore puts back the position of its last event); a key
// stored for another request is a conflict; otherwise the command runs and appendChanges stores
// the key in the same statement as the events. A concurrent duplicate that loses the race for the
// key appends nothing and answers with the winner's result. Commands that append nothing store
// nothing.
func keyed[T any](ctx context.Context, store EventStore, md domain.Metadata, command string,
	run func(ctx context.Context) (T, error), restore func(res T, position int64) T,
) (T, error) {
	k, ok := ctx.Value(idempotencyKey{}).(Idempotency)
	// Keys are per actor: without one, anonymous clients would share a key space and could be
	// answered with each other's results, so an anonymous command runs unkeyed.
	if !ok || k.Key == "" || md.ActorID == "" {
		return run(ctx)
	}
	var zero T
	stored := func() (T, bool, error) {
		row, found, err := store.LookupKey(ctx, md.ActorID, k.Key, IdempotencyKeyTTL)
		if err != nil || !found {
			return zero, false, err
		}
		if !bytes.Equal(row.RequestHash, k.RequestHash) {
			return zero, true, errKeyReused
		}
		if err := refusalOf(row.Result, row.Position); err != nil {
			return zero, true, err
		}
		var res T
		if err := json.Unmarshal(row.Result, &res); err != nil {
			return zero, true, fmt.Errorf("decoding the stored result of %s: %w", row.Command, err)
		}
		return restore(res, row.Position), true, nil
	}
	if res, found, err := stored(); found || err != nil {
		return res, err
	}
	res, err := run(context.WithValue(ctx, keyedRunKey{}, keyedRun{actor: md.ActorID, command: command, Idempotency: k}))
	if err == nil {
		return res, nil
	}
	if !errors.Is(err, eventstore.ErrKeyTaken) {
		// A concurrent duplicate may have won while this run re-decided on the state it left
		// (a checked-out cart, a spent stock) and failed on it: its stored answer is the answer.
		if res, found, serr := stored(); found || serr != nil {
			return res, serr
		}
		return res, err
	}
	res, found, err := stored()
	if err == nil && !found {
		// The winner's key expired between its append and this lookup.
		err = domain.Conflict("Idempotency-Key was used concurrently; try again")
	}
	return res, err
}

// DeleteExpiredIdempotencyKeys deletes the keys older than IdempotencyKeyTTL and returns how many
// it deleted. Expired keys are already ignored; this only reclaims their rows. Call it now and then
// (say every few minutes); it is cheap and safe to run from several processes.
func DeleteExpiredIdempotencyKeys(ctx context.Context, store EventStore) (int64, error) {
	return store.DeleteExpiredKeys(ctx, IdempotencyKeyTTL)
}

func (r CategoryResult) withPosition(pos int64) CategoryResult { r.Position = pos; return r }
func (r ProductResult) withPosition(pos int64) ProductResult   { r.Position = pos; return r }

// positionOnly restores the result of a command that answers with a position only.
func positionOnly(_ int64, pos int64) int64 { return pos }
