package order_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
)

func TestPercentDiscountRoundsHalfUp(t *testing.T) {
	for _, tc := range []struct {
		kind            string
		value           int64
		subtotal, wants domain.Money
	}{
		{promo.Percent, 10, 12345, 1235}, // 1234.5 cents → 1235
		{promo.Percent, 10, 12344, 1234}, // 1234.4 → 1234
		{promo.Percent, 15, 1, 0},        // 0.15 → 0
		{promo.Percent, 50, 1, 1},        // 0.5 → 1
		{promo.Percent, 100, 9999, 9999},
		{promo.Amount, 500, 10000, 500},
		{promo.Amount, 500, 300, 300}, // never more than the subtotal
	} {
		p, err := promo.New(1, "CODE", promo.Terms{Kind: tc.kind, Value: tc.value, Active: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Discount(tc.subtotal); got != tc.wants {
			t.Errorf("%s %d of %s = %s, want %s", tc.kind, tc.value, tc.subtotal, got, tc.wants)
		}
	}
}

func TestPromoRedeemable(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		terms promo.Terms
		used  int
		want  string
	}{
		{"fine", promo.Terms{Kind: promo.Percent, Value: 10, Active: true, ExpiresAt: &future, UsageLimit: 2}, 1, ""},
		{"inactive", promo.Terms{Kind: promo.Percent, Value: 10}, 0, promo.ReasonInactive},
		{"expired", promo.Terms{Kind: promo.Percent, Value: 10, Active: true, ExpiresAt: &past}, 0, promo.ReasonExpired},
		{"used up", promo.Terms{Kind: promo.Percent, Value: 10, Active: true, UsageLimit: 2}, 2, promo.ReasonUsedUp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := promo.New(1, "CODE", tc.terms)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.used {
				if err := p.Use(int64(i+1), now); err != nil {
					t.Fatal(err)
				}
			}
			if got := p.Redeemable(now); got != tc.want {
				t.Fatalf("Redeemable = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCartRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(c *cart.Cart) error
		kind error
	}{
		{"quantity 0", func(c *cart.Cart) error { return c.Add(cart.Product{ID: 1, Price: 100, Stock: 5}, 0) }, domain.ErrInvalid},
		{"quantity 100", func(c *cart.Cart) error { return c.Add(cart.Product{ID: 1, Price: 100, Stock: 500}, 100) }, domain.ErrInvalid},
		{"more than the stock", func(c *cart.Cart) error { return c.Add(cart.Product{ID: 1, Price: 100, Stock: 2}, 3) }, domain.ErrConflict},
		{"a deleted product", func(c *cart.Cart) error { return c.Add(cart.Product{ID: 1, Deleted: true, Stock: 5}, 1) }, domain.ErrNotFound},
		{"a line past 99", func(c *cart.Cart) error {
			if err := c.Add(cart.Product{ID: 1, Price: 100, Stock: 500}, 60); err != nil {
				return err
			}
			return c.Add(cart.Product{ID: 1, Price: 100, Stock: 500}, 40)
		}, domain.ErrInvalid},
		{"a second code", func(c *cart.Cart) error {
			if err := c.ApplyPromo(1, "ONE"); err != nil {
				return err
			}
			return c.ApplyPromo(2, "TWO")
		}, domain.ErrConflict},
		{"checkout of an empty cart", func(c *cart.Cart) error { return c.CheckOut(1) }, domain.ErrConflict},
		{"a raise past the stock", func(c *cart.Cart) error {
			if err := c.Add(cart.Product{ID: 1, Price: 100, Stock: 4}, 2); err != nil {
				return err
			}
			return c.SetQuantity(cart.Product{ID: 1, Price: 100, Stock: 4}, 5)
		}, domain.ErrConflict},
		{"a raise of a product no longer sold", func(c *cart.Cart) error {
			if err := c.Add(cart.Product{ID: 1, Price: 100, Stock: 4}, 2); err != nil {
				return err
			}
			return c.SetQuantity(cart.Product{ID: 1, Deleted: true}, 3)
		}, domain.ErrConflict},
		{"a quantity of a product not in the cart", func(c *cart.Cart) error {
			return c.SetQuantity(cart.Product{ID: 1, Price: 100, Stock: 4}, 1)
		}, domain.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(cart.New(7)); !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
		})
	}
	c := cart.New(7)
	_ = c.Add(cart.Product{ID: 1, Price: 100, Stock: 10}, 2)
	_ = c.Add(cart.Product{ID: 1, Price: 150, Stock: 10}, 3) // the remembered price stays
	if l := c.Lines(); len(l) != 1 || l[0].Quantity != 5 || l[0].UnitPrice != 100 {
		t.Fatalf("lines: %+v", l)
	}
	// Lowering a line always goes, even past the stock or for a product no longer sold.
	if err := c.SetQuantity(cart.Product{ID: 1, Deleted: true}, 1); err != nil || c.Lines()[0].Quantity != 1 {
		t.Fatalf("lowering: %v, lines %+v", err, c.Lines())
	}
}

func TestAnOrderItsDiscountCoversIsPaidAsPlaced(t *testing.T) {
	o, err := order.Place(order.PlaceInput{OrderID: 1, UserID: 2, Lines: []order.Line{{ProductID: 3, Quantity: 2, UnitPrice: 1000}},
		Discount: 2000, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Changes()) != 2 || o.Status() != order.Paid {
		t.Fatalf("events %#v, status %s", o.Changes(), o.Status())
	}
	o = order.Rehydrate(o.Changes())
	if o.SeenStripeEvent("") || o.Status() != order.Paid {
		t.Fatalf("rehydrated: status %s, an empty Stripe event seen %v", o.Status(), o.SeenStripeEvent(""))
	}
	if err := o.Refund(""); err != nil || o.Status() != order.Refunded {
		t.Fatalf("refund: %v, status %s", err, o.Status())
	}
}

func TestOrderStateMachine(t *testing.T) {
	place := func() *order.Order {
		o, err := order.Place(order.PlaceInput{OrderID: 1, UserID: 2, Lines: []order.Line{{ProductID: 3, Quantity: 2, UnitPrice: 1000}},
			Discount: 200, Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		return order.Rehydrate(o.Changes())
	}
	o := place()
	if p := o.Placed(); p.Subtotal != 2000 || p.Total != 1800 {
		t.Fatalf("totals: %+v", p)
	}
	if err := o.Ship(); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("shipping an unpaid order: %v", err)
	}
	if err := o.RequestPayment("pi_1"); err != nil {
		t.Fatal(err)
	}
	// Successes that are not this order's payment are recorded (answered once) and change nothing.
	for i, tc := range []struct {
		intent   string
		cents    domain.Money
		currency string
	}{{"pi_1", 1700, "USD"}, {"pi_1", 1800, "EUR"}, {"pi_other", 1800, "USD"}} {
		ev := fmt.Sprintf("evt_wrong_%d", i)
		o.PaymentSucceeded(ev, tc.intent, tc.cents, tc.currency)
		if o.Status() != order.PendingPayment || !o.SeenStripeEvent(ev) {
			t.Fatalf("%+v: status %s, seen %v", tc, o.Status(), o.SeenStripeEvent(ev))
		}
		if last, ok := o.Changes()[len(o.Changes())-1].(order.StripeEventIgnored); !ok || last.Reason == "" {
			t.Fatalf("%+v: last change %#v, want a StripeEventIgnored with its reason", tc, o.Changes()[len(o.Changes())-1])
		}
	}
	if o.PaymentSucceeded("evt_1", "pi_1", 1800, "USD"); o.Status() != order.Paid {
		t.Fatalf("paying: %s", o.Status())
	}
	n := len(o.Changes())
	if o.PaymentSucceeded("evt_1", "pi_1", 1800, "USD"); len(o.Changes()) != n {
		t.Fatal("a repeated webhook must change nothing")
	}
	if err := o.Cancel("customer"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("cancelling a paid order: %v", err)
	}
	for _, step := range []func() error{o.Ship, o.Deliver} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Ship(); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("going backwards: %v", err)
	}
	if err := o.Refund("re_1"); err != nil || o.Status() != order.Refunded {
		t.Fatalf("refund: %v", err)
	}
	// An earlier attempt's success that arrives after a new attempt was made pays the order: the
	// refund is asked of that intent, not of the latest one.
	late := place()
	for _, step := range []func(){
		func() { _ = late.RequestPayment("pi_first") },
		func() { late.PaymentFailedFor("evt_f", "pi_first", "card_declined") },
		func() { _ = late.RequestPayment("pi_second") },
		func() { late.PaymentSucceeded("evt_s", "pi_first", 1800, "USD") },
	} {
		step()
	}
	if late.Status() != order.Paid || late.PaidIntentID() != "pi_first" || late.IntentID() != "pi_second" {
		t.Fatalf("paid by an earlier attempt: status %s, paid with %q, latest intent %q", late.Status(), late.PaidIntentID(), late.IntentID())
	}

	// A success that arrives after a cancellation is recorded and ignored.
	c := place()
	if err := c.RequestPayment("pi_1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel("unpaid"); err != nil {
		t.Fatal(err)
	}
	if c.PaymentSucceeded("evt_9", "pi_1", 1800, "USD"); c.Status() != order.Cancelled || !c.SeenStripeEvent("evt_9") {
		t.Fatalf("late success: %s", c.Status())
	}
}

func TestRefundReportedByStripe(t *testing.T) {
	paid := func() *order.Order {
		o, err := order.Place(order.PlaceInput{OrderID: 1, UserID: 2, Lines: []order.Line{{ProductID: 3, Quantity: 1, UnitPrice: 1000}}, Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.RequestPayment("pi_1"); err != nil {
			t.Fatal(err)
		}
		o.PaymentSucceeded("evt_paid", "pi_1", 1000, "USD")
		return order.Rehydrate(o.Changes())
	}
	for _, tc := range []struct {
		name     string
		before   func(o *order.Order)
		intent   string
		amount   domain.Money
		want     string
		recorded any
	}{
		{"a full refund in the dashboard", nil, "pi_1", 1000, order.Refunded, order.MarkedRefunded{}},
		{"a partial refund", nil, "pi_1", 400, order.Paid, order.StripeEventIgnored{}},
		{"another charge", nil, "pi_other", 1000, order.Paid, order.StripeEventIgnored{}},
		{"the word about the store's own refund", func(o *order.Order) {
			if err := o.Refund("re_1"); err != nil {
				t.Fatal(err)
			}
		}, "pi_1", 1000, order.Refunded, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := paid()
			if tc.before != nil {
				tc.before(o)
			}
			n := len(o.Changes())
			o.RefundReported("evt_refund", tc.intent, tc.amount, "USD")
			o.RefundReported("evt_refund", tc.intent, tc.amount, "USD") // redelivered
			got := o.Changes()[n:]
			want := 1
			if tc.recorded == nil {
				want = 0
			}
			if o.Status() != tc.want || len(got) != want || want == 1 && fmt.Sprintf("%T", got[0]) != fmt.Sprintf("%T", tc.recorded) {
				t.Fatalf("status %s, recorded %#v; want %s and %d %T", o.Status(), got, tc.want, want, tc.recorded)
			}
		})
	}
}
