package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Snapshot is an aggregate's state at a stream version. It is a cache: derived from the events,
// never written with them, and safe to delete at any time.
type Snapshot struct {
	StreamID   string
	StreamType string
	// SchemaVersion is the version of State's shape (and of the code that computed it).
	SchemaVersion int
	// Version is the stream version State was computed at.
	Version int64
	// State is the aggregate's state as JSON.
	State json.RawMessage
}

// SnapshotTail is a stream read from its snapshot: the snapshot (if any) and the events after it.
type SnapshotTail struct {
	// Snapshot is the stream's snapshot of the requested type and schema version; nil when there
	// is none.
	Snapshot *Snapshot
	// Events are the events after Snapshot.Version (every event when Snapshot is nil), in order.
	Events []Event
	// Head is the stream's version when it was read (0 when the stream does not exist). A
	// snapshot whose version is above Head does not belong to this stream's history.
	Head int64
}

// LoadFrom returns the events of one stream with a version above afterVersion, in version order.
func (s *Store) LoadFrom(ctx context.Context, streamID string, afterVersion int64) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version`,
		streamID, afterVersion)
	if err != nil {
		return nil, fmt.Errorf("loading stream %s after version %d: %w", streamID, afterVersion, err)
	}
	evs, err := collectEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("loading stream %s after version %d: %w", streamID, afterVersion, err)
	}
	return evs, nil
}

// loadSnapshotTailSQL reads, in one statement (one snapshot of the database, one round trip), the
// stream's head, its snapshot of a schema version, and the events after that snapshot. Every row
// carries the head and the snapshot; when there are no events after it, one row carries only them.
// $1 stream id, $2 stream type, $3 schema version.
const loadSnapshotTailSQL = `
SELECT h.head, s.version, s.state::text, e.*
FROM (SELECT coalesce((SELECT version FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1), 0) AS head) h
LEFT JOIN snapshots s ON s.stream_id = $1 AND s.stream_type = $2 AND s.schema_version = $3
LEFT JOIN LATERAL (
    SELECT ` + eventColumns + `
    FROM events
    WHERE stream_id = $1 AND version > coalesce(s.version, 0)
    ORDER BY version
) e ON true
ORDER BY e.version`

// LoadSnapshotTail reads a stream's snapshot of the given type and schema version and the events
// after it, in one query. Snapshots of another schema version are not returned (the events are
// then the whole stream). The caller decides whether to trust the snapshot; LoadFrom(0) is the
// full load to fall back on.
func (s *Store) LoadSnapshotTail(ctx context.Context, streamID, streamType string, schemaVersion int) (SnapshotTail, error) {
	fail := func(err error) (SnapshotTail, error) {
		return SnapshotTail{}, fmt.Errorf("loading stream %s from its snapshot: %w", streamID, err)
	}
	rows, err := s.pool.Query(ctx, loadSnapshotTailSQL, streamID, streamType, schemaVersion)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var (
		out     SnapshotTail
		version *int64
		state   *string
	)
	for rows.Next() {
		if rows.RawValues()[3] == nil { // no event on this row: only the head and snapshot
			dest := make([]any, len(rows.FieldDescriptions()))
			dest[0], dest[1], dest[2] = &out.Head, &version, &state
			if err := rows.Scan(dest...); err != nil {
				return fail(err)
			}
			continue
		}
		e, err := scanEvent(prefixed{rows, []any{&out.Head, &version, &state}})
		if err != nil {
			return fail(err)
		}
		out.Events = append(out.Events, e)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if version != nil && state != nil {
		out.Snapshot = &Snapshot{StreamID: streamID, StreamType: streamType, SchemaVersion: schemaVersion,
			Version: *version, State: json.RawMessage(*state)}
	}
	return out, nil
}

// prefixed scans leading columns into its own destinations, then the rest into the caller's.
type prefixed struct {
	row    rowScanner
	prefix []any
}

func (p prefixed) Scan(dest ...any) error {
	return p.row.Scan(append(append(make([]any, 0, len(p.prefix)+len(dest)), p.prefix...), dest...)...)
}

// SaveSnapshot stores a snapshot unless the stored one is at least as new: a newer schema version
// wins, and within a schema version a higher stream version wins. Concurrent writers therefore
// never move a snapshot backwards.
func (s *Store) SaveSnapshot(ctx context.Context, snap Snapshot) error {
	if snap.StreamID == "" || snap.StreamType == "" || snap.Version < 1 || !json.Valid(snap.State) {
		return errors.New("eventstore: a snapshot needs a stream id and type, a version and JSON state")
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO snapshots AS s (stream_id, stream_type, schema_version, version, state)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (stream_id) DO UPDATE
SET stream_type = EXCLUDED.stream_type, schema_version = EXCLUDED.schema_version,
    version = EXCLUDED.version, state = EXCLUDED.state, created_at = now()
WHERE (s.schema_version, s.version) < (EXCLUDED.schema_version, EXCLUDED.version)`,
		snap.StreamID, snap.StreamType, snap.SchemaVersion, snap.Version, string(snap.State))
	if err != nil {
		return fmt.Errorf("saving snapshot of %s at version %d: %w", snap.StreamID, snap.Version, err)
	}
	return nil
}

// DeleteSnapshot removes a snapshot if it is still the stored one (same schema version and stream
// version): a reader found it unusable. A snapshot written meanwhile is kept.
func (s *Store) DeleteSnapshot(ctx context.Context, snap Snapshot) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM snapshots WHERE stream_id = $1 AND schema_version = $2 AND version = $3`,
		snap.StreamID, snap.SchemaVersion, snap.Version)
	if err != nil {
		return fmt.Errorf("deleting snapshot of %s at version %d: %w", snap.StreamID, snap.Version, err)
	}
	return nil
}
