package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// ErrUnknownEvent is returned by Registry.Decode for a type or version no registry knows.
var ErrUnknownEvent = errors.New("unknown event")

// Registry is one aggregate family's event types: name → a new value to decode into. One table,
// so that decoding cannot drift from the types (each value's EventType and SchemaVersion say
// the rest). Every type is at schema version 1 until one changes shape; an older version is then
// upcast in Decode: a type whose value implements Reader and reads the older version decodes
// its data into the current shape (a version that only added fields reads the older ones as
// they are, the new fields left zero).
type Registry map[string]func() Event

// Reader is implemented by an event type at schema version n > 1 that decodes the stored data
// of some earlier versions of itself.
type Reader interface {
	Reads(schemaVersion int) bool
}

// Decode turns a stored event into its struct, by value (callers switch on value types).
func (r Registry) Decode(eventType string, schemaVersion int, data []byte) (Event, error) {
	mk, ok := r[eventType]
	if !ok {
		return nil, fmt.Errorf("%w: %s.v%d", ErrUnknownEvent, eventType, schemaVersion)
	}
	e := mk()
	if rd, ok := e.(Reader); e.SchemaVersion() != schemaVersion && (!ok || !rd.Reads(schemaVersion)) {
		return nil, fmt.Errorf("%w: %s.v%d", ErrUnknownEvent, eventType, schemaVersion)
	}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("decoding %s.v%d: %w", eventType, schemaVersion, err)
	}
	return reflect.ValueOf(e).Elem().Interface().(Event), nil
}
