package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
)

// Store is the Postgres event store.
type Store struct {
	pool  *pgxpool.Pool
	now   func() time.Time
	group *appendGroup // Append's grouping of concurrent appends (group.go)
}

// Config configures a Store.
type Config struct {
	Pool *pgxpool.Pool
	// Now is the clock used for recorded_at; time.Now when nil.
	Now func() time.Time
}

// New returns a Store over the pool.
func New(cfg Config) (*Store, error) {
	if cfg.Pool == nil {
		return nil, errors.New("eventstore: pool is nil")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{pool: cfg.Pool, now: cfg.Now, group: newAppendGroup()}, nil
}

// Pool returns the underlying pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// appendSQL inserts the events of every stream of an append in one statement, in (stream, version)
// order whatever order they were given in: two appends that share streams then take the streams'
// unique-index locks in the same order, so they wait for each other instead of deadlocking (two
// orders for the same two products, listed in opposite orders, deadlocked). The positions of an
// append's events follow that order; AppendResult still reports them in the order given.
const appendSQL = `
INSERT INTO events (uuid, stream_id, stream_type, version, event_type, schema_version,
                    payload, metadata, recorded_at, content_hash, hash)
SELECT u, s, st, v, et, sv, p::json, m::json, ra, ch, h
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[],
            $7::text[], $8::text[], $9::timestamptz[], $10::bytea[], $11::bytea[])
     AS t(u, s, st, v, et, sv, p, m, ra, ch, h)
ORDER BY s, v
RETURNING "offset", uuid`

// appendOneSQL is appendSQL for the common case of a single event: plain VALUES are cheaper to
// plan and execute than unnesting ten one-element arrays.
const appendOneSQL = `
INSERT INTO events (uuid, stream_id, stream_type, version, event_type, schema_version,
                    payload, metadata, recorded_at, content_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8::json, $9, $10, $11)
RETURNING "offset", uuid`

// AppendResult reports where appended events landed.
type AppendResult struct {
	// Positions of the appended events, in the order they were given.
	Positions []int64
	// LastPosition is the highest position appended.
	LastPosition int64
	// IDs of the appended events, in the order they were given.
	IDs []uuid.UUID
}

// Append writes the events of every StreamAppend atomically, in one statement (and so one short
// transaction): either every stream is at its expected version and all events are appended, or
// nothing is and a *ConcurrencyError is returned.
// Single-stream appends made at the same moment are written together (group.go), each keeping
// its own outcome.
func (s *Store) Append(ctx context.Context, md Metadata, appends ...StreamAppend) (AppendResult, error) {
	p, err := s.prepare(md, appends)
	if err != nil {
		return AppendResult{}, err
	}
	if len(appends) > 1 {
		// An append to several streams (an order reserving products) is written alone: such
		// appends meet each other on their streams, and one waiting for another's lock would hold
		// a writer, and every append grouped with it, for as long.
		return p.run(ctx, s.pool, nil)
	}
	return s.appendGrouped(ctx, p)
}

// AppendWith is Append through q, which may be a transaction of the caller's: the events are then
// visible (and delivered to projectors) only when that transaction commits. Keep it short: an open
// writer holds back delivery to every projector. Never call Append while such a transaction is
// open: Append may be grouped with another caller's append to a stream the transaction wrote, and
// that group would wait for the transaction while the transaction waits for the group.
func (s *Store) AppendWith(ctx context.Context, q Querier, md Metadata, appends ...StreamAppend) (AppendResult, error) {
	return s.appendWith(ctx, q, md, nil, appends...)
}

// appendWith appends, and stores key in the same statement when it is not nil.
func (s *Store) appendWith(ctx context.Context, q Querier, md Metadata, key *KeyRecord, appends ...StreamAppend) (AppendResult, error) {
	p, err := s.prepare(md, appends)
	if err != nil {
		return AppendResult{}, err
	}
	return p.run(ctx, q, key)
}

// preparedAppend is an append validated and encoded into the columns of its rows, in the order
// its events were given.
type preparedAppend struct {
	appends  []StreamAppend
	ids      []string
	uuids    []uuid.UUID
	streams  []string
	types    []string
	versions []int64
	evTypes  []string
	schemas  []int32
	payloads []string
	metas    []string
	times    []time.Time
	hashes   [][]byte
	// firsts holds each event's hash as the first of its stream: sha256(content). The database
	// keeps it for version 1 and chains later versions itself.
	firsts [][]byte
}

func (p *preparedAppend) len() int { return len(p.ids) }

// touchesAny reports whether p appends to any of the streams.
func (p *preparedAppend) touchesAny(streams map[string]bool) bool {
	for _, a := range p.appends {
		if streams[a.StreamID] {
			return true
		}
	}
	return false
}

// touches reports whether p appends to the stream.
func (p *preparedAppend) touches(streamID string) bool {
	for _, a := range p.appends {
		if a.StreamID == streamID {
			return true
		}
	}
	return false
}

// prepare validates an append and encodes its rows.
func (s *Store) prepare(md Metadata, appends []StreamAppend) (*preparedAppend, error) {
	n := 0
	for _, a := range appends {
		n += len(a.Events)
	}
	if n == 0 {
		return nil, errors.New("eventstore: nothing to append")
	}
	meta, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("encoding metadata: %w", err)
	}
	recordedAt := s.now().UTC().Truncate(time.Microsecond)

	p := &preparedAppend{appends: appends,
		ids: make([]string, 0, n), uuids: make([]uuid.UUID, 0, n), streams: make([]string, 0, n),
		types: make([]string, 0, n), versions: make([]int64, 0, n), evTypes: make([]string, 0, n),
		schemas: make([]int32, 0, n), payloads: make([]string, 0, n), metas: make([]string, 0, n),
		times: make([]time.Time, 0, n), hashes: make([][]byte, 0, n), firsts: make([][]byte, 0, n)}
	seen := make(map[string]bool, len(appends))
	for _, a := range appends {
		if a.StreamID == "" || a.StreamType == "" {
			return nil, errors.New("eventstore: stream id and type are required")
		}
		if seen[a.StreamID] {
			return nil, fmt.Errorf("eventstore: stream %s given twice", a.StreamID)
		}
		seen[a.StreamID] = true
		if a.ExpectedVersion < 0 {
			return nil, fmt.Errorf("eventstore: negative expected version for %s", a.StreamID)
		}
		for i, e := range a.Events {
			if e.Type == "" || e.SchemaVersion < 1 {
				return nil, fmt.Errorf("eventstore: event %d of %s has no type or schema version", i, a.StreamID)
			}
			// Compacted so that stored payloads are canonical; this also validates them.
			var data bytes.Buffer
			if err := json.Compact(&data, e.Data); err != nil {
				return nil, fmt.Errorf("eventstore: event %s of %s has invalid JSON data: %w", e.Type, a.StreamID, err)
			}
			id := e.ID
			if id == uuid.Nil {
				if id, err = uuid.NewV7(); err != nil {
					return nil, fmt.Errorf("generating event id: %w", err)
				}
			}
			v := a.ExpectedVersion + int64(i) + 1
			p.uuids = append(p.uuids, id)
			p.ids = append(p.ids, id.String())
			p.streams = append(p.streams, a.StreamID)
			p.types = append(p.types, a.StreamType)
			p.versions = append(p.versions, v)
			p.evTypes = append(p.evTypes, e.Type)
			p.schemas = append(p.schemas, int32(e.SchemaVersion))
			p.payloads = append(p.payloads, data.String())
			p.metas = append(p.metas, string(meta))
			p.times = append(p.times, recordedAt)
			ch := contentHash(id, a.StreamID, a.StreamType, v, e.Type, e.SchemaVersion, data.Bytes(), meta, recordedAt)
			p.hashes = append(p.hashes, ch)
			p.firsts = append(p.firsts, chainHash(nil, ch))
		}
	}
	return p, nil
}

// merge appends q's rows to p's (a group of appends written in one statement).
func (p *preparedAppend) merge(q *preparedAppend) {
	p.appends = append(p.appends, q.appends...)
	p.ids, p.uuids, p.streams = append(p.ids, q.ids...), append(p.uuids, q.uuids...), append(p.streams, q.streams...)
	p.types, p.versions, p.evTypes = append(p.types, q.types...), append(p.versions, q.versions...), append(p.evTypes, q.evTypes...)
	p.schemas, p.payloads, p.metas = append(p.schemas, q.schemas...), append(p.payloads, q.payloads...), append(p.metas, q.metas...)
	p.times, p.hashes, p.firsts = append(p.times, q.times...), append(p.hashes, q.hashes...), append(p.firsts, q.firsts...)
}

// insert inserts the rows in one statement on q (with key, when not nil) and returns where they
// landed, by event id.
func (p *preparedAppend) insert(ctx context.Context, q Querier, key *KeyRecord) (map[string]int64, error) {
	var args []any
	sql, keyed := appendSQL, appendKeyedSQL
	if p.len() == 1 {
		sql, keyed = appendOneSQL, appendOneKeyedSQL
		args = []any{p.ids[0], p.streams[0], p.types[0], p.versions[0], p.evTypes[0], p.schemas[0],
			p.payloads[0], p.metas[0], p.times[0], p.hashes[0], p.firsts[0]}
	} else {
		args = []any{p.ids, p.streams, p.types, p.versions, p.evTypes, p.schemas, p.payloads, p.metas, p.times, p.hashes, p.firsts}
	}
	if key != nil {
		sql = keyed
		args = append(args, key.Actor, key.Key, key.RequestHash, key.Command, string(key.Result))
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, translateAppendError(err, p.appends)
	}
	byID := make(map[string]int64, p.len())
	for rows.Next() {
		var pos int64
		var id string
		if err := rows.Scan(&pos, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading appended positions: %w", err)
		}
		byID[id] = pos
	}
	if err := rows.Err(); err != nil {
		return nil, translateAppendError(err, p.appends)
	}
	return byID, nil
}

// result is the AppendResult of p's events, given their positions by id.
func (p *preparedAppend) result(byID map[string]int64) AppendResult {
	res := AppendResult{Positions: make([]int64, p.len()), IDs: p.uuids}
	for i, id := range p.ids {
		res.Positions[i] = byID[id]
		res.LastPosition = max(res.LastPosition, byID[id])
	}
	return res
}

// run inserts p alone.
func (p *preparedAppend) run(ctx context.Context, q Querier, key *KeyRecord) (AppendResult, error) {
	byID, err := p.insert(ctx, q, key)
	if err != nil {
		return AppendResult{}, err
	}
	return p.result(byID), nil
}

// ErrDuplicateEvent reports an event id that is already in the log: a conflict (HTTP 409), whose
// message names no internals.
var ErrDuplicateEvent error = &domain.Error{Kind: domain.ErrConflict,
	Message: "the event was already recorded; it is not appended twice"}

func translateAppendError(err error, appends []StreamAppend) error {
	clash := func(streamID string) error {
		ce := &ConcurrencyError{StreamID: streamID}
		for _, a := range appends {
			if a.StreamID == streamID {
				ce.ExpectedVersion = a.ExpectedVersion
			}
		}
		return ce
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == "events_stream_version_key":
			return clash(streamFromDetail(pgErr.Detail))
		case pgErr.Code == "TV409":
			// "stream <id> is not at version <n>"
			rest, _ := strings.CutPrefix(pgErr.Message, "stream ")
			id, _, _ := strings.Cut(rest, " is not at version ")
			return clash(id)
		case pgErr.Code == "23505" && pgErr.ConstraintName == "idempotency_keys_pkey":
			return ErrKeyTaken
		case pgErr.Code == "23505" && pgErr.ConstraintName == "events_uuid_key":
			return fmt.Errorf("%w: %s", ErrDuplicateEvent, pgErr.Detail)
		}
	}
	return fmt.Errorf("appending events: %w", err)
}

// streamFromDetail extracts the stream id from "Key (stream_id, version)=(product-1, 2) already exists.".
func streamFromDetail(detail string) string {
	start := bytes.IndexByte([]byte(detail), '=')
	if start < 0 {
		return ""
	}
	rest := detail[start+1:]
	if len(rest) < 2 || rest[0] != '(' {
		return ""
	}
	end := bytes.LastIndex([]byte(rest), []byte(", "))
	if end < 1 {
		return ""
	}
	return rest[1:end]
}

// eventColumns are the columns scanEvent reads. The transaction id is renamed: an output column
// named transaction_id would capture "ORDER BY transaction_id" and sort by the bigint cast instead
// of walking the (transaction_id, offset) primary key.
const eventColumns = `"offset", transaction_id::text::bigint AS tx_id, uuid, stream_id, stream_type, version, event_type,
	schema_version, payload::text, metadata::text, recorded_at, hash`

// rowScanner is a pgx row or a database/sql row (as watermill-sql hands them over).
type rowScanner interface {
	Scan(dest ...any) error
}

func scanEvent(row rowScanner) (Event, error) {
	var (
		e        Event
		id       string
		payload  string
		metadata string
	)
	if err := row.Scan(&e.Position, &e.TxID, &id, &e.StreamID, &e.StreamType, &e.Version, &e.Type,
		&e.SchemaVersion, &payload, &metadata, &e.RecordedAt, &e.Hash); err != nil {
		return Event{}, err
	}
	var err error
	if e.ID, err = uuid.Parse(id); err != nil {
		return Event{}, fmt.Errorf("event %d has a malformed id: %w", e.Position, err)
	}
	e.Data = json.RawMessage(payload)
	if err := json.Unmarshal([]byte(metadata), &e.Metadata); err != nil {
		return Event{}, fmt.Errorf("event %d has malformed metadata: %w", e.Position, err)
	}
	e.RecordedAt = e.RecordedAt.UTC()
	return e, nil
}

func collectEvents(rows pgx.Rows) ([]Event, error) {
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Load returns the events of one stream in version order (none when the stream does not exist).
func (s *Store) Load(ctx context.Context, streamID string) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream_id = $1 ORDER BY version`, streamID)
	if err != nil {
		return nil, fmt.Errorf("loading stream %s: %w", streamID, err)
	}
	evs, err := collectEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("loading stream %s: %w", streamID, err)
	}
	return evs, nil
}

// EventAt returns the event at a position of the log; ok is false when there is none.
func (s *Store) EventAt(ctx context.Context, position int64) (e Event, ok bool, err error) {
	e, err = scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE "offset" = $1`, position))
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("reading the event at %d: %w", position, err)
	}
	return e, true, nil
}

// visibleAfter selects committed events after a cursor, in delivery order. Events of transactions
// that may still commit (transaction_id >= the snapshot's xmin) are held back, so a reader that
// advances its cursor never skips a late commit.
const visibleAfter = `FROM events
WHERE (transaction_id, "offset") > ($1::text::xid8, $2)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id, events."offset"`

// ReadAfterQuery selects every committed event after a cursor ($1: transaction id as text, $2:
// position), in delivery order.
const ReadAfterQuery = `SELECT ` + eventColumns + ` ` + visibleAfter

// ReadAll returns up to limit committed events after the cursor, in delivery order.
func (s *Store) ReadAll(ctx context.Context, after Cursor, limit int) ([]Event, error) {
	rows, err := s.pool.Query(ctx, ReadAfterQuery+` LIMIT $3`,
		fmt.Sprint(after.TxID), after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("reading log: %w", err)
	}
	evs, err := collectEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("reading log: %w", err)
	}
	return evs, nil
}

// Querier is what Scan needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Scan streams every committed event after the cursor, in delivery order, to fn, in one query
// on q. It returns the cursor of the last event seen.
func Scan(ctx context.Context, q Querier, after Cursor, fn func(Event) error) (Cursor, error) {
	return ScanLimit(ctx, q, after, 0, fn)
}

// ScanLimit is Scan reading at most limit events (all when limit is 0).
func ScanLimit(ctx context.Context, q Querier, after Cursor, limit int, fn func(Event) error) (Cursor, error) {
	sql := ReadAfterQuery
	args := []any{fmt.Sprint(after.TxID), after.Position}
	if limit > 0 {
		sql += ` LIMIT $3`
		args = append(args, limit)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return after, fmt.Errorf("scanning log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return after, fmt.Errorf("scanning log: %w", err)
		}
		if err := fn(e); err != nil {
			return after, err
		}
		after = Cursor{TxID: e.TxID, Position: e.Position}
	}
	if err := rows.Err(); err != nil {
		return after, fmt.Errorf("scanning log: %w", err)
	}
	return after, nil
}

// Head returns the highest position in the log (0 when empty).
func (s *Store) Head(ctx context.Context) (int64, error) {
	var p int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max("offset"), 0) FROM events`).Scan(&p)
	if err != nil {
		return 0, fmt.Errorf("reading log head: %w", err)
	}
	return p, nil
}

// CursorOf returns the delivery cursor of the event at a position; ok is false when there is none.
func (s *Store) CursorOf(ctx context.Context, position int64) (Cursor, bool, error) {
	c := Cursor{Position: position}
	err := s.pool.QueryRow(ctx, `SELECT transaction_id::text::bigint FROM events WHERE "offset" = $1`, position).Scan(&c.TxID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, false, nil
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("locating position %d: %w", position, err)
	}
	return c, true, nil
}
