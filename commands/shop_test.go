package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
)

type shopEnv struct {
	users *commands.Users
	shop  *commands.Shop
	cat   *commands.Catalog
	store *eventstore.Store
}

func newShop(t *testing.T) shopEnv {
	t.Helper()
	users, store, _ := newUsers(t)
	ids := store.Sequences(map[string]string{commands.OrderIDs: "order_ids", commands.PromoIDs: "promo_ids",
		commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
	// One cache for both handlers, as the application shares it: the concurrency tests decide on
	// cached state wherever the application would.
	cache := commands.WithAggregateCache(commands.NewAggregateCache(10_000))
	return shopEnv{users: users, shop: commands.NewShop(store, ids, nil, nil, cache), cat: commands.NewCatalog(store, ids, cache), store: store}
}

// customerWithAddress registers a customer with one address and returns (user, address) ids.
func (e shopEnv) customerWithAddress(t *testing.T, i int) (int64, int64) {
	t.Helper()
	ctx := context.Background()
	acct := register(t, e.users, fmt.Sprintf("shopper%d@example.com", i))
	a, err := e.users.SaveAddress(ctx, domain.Metadata{}, commands.SaveAddress{UserID: acct.UserID,
		Address: user.Address{City: "Lisbon", PostCode: "1100", Country: "PT"}})
	if err != nil {
		t.Fatal(err)
	}
	return acct.UserID, a.ID
}

func (e shopEnv) product(t *testing.T, price domain.Money, stock int64) int64 {
	t.Helper()
	p, err := e.cat.CreateProduct(context.Background(), domain.Metadata{ActorID: "admin"}, commands.CreateProduct{Name: "GPU " + fmt.Sprint(price, stock),
		Price: price, Stock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func md(uid int64) domain.Metadata { return domain.Metadata{ActorID: fmt.Sprint(uid)} }

// 200 concurrent orders, each with a code of usage limit 10: exactly 10 orders carry the
// discount, and the code's uses are 10.
func TestPromoUsageLimitUnderConcurrentOrders(t *testing.T) {
	e := newShop(t)
	ctx := context.Background()
	prod := e.product(t, 10000, 100000)
	if _, err := e.shop.CreatePromo(ctx, md(0), commands.CreatePromo{Code: "TEN", Terms: promo.Terms{Kind: promo.Percent, Value: 10, UsageLimit: 10, Active: true}}); err != nil {
		t.Fatal(err)
	}
	const n = 200
	type shopper struct{ user, addr int64 }
	shoppers := make([]shopper, n)
	for i := range n {
		u, a := e.customerWithAddress(t, i)
		shoppers[i] = shopper{u, a}
		if _, err := e.shop.AddToCart(ctx, md(u), commands.AddToCart{UserID: u, ProductID: prod, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.shop.RedeemPromo(ctx, md(u), u, "ten"); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg                        sync.WaitGroup
		mu                        sync.Mutex
		discounted, usedUp, other int
	)
	for _, s := range shoppers {
		wg.Go(func() {
			for {
				res, err := e.shop.PlaceOrder(ctx, md(s.user), commands.PlaceOrder{UserID: s.user, AddressID: s.addr})
				mu.Lock()
				switch {
				case err == nil && res.Discount == 1000:
					discounted++
				case err != nil && strings.Contains(err.Error(), "used_up"):
					usedUp++
				case errors.Is(err, domain.ErrConflict) && strings.Contains(err.Error(), "too many concurrent"):
					mu.Unlock()
					continue // the client tries again
				default:
					other++
					t.Errorf("order: %+v, %v", res, err)
				}
				mu.Unlock()
				return
			}
		})
	}
	wg.Wait()
	if discounted != 10 || usedUp != n-10 || other != 0 {
		t.Fatalf("%d discounted orders, %d refused as used up, %d other; want 10, %d, 0", discounted, usedUp, other, n-10)
	}
	var uses int
	if err := e.store.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_type = 'PromoUsed') FROM events`).Scan(&uses); err != nil {
		t.Fatal(err)
	}
	if uses != 10 {
		t.Fatalf("%d PromoUsed events, want 10", uses)
	}
}

// A code without a usage limit is used by concurrent orders without their appends meeting on its
// stream: every order carries the discount, the promo's stream is left as it was (the orders'
// OrderPlaced are its uses), and the code cannot be given a limit afterwards (nor a limited code
// lose its limit): the uses it had could not be counted against it.
func TestUnlimitedPromoUnderConcurrentOrders(t *testing.T) {
	e := newShop(t)
	ctx := context.Background()
	created, err := e.shop.CreatePromo(ctx, md(0), commands.CreatePromo{Code: "ALWAYS", Terms: promo.Terms{Kind: promo.Percent, Value: 10, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := e.store.Load(ctx, promo.StreamID(created.ID))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	users, addrs := make([]int64, n), make([]int64, n)
	for i := range n {
		users[i], addrs[i] = e.customerWithAddress(t, i)
		prod := e.product(t, 10000, 10) // a product each: only the code is shared
		if _, err := e.shop.AddToCart(ctx, md(users[i]), commands.AddToCart{UserID: users[i], ProductID: prod, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.shop.RedeemPromo(ctx, md(users[i]), users[i], "always"); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	discounts := make([]domain.Money, n)
	for i := range n {
		wg.Go(func() {
			res, err := e.shop.PlaceOrder(ctx, md(users[i]), commands.PlaceOrder{UserID: users[i], AddressID: addrs[i]})
			errs[i], discounts[i] = err, res.Discount
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || discounts[i] != 1000 {
			t.Fatalf("order %d: discount %s, %v", i, discounts[i], errs[i])
		}
	}
	after, err := e.store.Load(ctx, promo.StreamID(created.ID))
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(stream) {
		t.Fatalf("the code's stream grew from %d to %d events; an unlimited code's uses are its orders", len(stream), len(after))
	}
	var placed int
	if err := e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = 'OrderPlaced'
		AND (payload->>'promo_id')::bigint = $1`, created.ID).Scan(&placed); err != nil {
		t.Fatal(err)
	}
	if placed != n {
		t.Fatalf("%d orders name the code, want %d", placed, n)
	}

	limited, err := e.shop.CreatePromo(ctx, md(0), commands.CreatePromo{Code: "TWICE", Terms: promo.Terms{Kind: promo.Percent, Value: 10, UsageLimit: 2, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id    int64
		limit int64
	}{{created.ID, 100}, {limited.ID, 0}} {
		_, err := e.shop.UpdatePromo(ctx, md(0), tc.id, promo.Terms{Kind: promo.Percent, Value: 10, UsageLimit: tc.limit, Active: true})
		if !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("promo %d to limit %d: %v, want invalid", tc.id, tc.limit, err)
		}
	}
	if _, err := e.shop.UpdatePromo(ctx, md(0), limited.ID, promo.Terms{Kind: promo.Percent, Value: 10, UsageLimit: 5, Active: true}); err != nil {
		t.Fatalf("a limited code's limit changes: %v", err)
	}
}

// 50 shoppers race for a product with stock 5: exactly 5 orders; the stock never goes below 0.
func TestStockUnderConcurrentOrders(t *testing.T) {
	e := newShop(t)
	ctx := context.Background()
	prod := e.product(t, 5000, 5)
	const n = 50
	type shopper struct{ user, addr int64 }
	var shoppers []shopper
	for i := range n {
		u, a := e.customerWithAddress(t, i)
		if _, err := e.shop.AddToCart(ctx, md(u), commands.AddToCart{UserID: u, ProductID: prod, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
		shoppers = append(shoppers, shopper{u, a})
	}
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		placed, refused int
	)
	for _, s := range shoppers {
		wg.Go(func() {
			for {
				_, err := e.shop.PlaceOrder(ctx, md(s.user), commands.PlaceOrder{UserID: s.user, AddressID: s.addr})
				if err != nil && strings.Contains(err.Error(), "too many concurrent") {
					continue
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					placed++
				case errors.Is(err, domain.ErrConflict) && strings.Contains(err.Error(), "in stock"):
					refused++
				default:
					t.Errorf("order: %v", err)
				}
				return
			}
		})
	}
	wg.Wait()
	if placed != 5 || refused != n-5 {
		t.Fatalf("%d orders placed, %d refused; want 5 and %d", placed, refused, n-5)
	}
	var minStock int64
	if err := e.store.Pool().QueryRow(ctx, `SELECT coalesce(min((payload->>'stock')::bigint), 0) FROM events
		WHERE stream_id = $1 AND event_type IN ('ProductStockReserved', 'ProductStockReleased')`, fmt.Sprintf("product-%d", prod)).Scan(&minStock); err != nil {
		t.Fatal(err)
	}
	if minStock != 0 {
		t.Fatalf("lowest stock recorded %d, want 0", minStock)
	}
}

// One Idempotency-Key sent 20 times at once: one order, 20 identical answers.
func TestPlaceOrderIdempotencyKey(t *testing.T) {
	e := newShop(t)
	ctx := context.Background()
	prod := e.product(t, 1999, 10)
	u, a := e.customerWithAddress(t, 1)
	if _, err := e.shop.AddToCart(ctx, md(u), commands.AddToCart{UserID: u, ProductID: prod, Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	kctx := commands.WithIdempotency(ctx, commands.Idempotency{Key: "checkout-1", RequestHash: []byte("same body")})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers []commands.OrderResult
	)
	for range 20 {
		wg.Go(func() {
			res, err := e.shop.PlaceOrder(kctx, md(u), commands.PlaceOrder{UserID: u, AddressID: a})
			if err != nil {
				t.Errorf("order: %v", err)
				return
			}
			mu.Lock()
			answers = append(answers, res)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, r := range answers {
		if r != answers[0] {
			t.Fatalf("answers differ: %+v vs %+v", r, answers[0])
		}
	}
	var orders int
	if err := e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = 'OrderPlaced'`).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if orders != 1 || len(answers) != 20 {
		t.Fatalf("%d orders for %d answers, want 1 for 20", orders, len(answers))
	}
}

func TestPlaceOrderRefusals(t *testing.T) {
	e := newShop(t)
	ctx := context.Background()
	prod := e.product(t, 1000, 10)
	u, a := e.customerWithAddress(t, 1)
	other, otherAddr := e.customerWithAddress(t, 2)
	if _, err := e.shop.PlaceOrder(ctx, md(u), commands.PlaceOrder{UserID: u, AddressID: a}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("an empty cart: %v", err)
	}
	if _, err := e.shop.AddToCart(ctx, md(u), commands.AddToCart{UserID: u, ProductID: prod, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.shop.PlaceOrder(ctx, md(u), commands.PlaceOrder{UserID: u, AddressID: otherAddr}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("someone else's address: %v", err)
	}
	newPrice := domain.Money(1200)
	if _, err := e.cat.UpdateProduct(ctx, md(0), commands.UpdateProduct{ID: prod, Price: &newPrice}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.shop.PlaceOrder(ctx, md(u), commands.PlaceOrder{UserID: u, AddressID: a}); !errors.Is(err, domain.ErrPriceChanged) {
		t.Fatalf("a changed price: %v", err)
	}
	_ = other
}
