package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// BatchSchemaAdapter lets a watermill-sql/v3 subscriber deliver the log in batches: each message
// is one batch descriptor, the cursor range (From, To] of up to BatchSize committed events after
// the consumer group's offset. The handler reads the events of the range itself (RangeQuery, in
// the subscriber's transaction) and applies them together; acknowledging the message moves the
// consumer group's offset to To in that same transaction.
//
// Why descriptors rather than one message per event: the subscriber waits for each message's ack
// before sending the next, so per-event messages cost the projector several round trips per
// event. A descriptor costs one small query however many events it covers.
type BatchSchemaAdapter struct {
	SchemaAdapter
}

// NewBatchSchemaAdapter returns the adapter; batchSize bounds the events of one descriptor (1000
// when 0).
func NewBatchSchemaAdapter(batchSize int) BatchSchemaAdapter {
	if batchSize <= 0 {
		batchSize = 1000
	}
	return BatchSchemaAdapter{SchemaAdapter: NewSchemaAdapter(batchSize)}
}

// SelectQuery finds the next batch: it walks the primary key from the consumer group's offset
// (locked FOR UPDATE by the offsets query, so one subscriber of a group runs at a time) over at
// most BatchSize settled events, and returns one row describing the range, or none when there
// is nothing new.
func (a BatchSchemaAdapter) SelectQuery(topic, consumerGroup string, offsets wsql.OffsetsAdapter) wsql.Query {
	next := offsets.NextOffsetQuery(topic, consumerGroup)
	q := `WITH last AS (` + next.Query + `),
batch AS (
    SELECT transaction_id, "offset" FROM events
    WHERE (transaction_id, "offset") > (
            (SELECT last_processed_transaction_id FROM last),
            (SELECT coalesce(offset_acked, 0) FROM last))
      AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY transaction_id, "offset"
    LIMIT ` + strconv.Itoa(a.SubscribeBatchSize) + `)
SELECT b."offset", b.transaction_id::text::bigint, n.count,
       (SELECT last_processed_transaction_id::text::bigint FROM last),
       (SELECT coalesce(offset_acked, 0) FROM last)
FROM (SELECT * FROM batch ORDER BY transaction_id DESC, "offset" DESC LIMIT 1) b,
     (SELECT count(*) AS count FROM batch) n`
	return wsql.Query{Query: q, Args: next.Args}
}

// Batch is the cursor range of one delivered batch: the events after From up to and including To.
type Batch struct {
	From  Cursor
	To    Cursor
	Count int
}

// Message metadata keys of a batch descriptor.
const (
	metaFromTx  = "from_transaction_id"
	metaFromPos = "from_position"
	metaToTx    = "to_transaction_id"
	metaToPos   = "to_position"
	metaCount   = "count"
)

// UnmarshalMessage turns the descriptor row into a message.
func (BatchSchemaAdapter) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	var b Batch
	if err := row.Scan(&b.To.Position, &b.To.TxID, &b.Count, &b.From.TxID, &b.From.Position); err != nil {
		return wsql.Row{}, fmt.Errorf("scanning batch row: %w", err)
	}
	id := "batch-" + strconv.FormatInt(b.To.TxID, 10) + "-" + strconv.FormatInt(b.To.Position, 10)
	msg := message.NewMessage(id, nil)
	msg.Metadata = message.Metadata{
		metaFromTx:  strconv.FormatInt(b.From.TxID, 10),
		metaFromPos: strconv.FormatInt(b.From.Position, 10),
		metaToTx:    strconv.FormatInt(b.To.TxID, 10),
		metaToPos:   strconv.FormatInt(b.To.Position, 10),
		metaCount:   strconv.Itoa(b.Count),
	}
	return wsql.Row{
		Offset:    b.To.Position,
		UUID:      []byte(id),
		Msg:       msg,
		ExtraData: map[string]any{"transaction_id": b.To.TxID},
	}, nil
}

// BatchFromMessage reads the range of a message delivered through BatchSchemaAdapter.
func BatchFromMessage(msg *message.Message) (Batch, error) {
	var (
		b    Batch
		errs []error
	)
	parse := func(key string) int64 {
		v, err := strconv.ParseInt(msg.Metadata.Get(key), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("batch message %s: bad %s: %w", msg.UUID, key, err))
		}
		return v
	}
	b.From = Cursor{TxID: parse(metaFromTx), Position: parse(metaFromPos)}
	b.To = Cursor{TxID: parse(metaToTx), Position: parse(metaToPos)}
	b.Count = int(parse(metaCount))
	return b, errors.Join(errs...)
}

// projectedColumns are the columns projectors need (no hashes, ids or metadata to decode).
const projectedColumns = `"offset", transaction_id::text::bigint AS tx_id, uuid, stream_id, stream_type, version, event_type,
	schema_version, payload::text, recorded_at`

// RangeQuery selects, in delivery order, the events in the cursor range ($1 transaction id as
// text, $2 position] .. [$3 transaction id as text, $4 position], of the stream types $5 (every
// type when NULL) but not of the event types $6 (none left out when NULL). Scan its rows with
// ScanProjected. Every event of a range below the snapshot's
// xmin has committed or aborted, so a range read twice reads the same events.
var RangeQuery = `SELECT ` + projectedColumns + ` FROM events
WHERE (transaction_id, "offset") > ($1::text::xid8, $2)
  AND (transaction_id, "offset") <= ($3::text::xid8, $4)
  AND ` + GivenCondition(5, 6) + `
ORDER BY transaction_id, "offset"`

// GivenCondition is the SQL condition on an event of a consumer given the stream types of
// parameter streams (every type when NULL) except the event types of parameter skip (none left
// out when NULL), both text[]: the events a projector is given, as the engine, a rebuild and the
// checkpoints' lag select them.
func GivenCondition(streams, skip int) string {
	return fmt.Sprintf(`($%[1]d::text[] IS NULL OR stream_type = ANY($%[1]d::text[])) AND ($%[2]d::text[] IS NULL OR event_type <> ALL($%[2]d::text[]))`,
		streams, skip)
}

// RangeArgs are RangeQuery's arguments; nil streamTypes selects every stream type, and the event
// types in skip ($6) are left out.
func RangeArgs(from, to Cursor, streamTypes, skip []string) []any {
	return []any{strconv.FormatInt(from.TxID, 10), from.Position, strconv.FormatInt(to.TxID, 10), to.Position, streamTypes, skip}
}

// ReadAfterProjectedQuery selects up to $3 committed events after the cursor ($1 transaction id
// as text, $2 position) of the stream types $4 (every type when NULL) but not of the event types $5
// (none left out when NULL), in delivery order, with the
// columns ScanProjected reads. Rebuilds read the log with it.
var ReadAfterProjectedQuery = `SELECT ` + projectedColumns + ` ` + `FROM events
WHERE (transaction_id, "offset") > ($1::text::xid8, $2)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  AND ` + GivenCondition(4, 5) + `
ORDER BY events.transaction_id, events."offset"
LIMIT $3`

// SettledHeadQuery reads the log's settled head: the cursor (transaction id, position) of the
// last event below the snapshot xmin, which no later append can come before; no row for an empty
// log. One step down the primary key (the transaction id's output name is not transaction_id:
// that would capture the ORDER BY and sort the whole log by the cast).
const SettledHeadQuery = `SELECT transaction_id::text::bigint AS tx_id, "offset" FROM events
WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id DESC, events."offset" DESC LIMIT 1`

// MovedTypesQuery counts the events after cursor ($1, $2) up to and including cursor ($3, $4),
// at most $5 of them, and lists their stream types (comma-separated, each once): what a move of
// the settled head carried.
const MovedTypesQuery = `SELECT count(*), string_agg(DISTINCT stream_type, ',') FROM (
    SELECT stream_type FROM events
    WHERE (transaction_id, "offset") > ($1::text::xid8, $2) AND (transaction_id, "offset") <= ($3::text::xid8, $4)
    ORDER BY transaction_id, "offset" LIMIT $5) r`

// ScanProjected scans a row of RangeQuery or ReadAfterProjectedQuery. The event's metadata and
// hash are left empty.
func ScanProjected(row interface{ Scan(dest ...any) error }) (Event, error) {
	var (
		e       Event
		payload string
	)
	if err := row.Scan(&e.Position, &e.TxID, &e.ID, &e.StreamID, &e.StreamType, &e.Version, &e.Type,
		&e.SchemaVersion, &payload, &e.RecordedAt); err != nil {
		return Event{}, err
	}
	e.Data = json.RawMessage(payload)
	e.RecordedAt = e.RecordedAt.UTC()
	return e, nil
}
