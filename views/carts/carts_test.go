package carts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/promo"
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
	projtest.Accounts(t, e, 7, 8)
	shop := commands.NewShop(e.Store, e.Store.Sequences(map[string]string{commands.OrderIDs: "order_ids", commands.PromoIDs: "promo_ids"}), nil, nil)
	var ps []projections.Projector
	ps = append(ps, catalogproj.Projectors()...)
	ps = append(ps, orderproj.Projectors()...)
	projtest.StartEngineWith(t, e, ps, 100)
	c, err := carts.New(e.Pool, queries.NewOrderQueries(e.Pool, nil), e.Log, nil, "")
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

// startCarts runs a cart view until the test ends.
func startCarts(t *testing.T, e *projtest.Env, rdb *redis.Client, prefix string) *carts.Carts {
	t.Helper()
	c, err := carts.New(e.Pool, queries.NewOrderQueries(e.Pool, nil), e.Log, rdb, prefix)
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
	return c
}

// The Redis view is shared by processes: a view one computed is served to another from Redis
// (not from Postgres), a notification removes it from Redis for every process, and with Redis
// unreachable the answers come from Postgres.
func TestCartViewInRedis(t *testing.T) {
	e := projtest.NewEnv(t)
	projtest.Accounts(t, e, 7, 8)
	shop := commands.NewShop(e.Store, e.Store.Sequences(map[string]string{commands.OrderIDs: "order_ids", commands.PromoIDs: "promo_ids"}), nil, nil)
	var ps []projections.Projector
	ps = append(ps, catalogproj.Projectors()...)
	ps = append(ps, orderproj.Projectors()...)
	projtest.StartEngineWith(t, e, ps, 100)
	rdb, prefix := testdb.Redis(t)
	a, b := startCarts(t, e, rdb, prefix), startCarts(t, e, rdb, prefix)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	down := startCarts(t, e, dead, prefix)

	ctx := context.Background()
	md := domain.Metadata{ActorID: "8"}
	p, err := e.Cat.CreateProduct(ctx, md, commands.CreateProduct{Name: "Mechanical keyboard", Price: 8900, Stock: 10})
	if err != nil {
		t.Fatal(err)
	}
	_, err = shop.AddToCart(ctx, md, commands.AddToCart{UserID: 8, ProductID: p.ID, Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.Name())
	}
	projtest.WaitCaughtUp(t, e, names...)
	time.Sleep(100 * time.Millisecond) // the notifications of the add have arrived
	quantity := func(c *carts.Carts) int64 {
		t.Helper()
		v, err := c.Cart(ctx, 8)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Lines) != 1 {
			t.Fatalf("cart %+v: want one line", v)
		}
		return v.Lines[0].Quantity
	}
	// a reads Postgres and writes the view to Redis, unless a notification arrived during its
	// read (a late one of the setup, under -race): then it reads again on the next call.
	projtest.Eventually(t, "a read of a writes the cart view to Redis", func() (bool, string) {
		if q := quantity(a); q != 2 {
			t.Fatalf("a read %d, want 2", q)
		}
		n, err := rdb.Exists(ctx, prefix+"cartview:8").Result()
		return err == nil && n == 1, fmt.Sprintf("exists %d, %v", n, err)
	})
	// A write behind the projector's back: b, which never read the cart, is served by Redis.
	if _, err := e.Pool.Exec(ctx, `UPDATE cart_items SET quantity = 5 WHERE cart_id = 8`); err != nil {
		t.Fatal(err)
	}
	if q := quantity(b); q != 2 {
		t.Fatalf("b read %d: not served from Redis", q)
	}
	if q := quantity(down); q != 5 {
		t.Fatalf("with Redis unreachable the view read %d, want Postgres' 5", q)
	}

	// A change removes the view from Redis and from both processes.
	if _, err := shop.AddToCart(ctx, md, commands.AddToCart{UserID: 8, ProductID: p.ID, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(projtest.WaitTimeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// noStaleView: the Redis view holds want, or is absent. b's fill after the change may be
	// refused (rightly) when a's handling of the same notification lands after b read the
	// counters; then the next read fills it.
	noStaleView := func(t *testing.T, when, want string) {
		t.Helper()
		v, err := rdb.Get(ctx, prefix+"cartview:8").Bytes()
		if errors.Is(err, redis.Nil) {
			return
		}
		if err != nil || !strings.Contains(string(v), want) {
			t.Fatalf("the Redis view %s: %s, %v", when, v, err)
		}
	}
	eventually("both processes show the new quantity", func() bool { return quantity(a) == 6 && quantity(b) == 6 })

	// A price change drops every Redis view holding the product.
	price := domain.Money(7900)
	if _, err := e.Cat.UpdateProduct(ctx, md, commands.UpdateProduct{ID: p.ID, Price: &price}); err != nil {
		t.Fatal(err)
	}
	eventually("the new price in b", func() bool {
		v, err := b.Cart(ctx, 8)
		return err == nil && len(v.Lines) == 1 && v.Lines[0].CurrentPrice == price
	})
	noStaleView(t, "after the price change", `"79.00"`)

	// A change of the cart's code drops the Redis views holding it (and only the promo's).
	code, err := shop.CreatePromo(ctx, md, commands.CreatePromo{Code: "TENOFF", Terms: promo.Terms{Kind: promo.Percent, Value: 10, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shop.RedeemPromo(ctx, md, 8, "tenoff"); err != nil {
		t.Fatal(err)
	}
	discount := func(c *carts.Carts) domain.Money {
		v, err := c.Cart(ctx, 8)
		if err != nil {
			t.Fatal(err)
		}
		return v.Discount
	}
	eventually("the code's discount", func() bool { return discount(a) == 4740 }) // 10 % of 6 × 79.00
	if _, err := shop.UpdatePromo(ctx, md, code.ID, promo.Terms{Kind: promo.Percent, Value: 20, Active: true}); err != nil {
		t.Fatal(err)
	}
	eventually("the new discount in b", func() bool { return discount(b) == 9480 })
	noStaleView(t, "after the code changed", `"94.80"`)
}
