package eventstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// Topic is the Watermill topic name of the log. The table is "events" whatever the topic.
const Topic = "events"

// OffsetsTable holds each consumer group's (projector's) acknowledged place in the log.
const OffsetsTable = "projector_offsets"

// Message metadata keys set on every delivered event.
const (
	MetaPosition      = "position"
	MetaTxID          = "transaction_id"
	MetaStreamID      = "stream_id"
	MetaStreamType    = "stream_type"
	MetaVersion       = "version"
	MetaEventType     = "event_type"
	MetaSchemaVersion = "schema_version"
	MetaRecordedAt    = "recorded_at"
	MetaCorrelationID = "correlation_id"
	MetaCausationID   = "causation_id"
	MetaActorID       = "actor_id"
	MetaRequestID     = "request_id"
)

// SchemaAdapter lets a watermill-sql/v3 subscriber consume the events table. It creates nothing
// (migrations own the schema) and selects with a row comparison on the primary key
// (transaction_id, offset), which stays an index scan however large the backlog is.
type SchemaAdapter struct {
	wsql.DefaultPostgreSQLSchema
}

// NewSchemaAdapter returns the adapter, reading batchSize events per query (100 when 0).
func NewSchemaAdapter(batchSize int) SchemaAdapter {
	if batchSize <= 0 {
		batchSize = 100
	}
	return SchemaAdapter{DefaultPostgreSQLSchema: wsql.DefaultPostgreSQLSchema{
		GenerateMessagesTableName: func(string) string { return "events" },
		SubscribeBatchSize:        batchSize,
	}}
}

// OffsetsAdapter stores consumer-group offsets in projector_offsets.
func OffsetsAdapter() wsql.DefaultPostgreSQLOffsetsAdapter {
	return wsql.DefaultPostgreSQLOffsetsAdapter{
		GenerateMessagesOffsetsTableName: func(string) string { return OffsetsTable },
	}
}

// SchemaInitializingQueries returns nothing: the migrations create the tables.
func (SchemaAdapter) SchemaInitializingQueries(string) []wsql.Query { return nil }

// InsertQuery is refused: events are appended by the Store, never published through Watermill.
func (SchemaAdapter) InsertQuery(string, message.Messages) (wsql.Query, error) {
	return wsql.Query{}, fmt.Errorf("eventstore: publish through Store.Append, not Watermill")
}

// SelectQuery selects the next committed events after the consumer group's offset.
func (a SchemaAdapter) SelectQuery(topic, consumerGroup string, offsets wsql.OffsetsAdapter) wsql.Query {
	next := offsets.NextOffsetQuery(topic, consumerGroup)
	q := `WITH last AS (` + next.Query + `)
SELECT ` + eventColumns + `
FROM events
WHERE (transaction_id, "offset") > (
        (SELECT last_processed_transaction_id FROM last),
        (SELECT coalesce(offset_acked, 0) FROM last))
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id, events."offset"
LIMIT ` + strconv.Itoa(a.SubscribeBatchSize)
	return wsql.Query{Query: q, Args: next.Args}
}

// UnmarshalMessage turns a selected row into a message carrying the event in its metadata.
func (SchemaAdapter) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	e, err := scanEvent(row)
	if err != nil {
		return wsql.Row{}, fmt.Errorf("scanning event row: %w", err)
	}
	md := e.Metadata
	id := e.ID.String()
	msg := message.NewMessage(id, message.Payload(e.Data))
	msg.Metadata = message.Metadata{
		MetaPosition:      strconv.FormatInt(e.Position, 10),
		MetaTxID:          strconv.FormatInt(e.TxID, 10),
		MetaStreamID:      e.StreamID,
		MetaStreamType:    e.StreamType,
		MetaVersion:       strconv.FormatInt(e.Version, 10),
		MetaEventType:     e.Type,
		MetaSchemaVersion: strconv.Itoa(e.SchemaVersion),
		MetaRecordedAt:    e.RecordedAt.UTC().Format(time.RFC3339Nano),
		MetaCorrelationID: md.CorrelationID,
		MetaCausationID:   md.CausationID,
		MetaActorID:       md.ActorID,
		MetaRequestID:     md.RequestID,
	}
	return wsql.Row{
		Offset:    e.Position,
		UUID:      []byte(id),
		Payload:   e.Data,
		Msg:       msg,
		ExtraData: map[string]any{"transaction_id": e.TxID},
	}, nil
}

// SubscribeIsolationLevel is REPEATABLE READ, as in watermill-sql's Postgres schema.
func (SchemaAdapter) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelRepeatableRead }

// EventFromMessage rebuilds the event from a message delivered by a subscriber using SchemaAdapter.
func EventFromMessage(msg *message.Message) (Event, error) {
	m := msg.Metadata
	e := Event{
		StreamID:   m.Get(MetaStreamID),
		StreamType: m.Get(MetaStreamType),
		Type:       m.Get(MetaEventType),
		Data:       json.RawMessage(msg.Payload),
		Metadata: Metadata{
			CorrelationID: m.Get(MetaCorrelationID),
			CausationID:   m.Get(MetaCausationID),
			ActorID:       m.Get(MetaActorID),
			RequestID:     m.Get(MetaRequestID),
		},
	}
	var err error
	if e.ID, err = uuid.Parse(msg.UUID); err != nil {
		return Event{}, fmt.Errorf("message %q: malformed event id: %w", msg.UUID, err)
	}
	ints := []struct {
		key string
		dst *int64
	}{{MetaPosition, &e.Position}, {MetaTxID, &e.TxID}, {MetaVersion, &e.Version}}
	for _, f := range ints {
		if *f.dst, err = strconv.ParseInt(m.Get(f.key), 10, 64); err != nil {
			return Event{}, fmt.Errorf("message %s: bad %s: %w", msg.UUID, f.key, err)
		}
	}
	if e.SchemaVersion, err = strconv.Atoi(m.Get(MetaSchemaVersion)); err != nil {
		return Event{}, fmt.Errorf("message %s: bad schema version: %w", msg.UUID, err)
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, m.Get(MetaRecordedAt)); err != nil {
		return Event{}, fmt.Errorf("message %s: bad recorded_at: %w", msg.UUID, err)
	}
	return e, nil
}
