package eventstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/eventstore"
)

// The log is read in (transaction_id, offset) order by walking the primary key, never by sorting
// the backlog: that is what keeps a projector's catch-up and a rebuild linear in the log's size.
// With sorting disabled the planner must find an index order, or the plan shows a Sort node.
func TestLogReadsWalkThePrimaryKey(t *testing.T) {
	_, db := newStore(t)
	ctx := context.Background()
	sel := eventstore.NewSchemaAdapter(100).SelectQuery(eventstore.Topic, "plan-test", eventstore.OffsetsAdapter())
	tests := []struct {
		name  string
		query string
		args  []any
	}{
		{"ReadAll and rebuild chunks", eventstore.ReadAfterQuery + ` LIMIT 100`, []any{"0", int64(0)}},
		{"projector subscriber", sel.Query, sel.Args},
		{"settled head", eventstore.SettledHeadQuery, nil},
		{"seal", eventstore.SealReadSQL, []any{"0", int64(0), "1000"}},
		{"seal verification", eventstore.VerifySealsSQL, []any{"1000", int64(5)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL enable_sort = off`); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, `EXPLAIN `+tc.query, tc.args...)
				if err != nil {
					return err
				}
				lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					return err
				}
				plan := strings.Join(lines, "\n")
				if strings.Contains(plan, "Sort") || !strings.Contains(plan, "events_pkey") {
					t.Errorf("plan does not walk events_pkey:\n%s", plan)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
