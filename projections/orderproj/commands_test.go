package orderproj_test

import (
	"context"
	"strings"
	"testing"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/pii"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/orderproj"
	"github.com/techvault/techvault/queries"
)

// The order commands' events, end to end: a customer fills a cart, redeems a code, orders, and
// cancels; the read model and its queries follow, and a rebuild builds the same tables.
func TestCommandsEndToEnd(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := context.Background()
	vault, err := pii.New(e.Pool, []byte(strings.Repeat("l", 32)))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(auth.Params{Memory: 64, Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids := e.Store.Sequences(map[string]string{commands.UserIDs: "user_ids", commands.EmailIDs: "email_ids",
		commands.PhoneIDs: "phone_ids", commands.AddressIDs: "address_ids", commands.OrderIDs: "order_ids",
		commands.PromoIDs: "promo_ids", commands.ProductIDs: "product_ids", commands.CategoryIDs: "category_ids"})
	users := commands.NewUsers(e.Store, e.Store, ids, vault, pw)
	shop := commands.NewShop(e.Store, ids, nil, nil)
	q := queries.NewOrderQueries(e.Pool, nil)
	projtest.StartEngineWith(t, e, append(catalogproj.Projectors(), orderproj.Projectors()...), 10)
	md := domain.Metadata{ActorID: "test"}

	acct, err := users.Register(ctx, md, commands.Register{FirstName: "Ana", LastName: "Tester", Email: "ana@example.com", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := users.SaveAddress(ctx, md, commands.SaveAddress{UserID: acct.UserID, Address: user.Address{City: "Porto", PostCode: "4000", Country: "PT"}})
	if err != nil {
		t.Fatal(err)
	}
	prod := product(t, e, "gpu", 50000, 3)
	if _, err := shop.CreatePromo(ctx, md, commands.CreatePromo{Code: "half", Terms: promo.Terms{Kind: promo.Percent, Value: 50, Active: true}}); err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(shop.AddToCart(ctx, md, commands.AddToCart{UserID: acct.UserID, ProductID: prod, Quantity: 1}))
	must(shop.AddToCart(ctx, md, commands.AddToCart{UserID: acct.UserID, ProductID: prod, Quantity: 1}))
	must(shop.RedeemPromo(ctx, md, acct.UserID, "HALF"))
	projtest.WaitCaughtUp(t, e, append(names, catalogproj.ProductsProjector)...) // the cart reads product names
	c, err := q.Cart(ctx, acct.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Lines) != 1 || c.Lines[0].Quantity != 2 || c.Subtotal != 100000 || c.Discount != 50000 || c.PromoCode != "HALF" {
		t.Fatalf("cart %+v", c)
	}

	o, err := shop.PlaceOrder(ctx, md, commands.PlaceOrder{UserID: acct.UserID, AddressID: addr.ID})
	if err != nil {
		t.Fatal(err)
	}
	must(shop.CancelOrder(ctx, md, commands.OrderRef{UserID: acct.UserID, OrderID: o.OrderID}, "changed my mind"))
	projtest.WaitCaughtUp(t, e, append(names, catalogproj.ProductsProjector)...) // the cart reads product names

	if c, err = q.Cart(ctx, acct.UserID); err != nil || len(c.Lines) != 0 || c.PromoCode != "" {
		t.Fatalf("cart after checkout %+v, %v", c, err)
	}
	v, err := q.Order(ctx, o.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != order.Cancelled || v.Total != 50000 || v.Discount != 50000 || v.PromoCode != "HALF" || v.Address.City != "Porto" ||
		len(v.Lines) != 1 || v.Lines[0].Name != "gpu" || len(v.History) != 2 || v.History[1].Status != order.Cancelled {
		t.Fatalf("order %+v", v)
	}
	page, err := q.PromoCodes(ctx, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].UsageCount != 0 || page.Items[0].Code != "HALF" {
		t.Fatalf("promo codes %+v (the cancelled order gives its use back)", page.Items)
	}

	live := snapshot(t, e)
	for _, p := range orderproj.Projectors() {
		projtest.Rebuild(t, e, p)
	}
	requireSame(t, "rebuild vs live", live, snapshot(t, e))
}
