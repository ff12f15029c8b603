// Package effects is the home of side effects: work that must happen once per event outside the
// database (mail, Stripe, Cloudinary deletions, notifications). A Reactor is driven by the
// projection engine like a projector (its own consumer group and checkpoint, batches in log
// order, a failure retried with backoff and never skipped) but, unlike a projector, it acts on
// the world, so it is never called from a command or a projector.
//
// Delivery is at least once, and once in practice: each event a reactor has acted on is recorded
// (reactor, event id) right after React returns, outside the batch's transaction, so a batch
// retried after a later event failed skips it. Only a crash between an effect and its record
// repeats it; reactors therefore pass the event id to outside services that deduplicate (Stripe
// idempotency keys, Message-Id headers).
package effects

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// Reactor performs the side effect of events.
type Reactor interface {
	// Name is the reactor's consumer group and checkpoint key, fixed for ever.
	Name() string
	// StreamTypes lists the stream types whose events the reactor is given (nil: every type).
	StreamTypes() []string
	// React performs the effect of one event; an error makes the engine retry the event later.
	// It must tolerate being called again for an event whose effect it already performed.
	React(ctx context.Context, e eventstore.Event) error
}

// Handler adapts a reactor to the projection engine (projections.EngineConfig.Handlers). db is
// used to record what is done outside the engine's transactions.
func Handler(r Reactor, db *sql.DB) projections.BatchHandler { return handler{r: r, db: db} }

type handler struct {
	r  Reactor
	db *sql.DB
}

func (h handler) Name() string          { return h.r.Name() }
func (h handler) StreamTypes() []string { return h.r.StreamTypes() }

// HandleBatch reacts to each event of the batch not acted on yet, in order, recording each.
func (h handler) HandleBatch(ctx context.Context, tx *sql.Tx, batch []eventstore.Event) error {
	ids := make([]uuid.UUID, len(batch))
	for i, e := range batch {
		ids[i] = e.ID
	}
	done, err := h.done(ctx, tx, ids)
	if err != nil {
		return err
	}
	for _, e := range batch {
		if done[e.ID] {
			continue
		}
		if err := h.r.React(ctx, e); err != nil {
			return &projections.EventError{Event: e, Err: err}
		}
		if _, err := h.db.ExecContext(ctx, `INSERT INTO effects_done (reactor, event_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, h.r.Name(), e.ID); err != nil {
			return &projections.EventError{Event: e, Err: fmt.Errorf("recording the effect: %w", err)}
		}
	}
	return nil
}

func (h handler) done(ctx context.Context, tx *sql.Tx, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT event_id FROM effects_done WHERE reactor = $1 AND event_id = ANY($2)`,
		h.r.Name(), ids)
	if err != nil {
		return nil, fmt.Errorf("reading done effects: %w", err)
	}
	defer rows.Close()
	done := map[uuid.UUID]bool{}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		done[id] = true
	}
	return done, rows.Err()
}
