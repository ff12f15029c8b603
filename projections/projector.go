// Package projections is the projection framework: it runs projectors (named sets of pure
// apply functions, event batch → set-based SQL against the tables they are given) live through
// Watermill, rebuilds them into shadow tables, and reports their checkpoints and lag. The live
// path and the rebuild path call the same apply functions.
package projections

import (
	"strings"

	"github.com/techvault/techvault/eventstore"
)

// Stmt is one SQL statement a projector wants executed.
type Stmt struct {
	SQL  string
	Args []any
	// Rows marks a statement whose Args are slices of equal length, one element per row, every
	// row independent of the others (distinct keys; no row reads what another writes): a rebuild
	// may split it into parts of consecutive rows and run them at once on several connections.
	Rows bool
	// Copy, when set, is the statement instead of SQL: rows for COPY into a table that a rebuild
	// created empty (only a Load's statements copy; the live path refuses them). A rebuild may
	// split the rows over several connections.
	Copy *Copy
}

// Copy is rows to COPY into a table, every one new to it. Row gives the values of row i (0 ≤ i <
// Rows), in Columns' order; it is called once per row, at the time of writing, from as many
// goroutines as the rows are split over, each for rows of its own: the values of a row (a
// product's search vector) are computed while other rows are being written.
type Copy struct {
	Table   string // the physical table
	Columns []string
	Rows    int
	Row     func(i int) []any
}

// Tables maps a projector's table names to the physical tables to write (the live tables, or the
// shadow tables of a rebuild).
type Tables map[string]string

// Name returns the physical name of table; the table itself when it is not remapped.
func (t Tables) Name(table string) string {
	if n, ok := t[table]; ok {
		return n
	}
	return table
}

// Sub replaces every {table} in sql with its physical name.
func (t Tables) Sub(sql string) string {
	for logical, physical := range t {
		sql = strings.ReplaceAll(sql, "{"+logical+"}", physical)
	}
	return sql
}

// Projector builds one read model. Its name is its consumer group and checkpoint key: never
// rename one.
type Projector interface {
	Name() string
	// Tables lists the tables the projector owns (and only it writes).
	Tables() []string
	// StreamTypes lists the stream types whose events the projector applies; it is never given
	// others. Nil means every stream type.
	StreamTypes() []string
	// Apply returns set-based statements that apply a batch of events (in delivery order, of
	// its stream types) to the tables: the number of statements must not grow with the number
	// of events. Apply is pure (no clock, no other read model) and idempotent: applying a batch
	// twice leaves the tables as applying it once.
	Apply(t Tables, batch []eventstore.Event) ([]Stmt, error)
}

// Loader is implemented by a projector that a rebuild can give the whole log to fold before it
// writes anything, rather than windows of events: a product's twenty events are one row, written
// once, and the rows new to the rebuild's empty tables are written with COPY.
type Loader interface {
	// Load returns an empty fold for the tables t, which a rebuild has just created empty and
	// which only the fold's statements write until it has flushed for the last time.
	Load(t Tables) Load
}

// A Load folds events, in delivery order, until the rebuild flushes it.
type Load interface {
	// Add folds events (of the projector's stream types, in delivery order).
	Add(events []eventstore.Event) error
	// Rows is how many rows the fold holds: the rebuild flushes it when they are many.
	Rows() int
	// Flush returns the statements that write what the fold holds (the same rows Apply would
	// have written for the same events), and empties it; later events fold on top of them.
	Flush() ([]Stmt, error)
}

// Skipper is implemented by a projector that never applies some event types of its stream types:
// neither the live engine nor a rebuild reads them for it. A type left off the list is read and
// ignored by Apply, so a list that misses a type (one added later) costs reads, never events.
type Skipper interface {
	SkipTypes() []string
}

// skipTypes returns the event types h skips (none unless it is a Skipper).
func skipTypes(h any) []string {
	if s, ok := h.(Skipper); ok {
		return s.SkipTypes()
	}
	return nil
}

// Notifier is implemented by projectors whose derived views (Redis) follow their tables: the live
// path sends these notifications in the projector's transaction, so they are delivered after its
// commit. A rebuild sends NotifyChannel a "resync" instead.
type Notifier interface {
	NotifyChannel() string
	Notifications(batch []eventstore.Event) []string
}

// Notification is a payload for a channel.
type Notification struct{ Channel, Payload string }

// ExtraNotifier is implemented by a Notifier that also notifies channels other than its own, in
// the same transaction and after its own notifications (a rebuild sends only its "resync").
type ExtraNotifier interface {
	ExtraNotifications(batch []eventstore.Event) []Notification
}

// ResyncNotification asks a view to rebuild itself from its table.
const ResyncNotification = "resync"

// Identity maps each table of p to itself.
func Identity(p Projector) Tables {
	t := Tables{}
	for _, n := range p.Tables() {
		t[n] = n
	}
	return t
}

// notifyStmt sends every notification of a batch in one statement: the Notifier's own, then its
// extra ones.
func notifyStmt(n Notifier, batch []eventstore.Event) (Stmt, bool) {
	var channels, payloads []string
	for _, p := range n.Notifications(batch) {
		channels, payloads = append(channels, n.NotifyChannel()), append(payloads, p)
	}
	if x, ok := n.(ExtraNotifier); ok {
		for _, e := range x.ExtraNotifications(batch) {
			channels, payloads = append(channels, e.Channel), append(payloads, e.Payload)
		}
	}
	if len(payloads) == 0 {
		return Stmt{}, false
	}
	return Stmt{SQL: `SELECT pg_notify(c, n) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, n, i) ORDER BY i`,
		Args: []any{channels, payloads}}, true
}
