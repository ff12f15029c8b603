package projections

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/internal/testdb"
)

func TestRowCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Stmt
		n    int
		ok   bool
	}{
		{"rows", Stmt{Rows: true, Args: []any{[]int64{1, 2, 3}, []string{"a", "b", "c"}}}, 3, true},
		{"not marked", Stmt{Args: []any{[]int64{1, 2, 3}}}, 0, false},
		{"no arguments", Stmt{Rows: true}, 0, false},
		{"a scalar", Stmt{Rows: true, Args: []any{[]int64{1, 2}, int64(7)}}, 0, false},
		{"unequal lengths", Stmt{Rows: true, Args: []any{[]int64{1, 2}, []string{"a"}}}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, ok := rowCount(tc.s); n != tc.n || ok != tc.ok {
				t.Fatalf("rowCount = %d, %v; want %d, %v", n, ok, tc.n, tc.ok)
			}
		})
	}
}

func TestSplitStmtKeepsEveryRowOnceInOrder(t *testing.T) {
	ids := []int64{1, 2, 3, 4, 5, 6, 7}
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	parts := splitStmt(Stmt{SQL: "q", Args: []any{ids, names}, Rows: true}, len(ids), 3)
	var gotIDs []int64
	var gotNames []string
	for _, p := range parts {
		if p.SQL != "q" || !p.Rows {
			t.Fatalf("part %+v lost its SQL or mark", p)
		}
		gotIDs = append(gotIDs, p.Args[0].([]int64)...)
		gotNames = append(gotNames, p.Args[1].([]string)...)
	}
	if fmt.Sprint(gotIDs) != fmt.Sprint(ids) || fmt.Sprint(gotNames) != fmt.Sprint(names) {
		t.Fatalf("parts hold %v %v, want %v %v", gotIDs, gotNames, ids, names)
	}
}

// A large Rows statement is written on two connections at once, and the statements around it
// still run in order: each sees what the one before it wrote.
func TestWriteStmtsSplitsLargeRowsStatementsInOrder(t *testing.T) {
	ctx := context.Background()
	db, a, b := twoWriters(t, "split_t")

	n := splitRows * 2
	ids, vs := make([]int64, n), make([]string, n)
	for i := range n {
		ids[i], vs[i] = int64(i+1), "a"
	}
	stmts := []Stmt{
		{SQL: `INSERT INTO split_t SELECT * FROM unnest($1::bigint[], $2::text[])`, Args: []any{ids, vs}, Rows: true},
		{SQL: `UPDATE split_t SET v = 'x' WHERE id = $1`, Args: []any{int64(n)}},
		{SQL: `UPDATE split_t t SET v = t.v || u.s FROM unnest($1::bigint[], $2::text[]) u(id, s) WHERE t.id = u.id`,
			Args: []any{ids, repeat("!", n)}, Rows: true},
	}
	if err := writeStmts(ctx, a, []batcher{b}, stmts); err != nil {
		t.Fatal(err)
	}
	var rows, plain, last int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE v = 'a!'), count(*) FILTER (WHERE v = 'x!')
		FROM split_t`).Scan(&rows, &plain, &last); err != nil {
		t.Fatal(err)
	}
	if rows != n || plain != n-1 || last != 1 {
		t.Fatalf("%d rows, %d 'a!' and %d 'x!'; want %d, %d and 1", rows, plain, last, n, n-1)
	}

	// A part that fails fails the write.
	if err := writeStmts(ctx, a, []batcher{b}, stmts[:1]); err == nil {
		t.Fatal("inserting the same rows again: no error")
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// A large Copy is written on two connections at once, each row's values asked for once, and the
// statements after it see every row.
func TestWriteStmtsCopiesOnEveryWriterInOrder(t *testing.T) {
	ctx := context.Background()
	db, a, b := twoWriters(t, "copy_t")

	n := splitRows * 2
	asked := make([]atomic.Int32, n)
	stmts := []Stmt{
		{Copy: &Copy{Table: "copy_t", Columns: []string{"id", "v"}, Rows: n, Row: func(i int) []any {
			asked[i].Add(1)
			return []any{int64(i + 1), "a"}
		}}},
		{SQL: `UPDATE copy_t SET v = v || '!' WHERE id = ANY($1::bigint[])`, Args: []any{[]int64{1, int64(n)}}},
	}
	if err := writeStmts(ctx, a, []batcher{b}, stmts); err != nil {
		t.Fatal(err)
	}
	for i := range asked {
		if got := asked[i].Load(); got != 1 {
			t.Fatalf("row %d asked for %d times, want once", i, got)
		}
	}
	if a.copies.Load() != 1 || b.copies.Load() != 1 {
		t.Fatalf("COPYs per writer: %d and %d, want one each", a.copies.Load(), b.copies.Load())
	}
	var rows, marked int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE v = 'a!') FROM copy_t`).Scan(&rows, &marked); err != nil {
		t.Fatal(err)
	}
	if rows != n || marked != 2 {
		t.Fatalf("%d rows, %d of them updated after the copy; want %d and 2", rows, marked, n)
	}

	// A part that fails fails the write.
	if err := writeStmts(ctx, a, []batcher{b}, stmts[:1]); err == nil {
		t.Fatal("copying the same rows again: no error")
	}
}

// countingWriter is a writer connection that counts the COPYs run on it.
type countingWriter struct {
	*pgx.Conn
	copies atomic.Int32
}

func (w *countingWriter) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	w.copies.Add(1)
	return w.Conn.CopyFrom(ctx, table, columns, rows)
}

// twoWriters creates table (id bigint primary key, v text) in a fresh database and returns it
// with two connections to write on, given back when the test ends.
func twoWriters(t *testing.T, table string) (*testdb.DB, *countingWriter, *countingWriter) {
	t.Helper()
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE `+table+` (id bigint PRIMARY KEY, v text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var ws [2]*countingWriter
	for i := range ws {
		c, err := db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Release)
		ws[i] = &countingWriter{Conn: c.Conn()}
	}
	return db, ws[0], ws[1]
}
