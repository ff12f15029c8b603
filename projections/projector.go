// Package projections builds the read models from the event log. A projector is a named set of
// pure apply functions (event → SQL statements against the tables it is given); the live Watermill
// path and the bulk rebuild path run the same functions.
package projections

import (
	"strings"

	"github.com/techvault/techvault/eventstore"
)

// Stmt is one SQL statement a projector wants executed.
type Stmt struct {
	SQL  string
	Args []any
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
	// Apply returns the statements that apply e to the tables; none for events it ignores. It is
	// pure and idempotent: applying an event twice leaves the tables as applying it once.
	Apply(t Tables, e eventstore.Event) ([]Stmt, error)
}

// Notifier is implemented by projectors whose derived views (Redis) follow their tables: the live
// path sends these notifications in the projector's transaction, so they are delivered after its
// commit. A rebuild sends NotifyChannel a "resync" instead.
type Notifier interface {
	NotifyChannel() string
	Notifications(e eventstore.Event) []string
}

// Identity maps each table of p to itself.
func Identity(p Projector) Tables {
	t := Tables{}
	for _, n := range p.Tables() {
		t[n] = n
	}
	return t
}
