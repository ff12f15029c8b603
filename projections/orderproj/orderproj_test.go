package orderproj_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/orderproj"
)

var tables = []string{"carts", "cart_items", "orders", "order_items", "order_status_history", "promo_codes", "promo_code_uses"}

func snapshot(t *testing.T, e *projtest.Env) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range tables {
		out[tb] = projtest.Snapshot(t, e, tb)
	}
	return out
}

func requireSame(t *testing.T, what string, want, got map[string][]string) {
	t.Helper()
	for _, tb := range tables {
		projtest.RequireSameRows(t, tb+": "+what, want[tb], got[tb])
	}
}

var names = []string{orderproj.CartsProjector, orderproj.OrdersProjector, orderproj.PromoCodesProjector}

// facts are positions the history's assertions need.
type facts struct {
	readded  int64   // user 1's second CartItemAdded of product 11 (after its removal): the line's id
	statuses []int64 // order 100's status-changing events
}

// history appends a store's life: carts that grow, shrink, empty and check out; promos that are
// used, given back, updated, expired, deleted and their code reused; orders that are paid,
// shipped, delivered or cancelled; and a customer who is erased after ordering.
func history(t *testing.T, w *world) facts {
	t.Helper()
	var f facts
	for _, u := range []int64{1, 2, 3, 4} {
		w.customer(u)
	}
	week := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	w.promo(1, promo.Created{PromoID: 1, Code: "SAVE10", Terms: promo.Terms{Kind: promo.Percent, Value: 10, UsageLimit: 20, Active: true}})
	w.promo(2, promo.Created{PromoID: 2, Code: "FIVE", Terms: promo.Terms{Kind: promo.Amount, Value: 500, ExpiresAt: &week, UsageLimit: 3, Active: true}})
	w.promo(3, promo.Created{PromoID: 3, Code: "GONE", Terms: promo.Terms{Kind: promo.Percent, Value: 50, Active: true}})

	// User 1: add, add, grow, change, remove, add again (a new line at a new price).
	w.cart(1, cart.ItemAdded{UserID: 1, ProductID: 11, Quantity: 2, UnitPrice: 1000})
	w.cart(1, cart.ItemAdded{UserID: 1, ProductID: 12, Quantity: 1, UnitPrice: 500})
	w.cart(1, cart.ItemAdded{UserID: 1, ProductID: 11, Quantity: 1, UnitPrice: 1000})
	w.cart(1, cart.QuantityChanged{UserID: 1, ProductID: 12, Quantity: 4})
	w.cart(1, cart.ItemRemoved{UserID: 1, ProductID: 11})
	f.readded = w.cart(1, cart.ItemAdded{UserID: 1, ProductID: 11, Quantity: 1, UnitPrice: 1100})[0]
	w.cart(1, cart.PromoApplied{UserID: 1, PromoID: 1, Code: "SAVE10"})
	w.cart(1, cart.ItemAdded{UserID: 1, ProductID: 12, Quantity: 2, UnitPrice: 500}) // grows to 6
	w.cart(1, cart.LinePriceUpdated{UserID: 1, ProductID: 12, OldPrice: 500, NewPrice: 550})
	w.cart(1, cart.ItemAdded{UserID: 1, ProductID: 12, Quantity: 1, UnitPrice: 550}) // 7 at the new price

	// User 2: a cart checked out into order 100, then a new cart.
	w.cart(2, cart.ItemAdded{UserID: 2, ProductID: 11, Quantity: 1, UnitPrice: 1000},
		cart.PromoApplied{UserID: 2, PromoID: 1, Code: "SAVE10"})
	w.promo(1, promo.Used{PromoID: 1, OrderID: 100})
	f.statuses = w.order(100, w.placed(100, 2, 100, 1, "SAVE10", order.Line{ProductID: 11, Name: "Anvil", Quantity: 1, UnitPrice: 1000}))
	w.cart(2, cart.CheckedOut{UserID: 2, OrderID: 100})
	w.cart(2, cart.ItemAdded{UserID: 2, ProductID: 13, Quantity: 2, UnitPrice: 300})
	for range 3 { // a line that only grows
		w.cart(2, cart.ItemAdded{UserID: 2, ProductID: 13, Quantity: 1, UnitPrice: 300})
	}
	w.cart(2, cart.LinePriceUpdated{UserID: 2, ProductID: 13, OldPrice: 300, NewPrice: 320})

	// User 3: a cleared cart, and a line added again after the clear.
	w.cart(3, cart.ItemAdded{UserID: 3, ProductID: 12, Quantity: 1, UnitPrice: 500},
		cart.ItemAdded{UserID: 3, ProductID: 13, Quantity: 1, UnitPrice: 300},
		cart.PromoApplied{UserID: 3, PromoID: 2, Code: "FIVE"})
	w.cart(3, cart.Cleared{UserID: 3})
	w.cart(3, cart.ItemAdded{UserID: 3, ProductID: 12, Quantity: 5, UnitPrice: 500},
		cart.LinePriceUpdated{UserID: 3, ProductID: 12, OldPrice: 500, NewPrice: 450}) // repriced in the batch that adds it

	// Order 100's life.
	w.order(100, order.PaymentRequested{OrderID: 100, IntentID: "pi_1", Attempt: 1})
	w.order(100, order.PaymentFailed{OrderID: 100, IntentID: "pi_1", StripeEventID: "evt_1", Reason: "card_declined"})
	w.order(100, order.PaymentRequested{OrderID: 100, IntentID: "pi_2", Attempt: 2})
	f.statuses = append(f.statuses, w.order(100, order.MarkedPaid{OrderID: 100, IntentID: "pi_2", StripeEventID: "evt_2", Amount: 900})...)
	f.statuses = append(f.statuses, w.order(100, order.MarkedShipped{OrderID: 100})...)
	f.statuses = append(f.statuses, w.order(100, order.MarkedDelivered{OrderID: 100})...)

	// Order 101 (user 1) is cancelled and gives its promo use back; a late Stripe success is ignored.
	w.promo(1, promo.Used{PromoID: 1, OrderID: 101})
	w.order(101, w.placed(101, 1, 0, 1, "SAVE10", order.Line{ProductID: 12, Name: "Bolt", Quantity: 2, UnitPrice: 500},
		order.Line{ProductID: 13, Name: "Cable", Quantity: 1, UnitPrice: 300}))
	w.order(101, order.MarkedCancelled{OrderID: 101, Reason: "not paid"})
	w.promo(1, promo.UseReleased{PromoID: 1, OrderID: 101})
	w.order(101, order.StripeEventIgnored{OrderID: 101, StripeEventID: "evt_3", Type: "payment_succeeded", Reason: "order is cancelled"})

	// Order 102 (user 4, later erased) is paid.
	w.promo(1, promo.Used{PromoID: 1, OrderID: 102})
	w.order(102, w.placed(102, 4, 0, 1, "SAVE10", order.Line{ProductID: 13, Name: "Cable", Quantity: 3, UnitPrice: 300}))
	w.order(102, order.MarkedPaid{OrderID: 102, IntentID: "pi_3", StripeEventID: "evt_4", Amount: 900})

	// Promos change: 1's terms, 2 expires, 3 is deleted and its code goes to a new promo 4.
	w.promo(1, promo.Updated{PromoID: 1, Terms: promo.Terms{Kind: promo.Percent, Value: 15, UsageLimit: 10, Active: true}})
	w.promo(2, promo.Expired{PromoID: 2})
	w.promo(3, promo.Deleted{PromoID: 3, Code: "GONE"})
	w.promo(4, promo.Created{PromoID: 4, Code: "GONE", Terms: promo.Terms{Kind: promo.Amount, Value: 250, Active: true}})

	// Promo 5 has no usage limit: its uses are the orders that name it (no PromoUsed), and a
	// cancelled one gives its use back.
	w.promo(5, promo.Created{PromoID: 5, Code: "ALWAYS", Terms: promo.Terms{Kind: promo.Percent, Value: 5, Active: true}})
	for _, id := range []int64{103, 104, 105} {
		w.order(id, w.placed(id, 3, 0, 5, "ALWAYS", order.Line{ProductID: 13, Name: "Cable", Quantity: 1, UnitPrice: 300}))
	}
	w.order(104, order.MarkedCancelled{OrderID: 104, Reason: "not paid"})

	w.erase(4)
	return f
}

type cartItem struct {
	id, product, qty int64
	price            string
}

func cartItems(t *testing.T, e *projtest.Env, userID int64) []cartItem {
	t.Helper()
	rows, err := e.Pool.Query(context.Background(), `SELECT id, product_id, quantity, unit_price::text
		FROM cart_items WHERE cart_id = $1 ORDER BY product_id`, userID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cartItem, error) {
		var c cartItem
		return c, r.Scan(&c.id, &c.product, &c.qty, &c.price)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkHistory asserts what the history must have left in the tables.
func checkHistory(t *testing.T, e *projtest.Env, f facts) {
	t.Helper()
	ctx := context.Background()
	wantItems := map[int64][]cartItem{
		1: {{f.readded, 11, 1, "11.00"}, {0, 12, 7, "5.50"}},
		2: {{0, 13, 5, "3.20"}},
		3: {{0, 12, 5, "4.50"}},
	}
	for u, want := range wantItems {
		got := cartItems(t, e, u)
		for i := range got {
			if i < len(want) && want[i].id == 0 {
				want[i].id = got[i].id // only the re-added line's id is asserted
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("cart %d: items %+v, want %+v", u, got, want)
		}
	}
	for _, c := range []struct {
		user  int64
		promo *int64
	}{{1, new(int64(1))}, {2, nil}, {3, nil}} {
		var promoID *int64
		if err := e.Pool.QueryRow(ctx, `SELECT promo_id FROM carts WHERE id = $1`, c.user).Scan(&promoID); err != nil {
			t.Fatal(err)
		}
		if (promoID == nil) != (c.promo == nil) || (promoID != nil && *promoID != *c.promo) {
			t.Errorf("cart %d: promo %v, want %v", c.user, promoID, c.promo)
		}
	}

	rows, err := e.Pool.Query(ctx, `SELECT position, status FROM order_status_history WHERE order_id = 100 ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	type change struct {
		pos    int64
		status string
	}
	hist, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (change, error) {
		var c change
		return c, r.Scan(&c.pos, &c.status)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []change{{f.statuses[0], order.PendingPayment}, {f.statuses[1], order.Paid}, {f.statuses[2], order.Shipped}, {f.statuses[3], order.Delivered}}
	if !slices.Equal(hist, want) {
		t.Errorf("order 100 history %v, want %v", hist, want)
	}

	for _, c := range []struct {
		id                         int64
		status, total, city, items string
	}{
		{100, order.Delivered, "9.00", "Lisbon", "1"},
		{101, order.Cancelled, "13.00", "Lisbon", "2"},
		{102, order.Paid, "9.00", "", "1"}, // the customer was erased: the address is gone, the totals stay
	} {
		var status, total, city, country, items string
		if err := e.Pool.QueryRow(ctx, `SELECT status, total_amount::text, city, country,
			(SELECT count(*)::text FROM order_items WHERE order_id = o.id) FROM orders o WHERE id = $1`, c.id).
			Scan(&status, &total, &city, &country, &items); err != nil {
			t.Fatalf("order %d: %v", c.id, err)
		}
		if status != c.status || total != c.total || city != c.city || items != c.items || (c.city == "") != (country == "") {
			t.Errorf("order %d: %s %s %q %q %s items, want %s %s %q, %s items", c.id, status, total, city, country, items,
				c.status, c.total, c.city, c.items)
		}
	}

	for _, c := range []struct {
		id            int64
		code          string
		value, used   int64
		active        bool
		limit         int64
		expiresIsNull bool
	}{
		{1, "SAVE10", 15, 2, true, 10, true}, // used ×3, released ×1
		{2, "FIVE", 500, 0, false, 3, false},
		{4, "GONE", 250, 0, true, 0, true},
		{5, "ALWAYS", 5, 2, true, 0, true}, // 3 orders, one cancelled
	} {
		var (
			code        string
			value, used int64
			limit       int64
			active      bool
			expires     *time.Time
		)
		if err := e.Pool.QueryRow(ctx, `SELECT code, discount, usage_count, is_active, usage_limit, expiration_date
			FROM promo_codes WHERE id = $1`, c.id).Scan(&code, &value, &used, &active, &limit, &expires); err != nil {
			t.Fatalf("promo %d: %v", c.id, err)
		}
		if code != c.code || value != c.value || used != c.used || active != c.active || limit != c.limit || (expires == nil) != c.expiresIsNull {
			t.Errorf("promo %d: %s %d used %d active %v limit %d expires %v; want %+v", c.id, code, value, used, active, limit, expires, c)
		}
	}
	var deleted int
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM promo_codes WHERE id = 3`).Scan(&deleted); err != nil {
		t.Fatal(err)
	}
	if deleted != 0 {
		t.Error("the deleted promo 3 still has a row")
	}
}

// The live projectors (one event per batch) and a rebuild (the whole log in one batch) build the
// same tables, and the values the history implies; so does applying the log in batches of other
// sizes, each batch applied twice, and in overlapping batches.
func TestLiveEqualsRebuild(t *testing.T) {
	e := projtest.NewEnv(t)
	w := newWorld(t, e)
	eng := projtest.StartEngineWith(t, e, orderproj.Projectors(), 1)
	f := history(t, w)
	projtest.WaitCaughtUp(t, e, names...)
	eng.Stop(t)
	checkHistory(t, e, f)
	live := snapshot(t, e)

	for _, p := range orderproj.Projectors() {
		projtest.Rebuild(t, e, p)
	}
	requireSame(t, "rebuild vs live", live, snapshot(t, e))

	evs := readLog(t, e)
	// Windows of size events starting every step events: step < size re-delivers events in
	// batches that begin inside an applied one, which only the version guards make harmless.
	for _, c := range []struct{ size, step int }{{2, 2}, {3, 3}, {5, 5}, {7, 7}, {4, 2}, {6, 3}, {7, 5}} {
		t.Run(fmt.Sprintf("windows of %d every %d", c.size, c.step), func(t *testing.T) {
			if _, err := e.Pool.Exec(context.Background(), `TRUNCATE `+strings.Join(tables, ", ")); err != nil {
				t.Fatal(err)
			}
			for _, p := range orderproj.Projectors() {
				mine := ofTypes(evs, p.StreamTypes())
				for i := 0; i < len(mine); i += c.step {
					batch := mine[i:min(i+c.size, len(mine))]
					apply(t, e, p, batch)
					apply(t, e, p, batch) // a batch delivered twice changes nothing the second time
				}
			}
			requireSame(t, "windows vs live", live, snapshot(t, e))
		})
	}
}

func readLog(t *testing.T, e *projtest.Env) []eventstore.Event {
	t.Helper()
	evs, err := e.Store.ReadAll(context.Background(), eventstore.Cursor{}, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func ofTypes(evs []eventstore.Event, types []string) []eventstore.Event {
	var out []eventstore.Event
	for _, ev := range evs {
		if slices.Contains(types, ev.StreamType) {
			out = append(out, ev)
		}
	}
	return out
}

// apply runs p's statements for batch in one transaction, as the engine does.
func apply(t *testing.T, e *projtest.Env, p projections.Projector, batch []eventstore.Event) {
	t.Helper()
	stmts, err := p.Apply(projections.Identity(p), batch)
	if err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(context.Background(), e.Pool, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(context.Background(), s.SQL, s.Args...); err != nil {
				return fmt.Errorf("%s: %w\n%s", p.Name(), err, s.SQL)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Applying a batch twice leaves the tables as applying it once, and a batch's statements do not
// grow in number with its events.
func TestApplyIsIdempotent(t *testing.T) {
	e := projtest.NewEnv(t)
	w := newWorld(t, e)
	history(t, w)
	for _, p := range orderproj.Projectors() {
		projtest.Rebuild(t, e, p)
	}
	before := snapshot(t, e)
	evs := readLog(t, e)
	for _, p := range orderproj.Projectors() {
		apply(t, e, p, evs)
		stmts, err := p.Apply(projections.Identity(p), evs)
		if err != nil {
			t.Fatal(err)
		}
		if limit := map[string]int{orderproj.CartsProjector: 6, orderproj.OrdersProjector: 4, orderproj.PromoCodesProjector: 5}[p.Name()]; len(stmts) > limit {
			t.Errorf("%s: %d statements for %d events, want at most %d", p.Name(), len(stmts), len(evs), limit)
		}
	}
	requireSame(t, "applied twice vs once", before, snapshot(t, e))
}
