// Package eventstore is the Postgres event store: atomic multi-stream appends with optimistic
// concurrency, stream loads, ordered reads of the whole log, and the Watermill schema adapter
// through which projectors consume the same table.
package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/techvault/techvault/domain"
)

// Metadata travels with every event. All fields are optional strings so that the stored JSON is
// a flat object of strings (what Watermill's message metadata requires).
type Metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	ActorID       string `json:"actor_id,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
}

// NewEvent is an event about to be appended.
type NewEvent struct {
	// ID is the event id; a UUIDv7 is generated when it is zero.
	ID uuid.UUID
	// Type is the event name without its version, e.g. "ProductCreated".
	Type string
	// SchemaVersion is the version of Data's shape, starting at 1.
	SchemaVersion int
	// Data is the event body as JSON.
	Data json.RawMessage
}

// StreamAppend appends Events to one stream, provided the stream is at ExpectedVersion
// (0: the stream must not exist yet).
type StreamAppend struct {
	StreamID        string
	StreamType      string
	ExpectedVersion int64
	Events          []NewEvent
}

// Event is a recorded event.
type Event struct {
	Position      int64
	TxID          int64
	ID            uuid.UUID
	StreamID      string
	StreamType    string
	Version       int64
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	RecordedAt    time.Time
	Hash          []byte
}

// Cursor is a consumer's place in the log. The log is delivered in (TxID, Position) order, which
// never skips an event committed late by a slower transaction.
type Cursor struct {
	TxID     int64
	Position int64
}

// Before reports whether c comes before d in delivery order.
func (c Cursor) Before(d Cursor) bool {
	return c.TxID < d.TxID || c.TxID == d.TxID && c.Position < d.Position
}

// ErrConcurrency reports that a stream was not at the expected version.
var ErrConcurrency = errors.New("concurrency conflict")

// ConcurrencyError names the stream whose version clashed. errors.Is(err, ErrConcurrency) holds.
type ConcurrencyError struct {
	StreamID        string
	ExpectedVersion int64
}

func (e *ConcurrencyError) Error() string {
	if e.StreamID == "" {
		return "concurrency conflict: a stream was not at its expected version"
	}
	return fmt.Sprintf("concurrency conflict: stream %s is not at version %d", e.StreamID, e.ExpectedVersion)
}

// Is matches ErrConcurrency and the domain's domain.ErrConcurrency, so that callers above the
// event store need not import it.
func (e *ConcurrencyError) Is(target error) bool {
	return target == ErrConcurrency || target == domain.ErrConcurrency
}

// contentHash is the SHA-256 of the canonical, length-prefixed encoding of an event. The database
// chains it per stream: hash = sha256(previous hash || contentHash).
func contentHash(id uuid.UUID, streamID, streamType string, version int64, typ string, schemaVersion int,
	data, metadata []byte, recordedAt time.Time,
) []byte {
	h := sha256.New()
	var num [8]byte
	writeField := func(b []byte) {
		binary.BigEndian.PutUint64(num[:], uint64(len(b)))
		h.Write(num[:])
		h.Write(b)
	}
	writeInt := func(v int64) {
		binary.BigEndian.PutUint64(num[:], uint64(v))
		h.Write(num[:])
	}
	writeField(id[:])
	writeField([]byte(streamID))
	writeField([]byte(streamType))
	writeInt(version)
	writeField([]byte(typ))
	writeInt(int64(schemaVersion))
	writeField(data)
	writeField(metadata)
	writeInt(recordedAt.UnixMicro())
	return h.Sum(nil)
}

// chainHash is the hash the database trigger stores: sha256(prev || content).
func chainHash(prev, content []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(content)
	return h.Sum(nil)
}
