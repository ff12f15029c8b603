package domain

// Metadata says who asked for a command and in answer to what: the ids that trace it, and its
// actor. Every command takes it; the command handlers record it with the events they append.
type Metadata struct {
	// CorrelationID ties together everything one user action caused (across requests).
	CorrelationID string
	// CausationID is the id of what directly caused the command (the request, or an event).
	CausationID string
	// ActorID is who runs the command ("" when anonymous).
	ActorID string
	// RequestID is the id of the request that ran the command.
	RequestID string
}
