package domain

// Event is something that happened to an aggregate. Its type name and schema version identify
// its JSON shape for ever: a new shape gets a new version, and old events are upcast when read.
type Event interface {
	EventType() string
	SchemaVersion() int
}
