package reviewproj_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/review"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/reviewproj"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// history appends a review and order history through the commands (orders straight to the
// store) and returns the reviews it wrote, by name.
func history(t *testing.T, e *projtest.Env) (products []int64, reviews map[string]int64) {
	t.Helper()
	projtest.Accounts(t, e, 1, 2, 3, 4, 7, 8)
	ctx := t.Context()
	for _, name := range []string{"Keyboard", "Mouse"} {
		p, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: name, Price: 1999, Stock: 10})
		if err != nil {
			t.Fatal(err)
		}
		products = append(products, p.ID)
	}
	rv := commands.NewReviews(e.Store, e.Store.Sequences(map[string]string{commands.ReviewIDs: "review_ids"}))
	reviews = map[string]int64{}
	write := func(name string, product, user int64, rating int) {
		r, err := rv.CreateReview(ctx, projtest.MD, commands.CreateReview{ProductID: product, UserID: user,
			Content: review.Content{Rating: rating, Title: name}})
		if err != nil {
			t.Fatal(err)
		}
		reviews[name] = r.ID
	}
	must := func(_ commands.ReviewResult, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	orderEvents := func(id int64, evs ...domain.Event) {
		t.Helper()
		out := make([]eventstore.NewEvent, 0, len(evs))
		for _, ev := range evs {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, eventstore.NewEvent{Type: ev.EventType(), SchemaVersion: ev.SchemaVersion(), Data: b})
		}
		stored, err := e.Store.Load(ctx, order.StreamID(id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Store.Append(ctx, projtest.StoreMD, eventstore.StreamAppend{StreamID: order.StreamID(id),
			StreamType: order.StreamType, ExpectedVersion: int64(len(stored)), Events: out}); err != nil {
			t.Fatal(err)
		}
	}
	placed := func(id, user int64, products ...int64) order.Placed {
		p := order.Placed{OrderID: id, UserID: user, Currency: "USD"}
		for _, pid := range products {
			p.Lines = append(p.Lines, order.Line{ProductID: pid, Quantity: 1, UnitPrice: 1999, Total: 1999})
		}
		return p
	}
	kb, mouse := products[0], products[1]

	write("early", kb, 1, 5)                                                         // user 1 reviews, then buys and pays
	write("never bought", kb, 2, 2)                                                  // user 2 orders but never pays
	orderEvents(1, placed(1, 1, kb, mouse), order.MarkedPaid{OrderID: 1, UserID: 1}) // placed and paid at once
	orderEvents(2, placed(2, 2, kb))
	orderEvents(3, placed(3, 3, mouse))
	orderEvents(3, order.MarkedPaid{OrderID: 3, UserID: 3})
	write("late", mouse, 3, 4) // after the payment
	orderEvents(3, order.MarkedShipped{OrderID: 3, UserID: 3}, order.MarkedRefunded{OrderID: 3, UserID: 3})
	write("mouse", mouse, 1, 1)
	must(rv.EditReview(ctx, projtest.MD, commands.EditReview{ID: reviews["mouse"], Actor: review.Actor{UserID: 1},
		Patch: review.Patch{Rating: ptr(3)}}))
	must(rv.HideReview(ctx, projtest.MD, reviews["never bought"]))
	must(rv.MarkReviewHelpful(ctx, projtest.MD, reviews["early"], review.Actor{UserID: 7}))
	must(rv.MarkReviewHelpful(ctx, projtest.MD, reviews["early"], review.Actor{UserID: 8}))
	write("deleted", mouse, 4, 5)
	must(rv.DeleteReview(ctx, projtest.MD, reviews["deleted"], review.Actor{UserID: 4}))
	must(rv.HideReview(ctx, projtest.MD, reviews["late"]))
	must(rv.UnhideReview(ctx, projtest.MD, reviews["late"]))
	return products, reviews
}

func ptr[T any](v T) *T { return &v }

// applyInChunks applies the log to scratch copies of p's tables (suffix), chunk events at a time,
// each chunk's statements run `times` times, and returns the copies' rows.
func applyInChunks(t *testing.T, e *projtest.Env, p projections.Projector, evs []eventstore.Event, suffix string, chunk, times int) map[string][]string {
	t.Helper()
	ctx := context.Background()
	tables := projections.Tables{}
	for _, table := range p.Tables() {
		tables[table] = table + "_" + suffix
		if _, err := e.Pool.Exec(ctx, `CREATE TABLE `+tables[table]+` (LIKE `+table+` INCLUDING ALL)`); err != nil {
			t.Fatal(err)
		}
	}
	for start := 0; start < len(evs); start += chunk {
		stmts, err := p.Apply(tables, evs[start:min(start+chunk, len(evs))])
		if err != nil {
			t.Fatal(err)
		}
		for range times {
			for _, s := range stmts {
				if _, err := e.Pool.Exec(ctx, s.SQL, s.Args...); err != nil {
					t.Fatalf("%s: %v", s.SQL, err)
				}
			}
		}
	}
	out := map[string][]string{}
	for _, table := range p.Tables() {
		out[table] = projtest.Snapshot(t, e, tables[table])
	}
	return out
}

// The reviews and products projectors give the same tables however the log is cut into batches
// (a payment and the review it verifies in one batch or in two), and applying every batch twice
// equals applying it once.
func TestBatchesAndRepeatsChangeNothing(t *testing.T) {
	e := projtest.NewEnv(t)
	products, reviews := history(t, e)
	projtest.WaitVisible(t, e)
	all, err := e.Store.ReadAll(t.Context(), eventstore.Cursor{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []projections.Projector{reviewproj.Reviews{}, catalogproj.Products{}} {
		var evs []eventstore.Event
		for _, ev := range all {
			for _, st := range p.StreamTypes() {
				if ev.StreamType == st {
					evs = append(evs, ev)
				}
			}
		}
		want := applyInChunks(t, e, p, evs, "whole", len(evs), 1)
		for _, v := range []struct{ chunk, times int }{{1, 1}, {1, 2}, {2, 1}, {3, 2}, {7, 1}, {len(evs), 2}} {
			got := applyInChunks(t, e, p, evs, fmt.Sprintf("c%d_x%d", v.chunk, v.times), v.chunk, v.times)
			for table, rows := range want {
				projtest.RequireSameRows(t, fmt.Sprintf("%s in batches of %d applied %d times", table, v.chunk, v.times), rows, got[table])
			}
		}
	}

	// And what they hold is right: the live engine built the same.
	projtest.StartEngineWith(t, e, []projections.Projector{reviewproj.Reviews{}, catalogproj.Products{}}, 0)
	projtest.WaitCaughtUp(t, e, reviewproj.ReviewsProjector, catalogproj.ProductsProjector)
	type row struct {
		Rating   int  `json:"rating"`
		Hidden   bool `json:"hidden"`
		Verified bool `json:"verified_purchase"`
		Helpful  int  `json:"helpful_count"`
	}
	got := map[string]row{}
	for name, id := range reviews {
		var r row
		var raw []byte
		err := e.Pool.QueryRow(t.Context(), `SELECT to_jsonb(r) FROM reviews r WHERE id = $1`, id).Scan(&raw)
		if name == "deleted" {
			if err == nil {
				t.Errorf("the deleted review is still there: %s", raw)
			}
			continue
		}
		if err != nil || json.Unmarshal(raw, &r) != nil {
			t.Fatalf("review %q: %v", name, err)
		}
		got[name] = r
	}
	want := map[string]row{
		"early":        {Rating: 5, Verified: true, Helpful: 2}, // written before the payment
		"never bought": {Rating: 2, Hidden: true},               // an unpaid order
		"late":         {Rating: 4},                             // verified, then refunded
		"mouse":        {Rating: 3, Verified: true},             // bought in order 1
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("review %q: %+v, want %+v", name, got[name], w)
		}
	}
	var kb, mouse struct {
		Rating float64
		Count  int
		Hist   []int32
	}
	for _, x := range []struct {
		id  int64
		dst *struct {
			Rating float64
			Count  int
			Hist   []int32
		}
	}{{products[0], &kb}, {products[1], &mouse}} {
		if err := e.Pool.QueryRow(t.Context(), `SELECT rating::float8, rating_count, rating_histogram FROM products WHERE id = $1`,
			x.id).Scan(&x.dst.Rating, &x.dst.Count, &x.dst.Hist); err != nil {
			t.Fatal(err)
		}
	}
	if kb.Rating != 5 || kb.Count != 1 || fmt.Sprint(kb.Hist) != "[0 0 0 0 1]" {
		t.Errorf("keyboard (one public 5, one hidden 2): %+v", kb)
	}
	if mouse.Rating != 3.5 || mouse.Count != 2 || fmt.Sprint(mouse.Hist) != "[0 0 1 1 0]" {
		t.Errorf("mouse (4 and 3; a deleted 5): %+v", mouse)
	}
}
