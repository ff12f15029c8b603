package catalogproj_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/projections/catalogproj"
)

// A rebuild of the categories projector reads its few events through migration 0023's partial
// index instead of walking the whole log (the CategoryReferenced events of the same streams,
// one per product, are left out of it as the projector skips them).
func TestCategoriesRebuildReadsItsIndex(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := context.Background()
	p := catalogproj.Categories{}
	err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `EXPLAIN `+eventstore.ReadAfterProjectedQuery, "0", int64(0), 5000, p.StreamTypes(), p.SkipTypes())
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if plan := strings.Join(lines, "\n"); !strings.Contains(plan, "events_category_idx") {
			t.Errorf("the categories' read does not use events_category_idx:\n%s", plan)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
