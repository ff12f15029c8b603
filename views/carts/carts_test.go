package carts_test

import (
	"context"
	"testing"
	"time"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/orderproj"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/views/carts"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// The cache follows the log: a cart change and a price change of a product in a cached cart are
// both seen once their projector has committed and its notification has arrived.
func TestCartsFollowTheLog(t *testing.T) {
	e := projtest.NewEnv(t)
	shop := commands.NewShop(e.Store, e.Store.Sequences(map[string]string{commands.OrderIDs: "order_ids", commands.PromoIDs: "promo_ids"}), nil, nil)
	var ps []projections.Projector
	ps = append(ps, catalogproj.Projectors()...)
	ps = append(ps, orderproj.Projectors()...)
	projtest.StartEngineWith(t, e, ps, 100)
	c, err := carts.New(e.Pool, queries.NewOrderQueries(e.Pool, nil), e.Log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("carts: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	md := domain.Metadata{ActorID: "7"}
	p, err := e.Cat.CreateProduct(ctx, md, commands.CreateProduct{Name: "NVMe SSD 2TB", Price: 12900, Stock: 10})
	if err != nil {
		t.Fatal(err)
	}
	eventually := func(what string, cond func(v queries.CartView) bool) {
		t.Helper()
		deadline := time.Now().Add(projtest.WaitTimeout)
		for {
			v, err := c.Cart(ctx, 7)
			if err != nil {
				t.Fatal(err)
			}
			if cond(v) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cache never showed %s: %+v", what, v)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	eventually("an empty cart", func(v queries.CartView) bool { return len(v.Lines) == 0 })
	if _, err := shop.AddToCart(ctx, md, commands.AddToCart{UserID: 7, ProductID: p.ID, Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	eventually("the added line", func(v queries.CartView) bool { return len(v.Lines) == 1 && v.Lines[0].Quantity == 2 })
	// A write behind the projector's back (no notification) is not seen: reads come from the cache
	// (once the add's notification has surely arrived and a read has filled it).
	time.Sleep(100 * time.Millisecond)
	if _, err := c.Cart(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pool.Exec(ctx, `UPDATE cart_items SET quantity = 5 WHERE cart_id = 7`); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Cart(ctx, 7); err != nil || len(v.Lines) != 1 || v.Lines[0].Quantity != 2 {
		t.Fatalf("read %+v, %v: the cache did not serve the cart", v, err)
	}
	price := domain.Money(9900)
	if _, err := e.Cat.UpdateProduct(ctx, md, commands.UpdateProduct{ID: p.ID, Price: &price}); err != nil {
		t.Fatal(err)
	}
	eventually("the new price", func(v queries.CartView) bool {
		return len(v.Lines) == 1 && v.Lines[0].CurrentPrice == price && v.Lines[0].PriceChanged
	})
}
