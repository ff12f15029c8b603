package orderproj_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/orderproj"
	"github.com/techvault/techvault/queries"
)

// epoch is the first recorded_at of the query tests' store; each append is a minute later.
var epoch = time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC)

// queryEnv is a store whose clock moves a minute per append, with the catalog and order
// projectors running.
func queryEnv(t *testing.T) (*projtest.Env, *world, *queries.OrderQueries) {
	t.Helper()
	var ticks atomic.Int64
	e := projtest.NewEnvWithClock(t, func() time.Time { return epoch.Add(time.Duration(ticks.Add(1)) * time.Minute) })
	projtest.StartEngineWith(t, e, append(catalogproj.Projectors(), orderproj.Projectors()...), 100)
	// The queries judge promo expiry at a fixed time, a day after the epoch.
	return e, newWorld(t, e), queries.NewOrderQueries(e.Pool, func() time.Time { return epoch.Add(24 * time.Hour) })
}

func caughtUp(t *testing.T, e *projtest.Env) {
	t.Helper()
	projtest.WaitCaughtUp(t, e, append(names, catalogproj.ProductsProjector)...)
}

func product(t *testing.T, e *projtest.Env, name string, price domain.Money, stock int64) int64 {
	t.Helper()
	p, err := e.Cat.CreateProduct(context.Background(), projtest.MD, commands.CreateProduct{Name: name, Price: price, Stock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// A cart shows each line's remembered and current price, prices its totals at the current ones,
// and takes the promo's discount by the domain's rounding; a promo that cannot be redeemed
// takes nothing and says why.
func TestCartQuery(t *testing.T) {
	e, w, q := queryEnv(t)
	ctx := context.Background()
	anvil := product(t, e, "anvil", 1000, 5)
	bolt := product(t, e, "bolt", 255, 1)
	gone := product(t, e, "gone", 700, 9)
	past := epoch.Add(time.Hour)
	w.promo(1, promo.Created{PromoID: 1, Code: "TAKE15", Terms: promo.Terms{Kind: promo.Percent, Value: 15, Active: true}})
	w.promo(2, promo.Created{PromoID: 2, Code: "OLD", Terms: promo.Terms{Kind: promo.Amount, Value: 100, ExpiresAt: &past, Active: true}})
	w.promo(3, promo.Created{PromoID: 3, Code: "ONCE", Terms: promo.Terms{Kind: promo.Amount, Value: 99999, UsageLimit: 1, Active: true}})
	w.cart(7, cart.ItemAdded{UserID: 7, ProductID: anvil, Quantity: 2, UnitPrice: 1000},
		cart.ItemAdded{UserID: 7, ProductID: bolt, Quantity: 2, UnitPrice: 255},
		cart.PromoApplied{UserID: 7, PromoID: 1, Code: "TAKE15"})
	w.cart(8, cart.ItemAdded{UserID: 8, ProductID: anvil, Quantity: 1, UnitPrice: 1000},
		cart.PromoApplied{UserID: 8, PromoID: 2, Code: "OLD"})
	w.cart(9, cart.ItemAdded{UserID: 9, ProductID: gone, Quantity: 1, UnitPrice: 700},
		cart.ItemAdded{UserID: 9, ProductID: bolt, Quantity: 1, UnitPrice: 255},
		cart.PromoApplied{UserID: 9, PromoID: 3, Code: "ONCE"})
	w.promo(3, promo.Used{PromoID: 3, OrderID: 1})
	w.customer(70)
	w.order(1, w.placed(1, 70, 0, 3, "ONCE", order.Line{ProductID: bolt, Name: "bolt", Quantity: 1, UnitPrice: 255}))
	newPrice := domain.Money(1200)
	if _, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: anvil, Price: &newPrice}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cat.DeleteProduct(ctx, projtest.MD, gone); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, e)

	t.Run("changed price and percent discount", func(t *testing.T) {
		c, err := q.Cart(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		want := []queries.CartLineView{
			{ProductID: anvil, Name: "anvil", Quantity: 2, UnitPrice: 1000, CurrentPrice: 1200, PriceChanged: true, LineTotal: 2400, Available: true, InStock: true},
			{ProductID: bolt, Name: "bolt", Quantity: 2, UnitPrice: 255, CurrentPrice: 255, LineTotal: 510, Available: true, InStock: false},
		}
		if !slices.Equal(c.Lines, want) {
			t.Errorf("lines\n got %+v\nwant %+v", c.Lines, want)
		}
		// 15% of 29.10 is 4.365: half up to 4.37.
		if c.Subtotal != 2910 || c.Discount != 437 || c.Total != 2473 || c.PromoCode != "TAKE15" || c.PromoID != 1 ||
			c.PromoProblem != "" || c.Version != 3 || c.Currency != "USD" {
			t.Errorf("cart %+v", c)
		}
	})
	t.Run("expired promo", func(t *testing.T) {
		c, err := q.Cart(ctx, 8)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subtotal != 1200 || c.Discount != 0 || c.Total != 1200 || c.PromoCode != "OLD" || c.PromoProblem != promo.ReasonExpired {
			t.Errorf("cart %+v", c)
		}
	})
	t.Run("deleted product and used-up promo", func(t *testing.T) {
		c, err := q.Cart(ctx, 9)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Lines) != 2 || c.Lines[0].Available || c.Lines[0].LineTotal != 0 || c.Lines[0].InStock || c.Lines[0].Name != "" {
			t.Errorf("deleted product's line %+v", c.Lines)
		}
		if c.Subtotal != 255 || c.Discount != 0 || c.PromoProblem != promo.ReasonUsedUp {
			t.Errorf("cart %+v", c)
		}
	})
	t.Run("no cart", func(t *testing.T) {
		c, err := q.Cart(ctx, 99)
		if err != nil {
			t.Fatal(err)
		}
		if c.UserID != 99 || len(c.Lines) != 0 || c.Version != 0 || c.Total != 0 || c.PromoCode != "" {
			t.Errorf("cart %+v", c)
		}
	})
}

// Orders list newest first in keyset pages, for one customer or, for admins, filtered by status
// and placing time; one order reads back with its lines and status history.
func TestOrderQueries(t *testing.T) {
	e, w, q := queryEnv(t)
	ctx := context.Background()
	w.customer(7)
	w.customer(8)
	placedAt := map[int64]time.Time{}
	paid := map[int64]bool{203: true, 204: true, 205: true}
	for id := int64(201); id <= 206; id++ {
		uid := int64(7)
		if id == 202 || id == 204 {
			uid = 8
		}
		w.order(id, w.placed(id, uid, 0, 0, "", order.Line{ProductID: 1, Name: "anvil", Quantity: id - 200, UnitPrice: 1000},
			order.Line{ProductID: 2, Name: "bolt", Quantity: 1, UnitPrice: 255}))
		if paid[id] {
			w.order(id, order.MarkedPaid{OrderID: id, IntentID: "pi_x", StripeEventID: "evt_x", Amount: 0})
		}
	}
	w.promo(1, promo.Created{PromoID: 1, Code: "A1", Terms: promo.Terms{Kind: promo.Percent, Value: 5, Active: true}})
	w.promo(2, promo.Created{PromoID: 2, Code: "B2", Terms: promo.Terms{Kind: promo.Amount, Value: 500, Active: true}})
	w.promo(3, promo.Created{PromoID: 3, Code: "C3", Terms: promo.Terms{Kind: promo.Amount, Value: 500, Active: true}}, promo.Deleted{PromoID: 3, Code: "C3"})
	w.promo(4, promo.Created{PromoID: 4, Code: "D4", Terms: promo.Terms{Kind: promo.Percent, Value: 20, Active: false}})
	caughtUp(t, e)
	for id := int64(201); id <= 206; id++ {
		o, err := q.Order(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		placedAt[id] = o.PlacedAt
	}

	ids := func(f queries.OrderFilter) []int64 {
		t.Helper()
		var out []int64
		for pages := 0; ; pages++ {
			p, err := q.Orders(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) > f.Limit || pages > 10 {
				t.Fatalf("page of %d items for limit %d (page %d)", len(p.Items), f.Limit, pages)
			}
			for _, o := range p.Items {
				out = append(out, o.ID)
			}
			if p.NextCursor == "" {
				return out
			}
			f.Cursor = p.NextCursor
		}
	}
	customer := int64(7)
	from, to := placedAt[203], placedAt[205]
	for _, c := range []struct {
		name string
		f    queries.OrderFilter
		want []int64
	}{
		{"a customer's orders, two a page", queries.OrderFilter{UserID: &customer, Limit: 2}, []int64{206, 205, 203, 201}},
		{"every order", queries.OrderFilter{Limit: 4}, []int64{206, 205, 204, 203, 202, 201}},
		{"admins: paid", queries.OrderFilter{Status: order.Paid, Limit: 1}, []int64{205, 204, 203}},
		{"admins: pending of a customer", queries.OrderFilter{UserID: &customer, Status: order.PendingPayment, Limit: 5}, []int64{206, 201}},
		{"admins: placed in [203, 205)", queries.OrderFilter{From: &from, To: &to, Limit: 5}, []int64{204, 203}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ids(c.f); !slices.Equal(got, c.want) {
				t.Errorf("orders %v, want %v", got, c.want)
			}
		})
	}

	t.Run("one order", func(t *testing.T) {
		o, err := q.Order(ctx, 203)
		if err != nil {
			t.Fatal(err)
		}
		if o.UserID != 7 || o.Status != order.Paid || o.Total != 3255 || o.Subtotal != 3255 || o.ItemCount != 4 ||
			o.Address != (queries.OrderAddressView{City: "Lisbon", PostCode: "1100-148", Country: "PT"}) ||
			o.PaymentIntentID != "pi_x" || o.PaidAt == nil || len(o.Lines) != 2 {
			t.Fatalf("order %+v", o)
		}
		if l := o.Lines[0]; l.ID != 203*orderproj.ItemIDsPerOrder || l.Name != "anvil" || l.Quantity != 3 || l.UnitPrice != 1000 || l.Total != 3000 {
			t.Errorf("line %+v", l)
		}
		if len(o.History) != 2 || o.History[0].Status != order.PendingPayment || o.History[1].Status != order.Paid ||
			!o.History[1].At.Equal(*o.PaidAt) || !o.History[0].At.Equal(o.PlacedAt) {
			t.Errorf("history %+v (paid at %v)", o.History, o.PaidAt)
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := q.Order(ctx, 999); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("missing order: %v", err)
		}
		for _, f := range []queries.OrderFilter{{Limit: 0}, {Limit: 1, Status: "lost"}, {Limit: 1, Cursor: "bogus"}} {
			if _, err := q.Orders(ctx, f); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("filter %+v: %v", f, err)
			}
		}
	})
	t.Run("promo codes", func(t *testing.T) {
		var got []string
		cur := ""
		for {
			p, err := q.PromoCodes(ctx, 2, cur)
			if err != nil {
				t.Fatal(err)
			}
			for _, pc := range p.Items {
				got = append(got, pc.Code)
			}
			if cur = p.NextCursor; cur == "" {
				break
			}
		}
		if !slices.Equal(got, []string{"A1", "B2", "D4"}) {
			t.Errorf("promo codes %v", got)
		}
		pc, err := q.PromoCode(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		if pc.Kind != promo.Percent || pc.Value != 20 || pc.Active || pc.ExpiresAt != nil || pc.UsageCount != 0 {
			t.Errorf("promo 4 %+v", pc)
		}
		if _, err := q.PromoCode(ctx, 3); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("deleted promo: %v", err)
		}
	})
}
