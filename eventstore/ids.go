package eventstore

import (
	"context"
	"fmt"
)

// Sequences allocates resource ids from Postgres sequences, one per kind. An id is taken when a
// command is decided; a command that then fails leaves a harmless gap.
type Sequences struct {
	store *Store
	names map[string]string
}

// Sequences allocates ids for the given kinds (kind → sequence name).
func (s *Store) Sequences(kinds map[string]string) *Sequences {
	return &Sequences{store: s, names: kinds}
}

// NextID returns a fresh id of kind.
func (q *Sequences) NextID(ctx context.Context, kind string) (int64, error) {
	seq, ok := q.names[kind]
	if !ok {
		return 0, fmt.Errorf("no id sequence for %q", kind)
	}
	var id int64
	if err := q.store.pool.QueryRow(ctx, `SELECT nextval($1::regclass)`, seq).Scan(&id); err != nil {
		return 0, fmt.Errorf("allocating %s id: %w", kind, err)
	}
	return id, nil
}
