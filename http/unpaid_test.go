package http_test

import (
	"context"
	"fmt"
	"testing"
)

// Orders left unpaid are cancelled by the sweeper: stock comes back, a paid order is left alone,
// and a second sweep cancels nothing (each cancellation is decided on the order's stream).
func TestUnpaidOrdersAreCancelledOnce(t *testing.T) {
	s := newShop(t)
	c, addr, _ := s.shopper(t)
	add(c, s.gpu.ID, 2)
	unpaid := placeOrder(c, addr)
	add(c, s.ssd.ID, 1)
	paid := placeOrder(c, addr)
	c.lastPosition = max(c.lastPosition, payByWebhook(t, s.h, paid.Order.ID, paid.Payment.IntentID, paid.Order.Total.Cents()))
	if st := c.order(paid.Order.ID).Status; st != "paid" {
		t.Fatalf("the paid order is %s", st)
	}
	c.order(unpaid.Order.ID) // projected (X-Min-Position): the sweeper's work list holds it

	ctx := context.Background()
	n, err := s.h.app.CancelUnpaidOrders(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("first sweep cancelled %d orders, %v; want 1", n, err)
	}
	c.lastPosition = max(c.lastPosition, s.h.head())
	if st := c.order(unpaid.Order.ID).Status; st != "cancelled" {
		t.Fatalf("the unpaid order is %s after the sweep", st)
	}
	if st := c.order(paid.Order.ID).Status; st != "paid" {
		t.Fatalf("the paid order is %s after the sweep", st)
	}
	var p product
	s.h.do("GET", fmt.Sprintf("/api/v1/products/%d", s.gpu.ID), "", "X-Min-Position", fmt.Sprint(c.lastPosition)).json(t, &p)
	if p.Stock != 50 {
		t.Fatalf("stock after the cancellation: %d, want 50 again", p.Stock)
	}
	if n, err := s.h.app.CancelUnpaidOrders(ctx, 0); err != nil || n != 0 {
		t.Fatalf("second sweep cancelled %d orders, %v; want 0", n, err)
	}
}
