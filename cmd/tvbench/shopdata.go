package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	nethttp "net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/internal/app"
)

// What the order platform's benchmarks (checkout, cart) share: the application under test with
// customers registered through the API, each with an address and an access token, products whose
// stock never runs out, one promo code, and the calls of a checkout.

const (
	// benchPromoCode is the code every benchmark cart redeems: 10 % off, no usage limit.
	benchPromoCode = "TVBENCH10"
	// endlessStock is each product's stock: no load runs out of it.
	endlessStock = 1_000_000_000
	// addressBody is every customer's delivery address.
	addressBody = `{"city":"Berlin","post_code":"10115","country":"DE"}`
	// paymentWarning is what the API logs for an order placed with no Stripe configured.
	paymentWarning = "payment not requested with the order"
)

var (
	promoBody       = fmt.Appendf(nil, `{"code":%q}`, benchPromoCode)
	createPromoBody = fmt.Appendf(nil, `{"code":%q,"kind":"percent","discount":10,"usage_limit":0,"is_active":true}`, benchPromoCode)
)

// withCheapPasswords hashes passwords at 64 KiB and one pass, as the HTTP tests do: the shop
// benchmarks register hundreds of customers and measure no sign-in.
func withCheapPasswords(c *app.Config) { c.Passwords = auth.Params{Memory: 64, Iterations: 1} }

// shopCustomer is a customer of the application under test; mu is held by whoever drives its cart.
type shopCustomer struct {
	mu        sync.Mutex
	userID    int64
	addressID int64
	token     string
	adds      int // AddToCart calls made for it: which product the next one adds
}

// shop is the application under test readied for the order platform's loads.
type shop struct {
	app *appUnderTest
	// url is where the clients send their requests: the application's own listener, or a
	// `techvault serve` process started on the same database (serveShop).
	url       string
	client    *nethttp.Client
	customers []*shopCustomer
	products  []int64
	next      atomic.Int64
	// refused counts orders refused for contention: 409 "too many concurrent changes" once the
	// command's retries are spent (orders of one product meet on its stream; the benchmark's code has no usage limit, so its orders do not meet on the code's stream).
	refused atomic.Int64
	// unpaid counts the API's warnings that an order was placed without payment (no Stripe is
	// configured): expected, counted instead of printed.
	unpaid *atomic.Int64
}

// startShop starts the application as serve builds it (abuse limits off, cheap password hashes)
// on db and readies it: products, customers with an address, the promo code.
func startShop(ctx context.Context, env *env, db *scratchDB, customers, products, clients int, out io.Writer) (*shop, error) {
	s := &shop{client: loadClient(clients), unpaid: new(atomic.Int64)}
	quiet := *env
	quiet.log = slog.New(&droppedWarning{Handler: env.log.Handler(), msg: paymentWarning, n: s.unpaid})
	a, err := quiet.startApp(ctx, db, nil, withoutLimits, withCheapPasswords)
	if err != nil {
		return nil, err
	}
	s.app, s.url = a, a.URL
	if err := s.ready(ctx, customers, products, out); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close stops the application and the client's connections.
func (s *shop) close() {
	s.client.CloseIdleConnections()
	s.app.Close()
}

func (s *shop) ready(ctx context.Context, customers, products int, out io.Writer) error {
	t0 := time.Now()
	created, err := createProducts(ctx, s.app.Store, products, endlessStock)
	if err != nil {
		return err
	}
	for _, p := range created {
		s.products = append(s.products, p.id)
	}
	s.customers = make([]*shopCustomer, customers)
	if err := parallel(customers, 4, func(i int) error {
		c, err := s.register(ctx, i)
		s.customers[i] = c
		return err
	}); err != nil {
		return err
	}
	if err := postJSON(ctx, s.client, s.url+"/api/v1/promo-codes", benchAdminToken, createPromoBody, nethttp.StatusCreated, nil); err != nil {
		return fmt.Errorf("creating the promo code: %w", err)
	}
	if _, err := waitAllProjected(ctx, s.app, projectorNames(), 2*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(out, "   setup: %s products (stock %s each, appended directly), %s customers registered through the API with an\n",
		num(products), num(endlessStock), num(customers))
	fmt.Fprintf(out, "   address each, promo code %s (10%%, no usage limit) created through the API, all projected, in %s\n",
		benchPromoCode, time.Since(t0).Round(time.Millisecond))
	return nil
}

// register registers customer i through the API, issues its token and adds its address.
func (s *shop) register(ctx context.Context, i int) (*shopCustomer, error) {
	acc, err := registerUser(ctx, s.client, s.url, i)
	if err != nil {
		return nil, err
	}
	token, err := issueToken(acc)
	if err != nil {
		return nil, err
	}
	var addr struct {
		ID int64 `json:"id"`
	}
	if err := postJSON(ctx, s.client, s.url+"/api/v1/users/me/addresses", token, []byte(addressBody), nethttp.StatusCreated, &addr); err != nil {
		return nil, fmt.Errorf("adding customer %d's address: %w", i, err)
	}
	return &shopCustomer{userID: acc.UserID, addressID: addr.ID, token: token}, nil
}

// customer takes the next customer, round-robin, and locks it: unlock it when done.
func (s *shop) customer() *shopCustomer {
	c := s.customers[int(s.next.Add(1)-1)%len(s.customers)]
	c.mu.Lock()
	return c
}

// pick returns n distinct products at random.
func (s *shop) pick(r *rand.Rand, n int) []int64 {
	out := make([]int64, 0, n)
	for _, i := range r.Perm(len(s.products))[:min(n, len(s.products))] {
		out = append(out, s.products[i])
	}
	return out
}

// addToCart is POST /api/v1/cart/items: one of the product, for customer c.
func (s *shop) addToCart(ctx context.Context, c *shopCustomer, productID int64) error {
	body := fmt.Appendf(nil, `{"product_id":%d,"quantity":1}`, productID)
	if err := postJSON(ctx, s.client, s.url+"/api/v1/cart/items", c.token, body, nethttp.StatusCreated, nil); err != nil {
		return fmt.Errorf("AddToCart: %w", err)
	}
	return nil
}

// redeemPromo is POST /api/v1/cart/promo with the benchmark's code.
func (s *shop) redeemPromo(ctx context.Context, c *shopCustomer) error {
	if err := postJSON(ctx, s.client, s.url+"/api/v1/cart/promo", c.token, promoBody, nethttp.StatusOK, nil); err != nil {
		return fmt.Errorf("RedeemPromo: %w", err)
	}
	return nil
}

// placeOrder is POST /api/v1/orders to the customer's address.
func (s *shop) placeOrder(ctx context.Context, c *shopCustomer) error {
	body := fmt.Appendf(nil, `{"address_id":%d}`, c.addressID)
	if err := postJSON(ctx, s.client, s.url+"/api/v1/orders", c.token, body, nethttp.StatusCreated, nil); err != nil {
		return fmt.Errorf("PlaceOrder: %w", err)
	}
	return nil
}

// checkoutOp is a whole checkout through HTTP for the next customer: two products added to its
// cart, the promo code redeemed (unless promo is false), the order placed.
func (s *shop) checkoutOp(promo bool) func(context.Context, *rand.Rand) error {
	return func(ctx context.Context, r *rand.Rand) error {
		c := s.customer()
		defer c.mu.Unlock()
		for _, id := range s.pick(r, 2) {
			if err := s.addToCart(ctx, c, id); err != nil {
				return err
			}
		}
		if promo {
			if err := s.redeemPromo(ctx, c); err != nil {
				return err
			}
		}
		_, err := s.refusal(ctx, c, s.placeOrder(ctx, c))
		return err
	}
}

// refusal reports whether err refused an order for contention (409 "too many concurrent
// changes", the command's retries spent): it counts it and empties the customer's cart for its
// next order. Any other error is returned.
func (s *shop) refusal(ctx context.Context, c *shopCustomer, err error) (bool, error) {
	var se *statusError
	if err == nil || !errors.As(err, &se) || se.status != nethttp.StatusConflict || !strings.Contains(se.body, "concurrent changes") {
		return false, err
	}
	s.refused.Add(1)
	if err := s.clearCart(ctx, c); err != nil {
		return true, fmt.Errorf("after a refused order: %w", err)
	}
	return true, nil
}

// clearCart is DELETE /api/v1/cart.
func (s *shop) clearCart(ctx context.Context, c *shopCustomer) error {
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodDelete, s.url+"/api/v1/cart", nil)
	if err != nil {
		return err
	}
	if _, _, err := do(s.client, req, c.token, nethttp.StatusOK); err != nil {
		return fmt.Errorf("DELETE /cart: %w", err)
	}
	return nil
}

// fillCart readies c's cart for an order through HTTP (not measured): emptied, then lines
// products at quantity 1 and the promo code. Through the API, not the commands, so that the
// process serving the measured requests knows the carts it decides on.
func (s *shop) fillCart(ctx context.Context, c *shopCustomer, lines int, r *rand.Rand) error {
	if err := s.clearCart(ctx, c); err != nil {
		return err
	}
	for _, id := range s.pick(r, lines) {
		if err := s.addToCart(ctx, c, id); err != nil {
			return err
		}
	}
	return s.redeemPromo(ctx, c)
}

// droppedWarning is a slog handler that counts the records of one message instead of passing
// them on (a warning the benchmark expects on every request).
type droppedWarning struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (d *droppedWarning) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == d.msg {
		d.n.Add(1)
		return nil
	}
	return d.Handler.Handle(ctx, r)
}

func (d *droppedWarning) WithAttrs(as []slog.Attr) slog.Handler {
	return &droppedWarning{Handler: d.Handler.WithAttrs(as), msg: d.msg, n: d.n}
}

func (d *droppedWarning) WithGroup(name string) slog.Handler {
	return &droppedWarning{Handler: d.Handler.WithGroup(name), msg: d.msg, n: d.n}
}
