package projections

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/jackc/pgx/v5"
)

// splitRows is the fewest rows a Rows statement must carry for a rebuild to split it: below it,
// one connection writes it faster than two can start.
const splitRows = 2000

// rebuildWriters is how many connections a rebuild writes a split statement on. Postgres runs
// each on its own backend, so a bulk load whose rows cost CPU (a product's search vector) uses
// more than one core of the database server.
const rebuildWriters = 2

// rowCount returns the number of rows of a Rows statement: the common length of its arguments,
// every one a slice. ok is false when the statement is not one that can be split.
func rowCount(s Stmt) (n int, ok bool) {
	if !s.Rows || len(s.Args) == 0 {
		return 0, false
	}
	for i, a := range s.Args {
		v := reflect.ValueOf(a)
		if v.Kind() != reflect.Slice {
			return 0, false
		}
		if i == 0 {
			n = v.Len()
		} else if v.Len() != n {
			return 0, false
		}
	}
	return n, true
}

// splitStmt cuts a Rows statement of n rows into k statements of consecutive rows (the same SQL,
// each argument sliced alike).
func splitStmt(s Stmt, n, k int) []Stmt {
	parts := make([]Stmt, 0, k)
	for i := range k {
		lo, hi := i*n/k, (i+1)*n/k
		if lo == hi {
			continue
		}
		args := make([]any, len(s.Args))
		for j, a := range s.Args {
			args[j] = reflect.ValueOf(a).Slice(lo, hi).Interface()
		}
		parts = append(parts, Stmt{SQL: s.SQL, Args: args, Rows: true})
	}
	return parts
}

// writeStmts runs stmts in order on w: consecutive statements go as one pipelined batch, and a
// large Rows statement, when extra writers are given, is split across w and them and its parts
// run at once (each is done before the next statement starts).
func writeStmts(ctx context.Context, w batcher, extra []batcher, stmts []Stmt) error {
	batch := &pgx.Batch{}
	flush := func() error {
		if batch.Len() == 0 {
			return nil
		}
		err := w.SendBatch(ctx, batch).Close()
		batch = &pgx.Batch{}
		return err
	}
	for _, s := range stmts {
		if s.Copy != nil {
			if err := flush(); err != nil {
				return err
			}
			if err := copyRows(ctx, append([]batcher{w}, extra...), s.Copy); err != nil {
				return err
			}
			continue
		}
		n, ok := rowCount(s)
		if !ok || n < splitRows || len(extra) == 0 {
			batch.Queue(s.SQL, s.Args...)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		writers := append([]batcher{w}, extra...)
		parts := splitStmt(s, n, len(writers))
		errs := make([]error, len(parts))
		var wg sync.WaitGroup
		for i, part := range parts {
			wg.Go(func() {
				b := &pgx.Batch{}
				b.Queue(part.SQL, part.Args...)
				errs[i] = writers[i].SendBatch(ctx, b).Close()
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return fmt.Errorf("writing part of a split statement: %w", err)
			}
		}
	}
	return flush()
}

// copyRows copies c's rows into its table, in consecutive parts on the writers at once when they
// are many (COPYs into one table do not wait for each other).
func copyRows(ctx context.Context, writers []batcher, c *Copy) error {
	k := len(writers)
	if c.Rows < splitRows {
		k = 1
	}
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		next, end := i*c.Rows/k, (i+1)*c.Rows/k
		rows := pgx.CopyFromFunc(func() ([]any, error) {
			if next == end {
				return nil, nil
			}
			next++
			return c.Row(next - 1), nil
		})
		wg.Go(func() {
			if _, err := writers[i].CopyFrom(ctx, pgx.Identifier{c.Table}, c.Columns, rows); err != nil {
				errs[i] = fmt.Errorf("copying rows into %s: %w", c.Table, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
