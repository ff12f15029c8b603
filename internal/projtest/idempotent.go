package projtest

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections"
)

// RequireLiveRebuiltAndTwiceAlike checks three ways of building p's tables against each other:
// the live tables (the engine must have caught up), a rebuild of the whole log, and scratch
// tables where every event's statements are applied once, and twice in a row. All must hold the
// same rows: a rebuild equals live, and Apply is idempotent.
func RequireLiveRebuiltAndTwiceAlike(t *testing.T, e *Env, p projections.Projector) {
	t.Helper()
	ctx := t.Context()
	live := map[string][]string{}
	for _, table := range p.Tables() {
		live[table] = Snapshot(t, e, table)
	}
	Rebuild(t, e, p)
	for _, table := range p.Tables() {
		RequireSameRows(t, table+": live vs rebuilt", live[table], Snapshot(t, e, table))
	}
	once, twice := projections.Tables{}, projections.Tables{}
	for _, table := range p.Tables() {
		once[table], twice[table] = table+"_once", table+"_twice"
		for _, scratch := range []string{once[table], twice[table]} {
			if _, err := e.Pool.Exec(ctx, `CREATE TABLE `+scratch+` (LIKE `+table+` INCLUDING ALL)`); err != nil {
				t.Fatal(err)
			}
		}
	}
	types := map[string]bool{}
	for _, st := range p.StreamTypes() {
		types[st] = true
	}
	err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
		var evs []eventstore.Event
		if _, err := eventstore.Scan(ctx, tx, eventstore.Cursor{}, func(ev eventstore.Event) error {
			if len(types) == 0 || types[ev.StreamType] {
				evs = append(evs, ev)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, ev := range evs {
			for _, run := range []struct {
				tables projections.Tables
				times  int
			}{{once, 1}, {twice, 2}} {
				stmts, err := p.Apply(run.tables, []eventstore.Event{ev})
				if err != nil {
					t.Fatalf("apply event %d (%s): %v", ev.Position, ev.Type, err)
				}
				for range run.times {
					for _, s := range stmts {
						if _, err := tx.Exec(ctx, s.SQL, s.Args...); err != nil {
							t.Fatalf("event %d (%s): %s: %v", ev.Position, ev.Type, s.SQL, err)
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range p.Tables() {
		RequireSameRows(t, table+": each event applied once vs twice", Snapshot(t, e, once[table]), Snapshot(t, e, twice[table]))
		RequireSameRows(t, table+": each event applied once vs live", live[table], Snapshot(t, e, once[table]))
	}
}
