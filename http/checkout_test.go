package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledongthuc/pdf"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/mailpittest"
	"github.com/techvault/techvault/internal/stripetest"
	"github.com/techvault/techvault/mail"
	"github.com/techvault/techvault/payments"
)

// stripeConfig points the payments at a stripe-mock, with stripetest's webhook secret.
func stripeConfig(m *stripetest.Mock) payments.Config {
	return payments.Config{SecretKey: stripetest.SecretKey, WebhookSecret: stripetest.WebhookSecret, APIBase: m.URL()}
}

// placedOrder is the answer of POST /orders.
type placedOrder struct {
	Order struct {
		ID       int64        `json:"id"`
		UserID   int64        `json:"user_id"`
		Status   string       `json:"status"`
		Subtotal domain.Money `json:"subtotal"`
		Discount domain.Money `json:"discount"`
		Total    domain.Money `json:"total"`
		Currency string       `json:"currency"`
	} `json:"order"`
	Payment *struct {
		OrderID      int64        `json:"order_id"`
		IntentID     string       `json:"payment_intent_id"`
		ClientSecret string       `json:"client_secret"`
		Amount       domain.Money `json:"amount"`
		Currency     string       `json:"currency"`
	} `json:"payment"`
	PaymentError string `json:"payment_error"`
	Position     int64  `json:"position"`
}

// cartView is the answer of GET /cart.
type cartLine struct {
	ProductID    int64        `json:"product_id"`
	Name         string       `json:"name"`
	Quantity     int64        `json:"quantity"`
	UnitPrice    domain.Money `json:"unit_price"`
	CurrentPrice domain.Money `json:"current_price"`
	PriceChanged bool         `json:"price_changed"`
	LineTotal    domain.Money `json:"line_total"`
}

type cartView struct {
	Lines     []cartLine   `json:"lines"`
	Subtotal  domain.Money `json:"subtotal"`
	Discount  domain.Money `json:"discount"`
	Total     domain.Money `json:"total"`
	Currency  string       `json:"currency"`
	PromoCode string       `json:"promo_code"`
}

// orderView is the answer of GET /orders/{id}.
type orderView struct {
	ID       int64        `json:"id"`
	UserID   int64        `json:"user_id"`
	Status   string       `json:"status"`
	Subtotal domain.Money `json:"subtotal"`
	Discount domain.Money `json:"discount"`
	Total    domain.Money `json:"total"`
	PaidAt   *time.Time   `json:"paid_at"`
	Lines    []struct {
		ProductID int64        `json:"product_id"`
		Name      string       `json:"name"`
		Quantity  int64        `json:"quantity"`
		UnitPrice domain.Money `json:"unit_price"`
		Total     domain.Money `json:"total"`
	} `json:"lines"`
	History []struct {
		Status string `json:"status"`
	} `json:"history"`
}

// note is a notification as GET /notifications lists it.
type note struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (o orderView) statuses() []string {
	out := make([]string, 0, len(o.History))
	for _, h := range o.History {
		out = append(out, h.Status)
	}
	return out
}

// payByWebhook delivers Stripe's signed word that the order's intent was paid (amount in cents,
// USD) and returns the position the webhook answered with.
func payByWebhook(t *testing.T, h *harness, orderID int64, intent string, cents int64) int64 {
	t.Helper()
	body, sig := stripetest.Webhook(t, stripetest.WebhookSecret, stripetest.IntentSucceeded, intent, orderID, cents, "usd")
	r := postWebhook(t, h, body, sig)
	if r.status != 200 {
		t.Fatalf("webhook paying order %d: %d %s", orderID, r.status, r.body)
	}
	var res struct {
		Status   string `json:"status"`
		Position int64  `json:"position"`
	}
	r.json(t, &res)
	if res.Status != order.Paid {
		t.Fatalf("webhook paying order %d: %s", orderID, r.body)
	}
	return res.Position
}

func postWebhook(t *testing.T, h *harness, body []byte, sig string) response {
	t.Helper()
	return h.with(t).do("POST", "/api/v1/webhooks/stripe", string(body), payments.SignatureHeader, sig)
}

// rawPost posts a JSON body with a bearer token and returns the status (0 when the request
// failed); it is safe to call from any goroutine.
func rawPost(url, token, body string) int {
	req, err := nethttp.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode
}

// with is the harness reporting to t (a subtest's).
func (h *harness) with(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// shop is a running store with Stripe (stripe-mock), mail (mailpit) and a catalog of two products.
type shop struct {
	h        *harness
	mail     *mailpittest.Server
	gpu, ssd product
	n        int // numbers fresh emails and products
}

func newShop(t *testing.T) *shop {
	t.Helper()
	mp := mailpittest.Start(t)
	mock := stripetest.StartMock(t)
	h := newHarness(t, harnessOpts{limits: generousLimits(), configure: func(c *app.Config) {
		c.SMTP = mail.Config{Host: mp.SMTPHost(), Port: mp.SMTPPort(), From: "Tech Vault <no-reply@techvault.test>"}
		c.Stripe = stripeConfig(mock)
	}})
	s := &shop{h: h, mail: mp}
	s.gpu = s.product(t, "RTX 4070 SUPER", "599.99", 50)
	s.ssd = s.product(t, "990 PRO 2TB", "169.99", 50)
	return s
}

// product is a product an admin creates.
func (s *shop) product(t *testing.T, name, price string, stock int) product {
	t.Helper()
	var p product
	s.h.with(t).admin("POST", "/api/v1/products", fmt.Sprintf(`{"name":%q,"price":%q,"stock":%d}`, name, price, stock), 201).json(t, &p)
	return p
}

// promoCode is a promo code an admin creates (body: POST /promo-codes's).
func (s *shop) promoCode(t *testing.T, body string) matrixPromo {
	t.Helper()
	var p matrixPromo
	s.h.with(t).admin("POST", "/api/v1/promo-codes", body, 201).json(t, &p)
	return p
}

// shopper registers and signs in a customer, who adds an address; it returns the customer, the
// address's id and the email.
func (s *shop) shopper(t *testing.T) (*customer, int64, string) {
	t.Helper()
	s.n++
	email := fmt.Sprintf("shopper%d@example.com", s.n)
	c := &customer{h: s.h.with(t)}
	c.call("POST", "/api/v1/auth/register", registerBody(email), 201)
	c.signIn(email, matrixPassword)
	var addr accountResult
	c.call("POST", "/api/v1/users/me/addresses", `{"city":"London","post_code":"W1 2AB","country":"GB"}`, 201).json(t, &addr)
	c.lastPosition = max(c.lastPosition, c.h.head())
	return c, addr.ID, email
}

// add puts quantity of product into c's cart.
func add(c *customer, productID, quantity int64) {
	c.h.t.Helper()
	c.call("POST", "/api/v1/cart/items", fmt.Sprintf(`{"product_id":%d,"quantity":%d}`, productID, quantity), 201)
}

// placeOrder places c's cart as an order delivered to addr; a payment must come with it.
func placeOrder(c *customer, addr int64) placedOrder {
	c.h.t.Helper()
	var p placedOrder
	c.call("POST", "/api/v1/orders", fmt.Sprintf(`{"address_id":%d}`, addr), 201).json(c.h.t, &p)
	if p.Payment == nil || p.Payment.ClientSecret == "" || !strings.HasPrefix(p.Payment.IntentID, "pi_") {
		c.h.t.Fatalf("order %d came without a usable payment (%s)", p.Order.ID, p.PaymentError)
	}
	return p
}

func (c *customer) order(id int64) orderView {
	c.h.t.Helper()
	var o orderView
	c.call("GET", fmt.Sprintf("/api/v1/orders/%d", id), "", 200).json(c.h.t, &o)
	return o
}

func (c *customer) cart() cartView {
	c.h.t.Helper()
	var v cartView
	c.call("GET", "/api/v1/cart", "", 200).json(c.h.t, &v)
	return v
}

// errorOf is the error body of a refusal.
func errorOf(t *testing.T, r response) errorBody {
	t.Helper()
	var b errorBody
	r.json(t, &b)
	return b
}

// pdfText is the text of a PDF's pages, one text object a line.
func pdfText(t *testing.T, b []byte) []string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %.40q", b)
	}
	r, err := pdf.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("reading the PDF: %v", err)
	}
	var out []string
	for i := 1; i <= r.NumPage(); i++ {
		text, err := r.Page(i).GetPlainText(nil)
		if err != nil {
			t.Fatalf("reading page %d: %v", i, err)
		}
		for l := range strings.SplitSeq(text, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func money(t *testing.T, s string) domain.Money {
	t.Helper()
	m, err := domain.ParseMoney(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCheckout is issue 13's "done when", through HTTP, with mailpit and stripe-mock: an admin
// stocks the shop and makes a code; a customer fills a cart, applies the code, orders, Stripe's
// webhook pays the order, the confirmation mail and the notification arrive, the invoice reads
// back, and an admin ships and delivers it (another order is refunded). Then the ways it must
// refuse: forged, repeated and wrong webhooks, a changed price, bad quantities, someone else's
// address or order, an empty cart, unusable codes and a second code.
func TestCheckout(t *testing.T) {
	s := newShop(t)

	t.Run("journey", func(t *testing.T) {
		h := s.h.with(t)
		welcome := s.promoCode(t, `{"code":"WELCOME10","kind":"percent","discount":10}`)
		ada, addr, email := s.shopper(t)
		ada.lastPosition = max(ada.lastPosition, welcome.Position)

		add(ada, s.gpu.ID, 1)
		add(ada, s.ssd.ID, 2)
		ada.call("POST", "/api/v1/cart/promo", `{"code":"welcome10"}`, 200) // codes are case-insensitive
		cart := ada.cart()
		// 599.99 + 2 × 169.99 = 939.97; 10% of it is 93.997, rounded half up to 94.00.
		if len(cart.Lines) != 2 || cart.Lines[0].Name != "RTX 4070 SUPER" || cart.Lines[1].Quantity != 2 ||
			cart.Lines[1].LineTotal != money(t, "339.98") || cart.Subtotal != money(t, "939.97") ||
			cart.Discount != money(t, "94.00") || cart.Total != money(t, "845.97") || cart.PromoCode != "WELCOME10" || cart.Currency != "USD" {
			t.Fatalf("cart: %+v", cart)
		}

		placed := placeOrder(ada, addr)
		id := placed.Order.ID
		if placed.Order.Status != order.PendingPayment || placed.Order.Total != cart.Total || placed.Order.Discount != cart.Discount ||
			placed.Payment.Amount != cart.Total || placed.Payment.OrderID != id {
			t.Fatalf("placed: %+v, payment %+v", placed.Order, *placed.Payment)
		}
		if got := ada.cart(); len(got.Lines) != 0 || got.PromoCode != "" {
			t.Fatalf("the cart after checkout: %+v", got)
		}
		ada.call("GET", fmt.Sprintf("/api/v1/orders/%d/invoice", id), "", 409) // not paid yet: no invoice
		var stock product
		h.read(fmt.Sprintf("/api/v1/products/%d", s.ssd.ID), placed.Position).json(t, &stock)
		if stock.Stock != 48 {
			t.Fatalf("ssd stock after ordering 2 of 50: %d", stock.Stock)
		}

		// Stripe reports the payment: the order is paid, mailed about, notified and invoiced.
		ada.lastPosition = max(ada.lastPosition, payByWebhook(t, h, id, placed.Payment.IntentID, placed.Order.Total.Cents()))
		o := ada.order(id)
		if o.Status != order.Paid || o.PaidAt == nil || len(o.Lines) != 2 || o.Total != cart.Total ||
			!slices.Equal(o.statuses(), []string{order.PendingPayment, order.Paid}) {
			t.Fatalf("order after payment: %+v", o)
		}
		m := waitForMail(t, s.mail, email, fmt.Sprintf("order #%d is paid", id))
		for _, want := range []string{"RTX 4070 SUPER", "990 PRO 2TB", "WELCOME10", "845.97 USD"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("the confirmation mail lacks %q:\n%s", want, m.Text)
			}
		}
		var notes page[note]
		ada.call("GET", "/api/v1/notifications", "", 200).json(t, &notes)
		if !slices.ContainsFunc(notes.Items, func(n note) bool {
			return n.Kind == "order_paid" && strings.Contains(n.Message, fmt.Sprintf("#%d", id))
		}) {
			t.Fatalf("no order_paid notification: %+v", notes.Items)
		}
		inv := ada.call("GET", fmt.Sprintf("/api/v1/orders/%d/invoice", id), "", 200)
		if ct := inv.header.Get("Content-Type"); ct != "application/pdf" {
			t.Fatalf("invoice Content-Type %q", ct)
		}
		text := pdfText(t, inv.body)
		for _, want := range []string{fmt.Sprintf("TV-%06d", id), fmt.Sprintf("#%d", id), "RTX 4070 SUPER", "990 PRO 2TB",
			"339.98 USD", "939.97 USD", "Discount (WELCOME10)", "-94.00 USD", "845.97 USD", "paid"} {
			if !slices.Contains(text, want) {
				t.Errorf("the invoice lacks %q:\n%s", want, strings.Join(text, "\n"))
			}
		}

		// An admin ships and delivers it.
		var step struct {
			Status   string `json:"status"`
			Position int64  `json:"position"`
		}
		h.admin("POST", fmt.Sprintf("/api/v1/orders/%d/ship", id), "", 200)
		h.admin("POST", fmt.Sprintf("/api/v1/orders/%d/deliver", id), "", 200).json(t, &step)
		ada.lastPosition = max(ada.lastPosition, step.Position)
		if o := ada.order(id); o.Status != order.Delivered ||
			!slices.Equal(o.statuses(), []string{order.PendingPayment, order.Paid, order.Shipped, order.Delivered}) {
			t.Fatalf("order after delivery: %+v", o)
		}
		h.admin("POST", fmt.Sprintf("/api/v1/orders/%d/ship", id), "", 409) // no way back

		// Another order is paid, then refunded through Stripe.
		add(ada, s.gpu.ID, 1)
		second := placeOrder(ada, addr)
		if second.Order.Discount != 0 {
			t.Fatalf("the code was used by the first order; the second has discount %s", second.Order.Discount)
		}
		payByWebhook(t, h, second.Order.ID, second.Payment.IntentID, second.Order.Total.Cents())
		var held product
		h.read(fmt.Sprintf("/api/v1/products/%d", s.gpu.ID), second.Position).json(t, &held)
		h.admin("POST", fmt.Sprintf("/api/v1/orders/%d/refund", second.Order.ID), "", 200).json(t, &step)
		ada.lastPosition = max(ada.lastPosition, step.Position)
		if o := ada.order(second.Order.ID); o.Status != order.Refunded {
			t.Fatalf("refunded order: %+v", o)
		}
		// It never shipped: its stock is back on sale.
		var back product
		h.read(fmt.Sprintf("/api/v1/products/%d", s.gpu.ID), step.Position).json(t, &back)
		if back.Stock != held.Stock+1 {
			t.Fatalf("gpu stock %d after refunding an unshipped order of 1, was %d", back.Stock, held.Stock)
		}
		var mine page[orderView]
		ada.call("GET", "/api/v1/orders", "", 200).json(t, &mine)
		if len(mine.Items) != 2 {
			t.Fatalf("GET /orders: %+v", mine.Items)
		}
	})

	t.Run("an order its code covers whole is paid as placed", func(t *testing.T) {
		h := s.h.with(t)
		free := s.promoCode(t, `{"code":"ONTHEHOUSE","kind":"percent","discount":100}`)
		c, addr, email := s.shopper(t)
		c.lastPosition = max(c.lastPosition, free.Position)
		add(c, s.ssd.ID, 1)
		c.call("POST", "/api/v1/cart/promo", `{"code":"ONTHEHOUSE"}`, 200)
		var p placedOrder
		c.call("POST", "/api/v1/orders", fmt.Sprintf(`{"address_id":%d}`, addr), 201).json(t, &p)
		if p.Order.Status != order.Paid || p.Order.Total != 0 || p.Payment != nil || p.PaymentError != "" {
			t.Fatalf("a free order: %+v, payment %v, payment error %q", p.Order, p.Payment, p.PaymentError)
		}
		c.lastPosition = max(c.lastPosition, p.Position)
		if o := c.order(p.Order.ID); o.Status != order.Paid || !slices.Equal(o.statuses(), []string{order.PendingPayment, order.Paid}) {
			t.Fatalf("the free order: %+v", o)
		}
		waitForMail(t, s.mail, email, fmt.Sprintf("order #%d is paid", p.Order.ID))
		c.call("POST", fmt.Sprintf("/api/v1/orders/%d/payment", p.Order.ID), "", 409) // nothing to pay
		var step struct {
			Status string `json:"status"`
		}
		h.admin("POST", fmt.Sprintf("/api/v1/orders/%d/refund", p.Order.ID), "", 200).json(t, &step) // nothing to ask of Stripe
		if step.Status != order.Refunded {
			t.Fatalf("refunding the free order: %+v", step)
		}
	})

	t.Run("an order placed with an Idempotency-Key records its payment", func(t *testing.T) {
		h := s.h.with(t)
		c, addr, _ := s.shopper(t)
		add(c, s.gpu.ID, 1)
		body := fmt.Sprintf(`{"address_id":%d}`, addr)
		headers := []string{"Authorization", "Bearer " + c.access, "Idempotency-Key", "checkout-1"}
		first := h.do("POST", "/api/v1/orders", body, headers...)
		if first.status != 201 {
			t.Fatalf("POST /orders: %d %s", first.status, first.body)
		}
		var p placedOrder
		first.json(t, &p)
		if p.Payment == nil {
			t.Fatalf("no payment: %s", first.body)
		}
		before := h.head()
		again := h.do("POST", "/api/v1/orders", body, headers...)
		var q placedOrder
		again.json(t, &q)
		if again.status != 201 || q.Order.ID != p.Order.ID || q.Payment == nil || q.Payment.IntentID != p.Payment.IntentID {
			t.Fatalf("the repeat: %d %s; first %s", again.status, again.body, first.body)
		}
		if !bytes.Equal(again.body, first.body) {
			t.Fatalf("the repeat answered\n%s\nthe first\n%s", again.body, first.body)
		}
		if after := h.head(); after != before {
			t.Fatalf("the repeat grew the log from %d to %d", before, after)
		}
		events, err := h.store.Load(context.Background(), order.StreamID(p.Order.ID))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(events, func(e eventstore.Event) bool { return e.Type == (order.PaymentRequested{}).EventType() }) {
			t.Fatalf("the order's stream has no %s: its intent is not recorded", (order.PaymentRequested{}).EventType())
		}
		// Recorded, the intent can be refunded.
		payByWebhook(t, h, p.Order.ID, p.Payment.IntentID, p.Order.Total.Cents())
		h.admin("POST", fmt.Sprintf("/api/v1/orders/%d/refund", p.Order.ID), "", 200)
	})

	t.Run("expiring codes with an Idempotency-Key expires them all", func(t *testing.T) {
		h := s.h.with(t)
		past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		var codes []matrixPromo
		for _, code := range []string{"LAPSED1", "LAPSED2", "LAPSED3"} {
			codes = append(codes, s.promoCode(t, fmt.Sprintf(`{"code":%q,"kind":"percent","discount":5,"expiration_date":%q}`, code, past)))
		}
		// The codes must be in the read model, which proposes them.
		if r := h.do("GET", "/api/v1/promo-codes", "", "Authorization", "Bearer "+adminToken,
			"X-Min-Position", strconv.FormatInt(codes[2].Position, 10)); r.header.Get("X-Min-Position-Reached") != "true" {
			t.Fatalf("GET /promo-codes: %d %s", r.status, r.body)
		}
		r := h.do("DELETE", "/api/v1/promo-codes/expired", "", "Authorization", "Bearer "+adminToken, "Idempotency-Key", "expire-1")
		var expired struct {
			Deactivated int   `json:"deactivated"`
			Position    int64 `json:"position"`
		}
		if r.status != 200 {
			t.Fatalf("DELETE /promo-codes/expired: %d %s", r.status, r.body)
		}
		r.json(t, &expired)
		// Its position reads the codes as it left them.
		head := expired.Position
		if expired.Deactivated < len(codes) || head <= codes[len(codes)-1].Position {
			t.Fatalf("DELETE /promo-codes/expired: %s, after codes created up to %d", r.body, codes[len(codes)-1].Position)
		}
		for _, p := range codes {
			var got struct {
				Active bool `json:"is_active"`
			}
			h.do("GET", fmt.Sprintf("/api/v1/promo-codes/%d", p.ID), "", "Authorization", "Bearer "+adminToken,
				"X-Min-Position", strconv.FormatInt(head, 10)).json(t, &got)
			if got.Active {
				t.Errorf("code %s is still active after DELETE /promo-codes/expired", p.Code)
			}
		}
	})

	t.Run("cancelling gives the stock and the code's use back", func(t *testing.T) {
		s.n++
		last := s.product(t, fmt.Sprintf("Last unit %d", s.n), "80.00", 1)
		once := s.promoCode(t, `{"code":"SOLO1","kind":"amount","discount":1000,"usage_limit":1}`)
		ada, adaAddr, _ := s.shopper(t)
		bob, bobAddr, _ := s.shopper(t)
		ada.lastPosition = max(ada.lastPosition, once.Position)
		bob.lastPosition = ada.lastPosition
		add(ada, last.ID, 1)
		ada.call("POST", "/api/v1/cart/promo", `{"code":"SOLO1"}`, 200)
		p := placeOrder(ada, adaAddr)
		if p.Order.Total != money(t, "70.00") {
			t.Fatalf("order: %+v", p.Order)
		}
		bob.call("POST", "/api/v1/cart/items", fmt.Sprintf(`{"product_id":%d,"quantity":1}`, last.ID), 409) // none left
		bob.call("POST", "/api/v1/cart/promo", `{"code":"SOLO1"}`, 422)                                     // used up

		ada.call("POST", fmt.Sprintf("/api/v1/orders/%d/cancel", p.Order.ID), "", 200)
		ada.call("POST", fmt.Sprintf("/api/v1/orders/%d/cancel", p.Order.ID), "", 409)
		ada.call("POST", fmt.Sprintf("/api/v1/orders/%d/payment", p.Order.ID), "", 409) // nothing to pay
		if o := ada.order(p.Order.ID); o.Status != order.Cancelled {
			t.Fatalf("cancelled order: %+v", o)
		}
		add(bob, last.ID, 1)
		bob.call("POST", "/api/v1/cart/promo", `{"code":"SOLO1"}`, 200)
		if q := placeOrder(bob, bobAddr); q.Order.Total != money(t, "70.00") {
			t.Fatalf("bob's order: %+v", q.Order)
		}
	})

	t.Run("concurrent orders take the last unit and a single-use code once", func(t *testing.T) {
		h := s.h.with(t)
		s.n++
		last := s.product(t, fmt.Sprintf("Last unit %d", s.n), "25.00", 1)
		once := s.promoCode(t, `{"code":"RACE1","kind":"percent","discount":50,"usage_limit":1}`)
		race := func(fill func(c *customer)) []int {
			t.Helper()
			type shopper struct {
				c    *customer
				addr int64
			}
			var all []shopper
			for range 4 {
				c, addr, _ := s.shopper(t)
				c.lastPosition = max(c.lastPosition, once.Position)
				fill(c)
				all = append(all, shopper{c, addr})
			}
			statuses := make([]int, len(all))
			var wg sync.WaitGroup
			for i, sh := range all {
				wg.Go(func() {
					statuses[i] = rawPost(h.srv.URL+"/api/v1/orders", sh.c.access, fmt.Sprintf(`{"address_id":%d}`, sh.addr))
				})
			}
			wg.Wait()
			slices.Sort(statuses)
			return statuses
		}
		if got := race(func(c *customer) { add(c, last.ID, 1) }); !slices.Equal(got, []int{201, 409, 409, 409}) {
			t.Errorf("four orders of the last unit: %v, want one 201 and three 409", got)
		}
		var p product
		h.read(fmt.Sprintf("/api/v1/products/%d", last.ID), h.head()).json(t, &p)
		if p.Stock != 0 {
			t.Errorf("stock after the race: %d", p.Stock)
		}
		got := race(func(c *customer) {
			add(c, s.ssd.ID, 1)
			c.call("POST", "/api/v1/cart/promo", `{"code":"RACE1"}`, 200)
		})
		if !slices.Equal(got, []int{201, 422, 422, 422}) {
			t.Errorf("four orders with a single-use code: %v, want one 201 and three 422", got)
		}
		var code struct {
			UsageCount int64 `json:"usage_count"`
		}
		h.do("GET", fmt.Sprintf("/api/v1/promo-codes/%d", once.ID), "", "Authorization", "Bearer "+adminToken,
			"X-Min-Position", strconv.FormatInt(h.head(), 10)).json(t, &code)
		if code.UsageCount != 1 {
			t.Errorf("the single-use code was used %d times", code.UsageCount)
		}
	})

	t.Run("forged webhook", func(t *testing.T) {
		h := s.h.with(t)
		c, addr, _ := s.shopper(t)
		add(c, s.gpu.ID, 1)
		p := placeOrder(c, addr)
		event := stripetest.Event(stripetest.IntentSucceeded, p.Payment.IntentID, p.Order.ID, p.Order.Total.Cents(), "usd")
		body, good := stripetest.SignedWebhook(stripetest.WebhookSecret, event)
		_, forged := stripetest.SignedWebhook("whsec_someone_else", event)
		_, stale := stripetest.SignedWebhookAt(stripetest.WebhookSecret, event, time.Now().Add(-time.Hour))
		tampered := bytes.Replace(body, []byte(`"amount":`), []byte(`"amount":1`), 1)
		for _, tc := range []struct {
			name string
			body []byte
			sig  string
		}{
			{"another secret", body, forged},
			{"no signature", body, ""},
			{"an hour old", body, stale},
			{"body changed after signing", tampered, good},
		} {
			before := h.head()
			if r := postWebhook(t, h, tc.body, tc.sig); r.status != 400 || errorOf(t, r).Error.Field != payments.SignatureHeader {
				t.Errorf("%s: %d %s, want 400", tc.name, r.status, r.body)
			}
			if after := h.head(); after != before {
				t.Errorf("%s: the log grew from %d to %d", tc.name, before, after)
			}
		}
		if o := c.order(p.Order.ID); o.Status != order.PendingPayment {
			t.Fatalf("order after forged webhooks: %s", o.Status)
		}
	})

	t.Run("a refund made in Stripe's dashboard refunds the order; a partial one is left to an admin", func(t *testing.T) {
		h := s.h.with(t)
		// metaOrderID is the order id in the charge's metadata: 0 for a charge Stripe did not copy
		// the intent's metadata to, whose order is found by its intent.
		refunded := func(c *customer, p placedOrder, cents, metaOrderID int64) response {
			t.Helper()
			body, sig := stripetest.Webhook(t, stripetest.WebhookSecret, stripetest.ChargeRefunded, p.Payment.IntentID, metaOrderID, cents, "usd")
			r := postWebhook(t, h, body, sig)
			if r.status != 200 {
				t.Fatalf("charge.refunded: %d %s", r.status, r.body)
			}
			again := postWebhook(t, h, body, sig) // redelivered: answered, nothing more
			if again.status != 200 {
				t.Fatalf("charge.refunded again: %d %s", again.status, again.body)
			}
			c.lastPosition = max(c.lastPosition, h.head())
			return r
		}
		c, addr, _ := s.shopper(t)
		add(c, s.ssd.ID, 1)
		whole := placeOrder(c, addr)
		// Stripe's words without the order's id (no metadata): the order is found by its intent.
		c.lastPosition = max(c.lastPosition, payByWebhook(t, h, 0, whole.Payment.IntentID, whole.Order.Total.Cents()))
		before := h.head()
		refunded(c, whole, whole.Order.Total.Cents(), 0)
		if o := c.order(whole.Order.ID); o.Status != order.Refunded || h.head() != before+2 {
			t.Fatalf("after a full refund in the dashboard: %+v (log %d -> %d: want one OrderRefunded and, as it never shipped, one ProductStockReleased)",
				o, before, h.head())
		}
		add(c, s.ssd.ID, 1)
		part := placeOrder(c, addr)
		c.lastPosition = max(c.lastPosition, payByWebhook(t, h, part.Order.ID, part.Payment.IntentID, part.Order.Total.Cents()))
		before = h.head()
		refunded(c, part, 100, part.Order.ID)
		if o := c.order(part.Order.ID); o.Status != order.Paid || h.head() != before+1 {
			t.Fatalf("after a partial refund in the dashboard: %+v (log %d -> %d: want one StripeEventIgnored)", o, before, h.head())
		}
	})

	t.Run("one Idempotency-Key sent 8 times at once: one order, one intent", func(t *testing.T) {
		h := s.h.with(t)
		c, addr, _ := s.shopper(t)
		add(c, s.gpu.ID, 1)
		body := fmt.Sprintf(`{"address_id":%d}`, addr)
		answers := make([]placedOrder, 8)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() {
				req, _ := nethttp.NewRequest("POST", h.srv.URL+"/api/v1/orders", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+c.access)
				req.Header.Set("Idempotency-Key", "at-once")
				res, err := nethttp.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer res.Body.Close()
				_ = json.NewDecoder(res.Body).Decode(&answers[i])
			})
		}
		wg.Wait()
		for i, a := range answers {
			if a.Order.ID == 0 || a.Order.ID != answers[0].Order.ID || a.Payment == nil || a.Payment.IntentID != answers[0].Payment.IntentID {
				t.Fatalf("answer %d: order %d, payment %+v; answer 0: order %d, payment %+v", i, a.Order.ID, a.Payment, answers[0].Order.ID, answers[0].Payment)
			}
		}
		evs, err := h.store.Load(context.Background(), order.StreamID(answers[0].Order.ID))
		if err != nil {
			t.Fatal(err)
		}
		requested := 0
		for _, e := range evs {
			if e.Type == (order.PaymentRequested{}).EventType() {
				requested++
			}
		}
		if requested != 1 {
			t.Fatalf("%d payment requests recorded for one order, want 1", requested)
		}
	})

	t.Run("the same webhook five times at once pays once", func(t *testing.T) {
		h := s.h.with(t)
		c, addr, _ := s.shopper(t)
		add(c, s.ssd.ID, 1)
		p := placeOrder(c, addr)
		body, sig := stripetest.Webhook(t, stripetest.WebhookSecret, stripetest.IntentSucceeded, p.Payment.IntentID,
			p.Order.ID, p.Order.Total.Cents(), "usd")
		var wg sync.WaitGroup
		statuses := make([]int, 5)
		for i := range statuses {
			wg.Go(func() {
				req, err := nethttp.NewRequest("POST", h.srv.URL+"/api/v1/webhooks/stripe", bytes.NewReader(body))
				if err != nil {
					return
				}
				req.Header.Set(payments.SignatureHeader, sig)
				res, err := nethttp.DefaultClient.Do(req)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				statuses[i] = res.StatusCode
			})
		}
		wg.Wait()
		for i, st := range statuses {
			if st != 200 {
				t.Errorf("delivery %d: status %d, want 200", i, st)
			}
		}
		events, err := h.store.Load(context.Background(), order.StreamID(p.Order.ID))
		if err != nil {
			t.Fatal(err)
		}
		paid := 0
		for _, e := range events {
			if e.Type == (order.MarkedPaid{}).EventType() {
				paid++
			}
		}
		if paid != 1 {
			t.Fatalf("%d OrderPaid events after five deliveries of one event; want 1", paid)
		}
	})

	t.Run("a webhook with the wrong amount, currency or intent is recorded once and leaves the order pending", func(t *testing.T) {
		h := s.h.with(t)
		c, addr, _ := s.shopper(t)
		add(c, s.ssd.ID, 1)
		p := placeOrder(c, addr)
		cents := p.Order.Total.Cents()
		for _, tc := range []struct {
			name     string
			intent   string
			cents    int64
			currency string
		}{
			{"a cent short", p.Payment.IntentID, cents - 1, "usd"},
			{"a cent more", p.Payment.IntentID, cents + 1, "usd"},
			{"in euros", p.Payment.IntentID, cents, "eur"},
			{"another intent naming this order", "pi_not_this_orders", cents, "usd"},
		} {
			body, sig := stripetest.Webhook(t, stripetest.WebhookSecret, stripetest.IntentSucceeded, tc.intent, p.Order.ID, tc.cents, tc.currency)
			// Stripe retries anything but a 2xx for days: the event is acknowledged, recorded
			// once as ignored (with the reason, for an admin), and a redelivery adds nothing.
			before := h.head()
			for i := range 2 {
				if r := postWebhook(t, h, body, sig); r.status != 200 {
					t.Errorf("%s, delivery %d: %d %s, want 200", tc.name, i, r.status, r.body)
				}
			}
			events, err := h.store.Load(context.Background(), order.StreamID(p.Order.ID))
			if err != nil {
				t.Fatal(err)
			}
			last := events[len(events)-1]
			if after := h.head(); after != before+1 || last.Type != (order.StripeEventIgnored{}).EventType() {
				t.Errorf("%s: the log grew from %d to %d, last event %s; want one StripeEventIgnored", tc.name, before, after, last.Type)
			}
		}
		if o := c.order(p.Order.ID); o.Status != order.PendingPayment {
			t.Fatalf("order after wrong payments: %s", o.Status)
		}
		// The right payment still pays it.
		c.lastPosition = max(c.lastPosition, payByWebhook(t, h, p.Order.ID, p.Payment.IntentID, cents))
		if o := c.order(p.Order.ID); o.Status != order.Paid {
			t.Fatalf("order after its payment: %s", o.Status)
		}
	})

	t.Run("a price change between adding and ordering", func(t *testing.T) {
		h := s.h.with(t)
		s.n++
		cable := s.product(t, fmt.Sprintf("USB-C cable %d", s.n), "10.00", 10)
		c, addr, _ := s.shopper(t)
		add(c, cable.ID, 2)
		var patched product
		h.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", cable.ID), `{"price":"12.50"}`, 200).json(t, &patched)
		c.lastPosition = max(c.lastPosition, patched.Position)

		before := h.head()
		body := fmt.Sprintf(`{"address_id":%d}`, addr)
		key := fmt.Sprintf("price-change-%d", s.n)
		r := h.do("POST", "/api/v1/orders", body, "Authorization", "Bearer "+c.access, "Idempotency-Key", key)
		if b := errorOf(t, r); r.status != 409 || b.Error.Code != "price_changed" {
			t.Fatalf("order at an old price: %d %s", r.status, r.body)
		}
		// The refusal appends one event: the cart takes the new price, and shows it.
		var me struct {
			ID int64 `json:"id"`
		}
		c.call("GET", "/api/v1/users/me", "", 200).json(t, &me)
		events, err := h.store.Load(context.Background(), cart.StreamID(me.ID))
		if err != nil {
			t.Fatal(err)
		}
		if after, last := h.head(), events[len(events)-1]; after != before+1 || last.Type != (cart.LinePriceUpdated{}).EventType() {
			t.Fatalf("a refused order grew the log from %d to %d (last %s); want one CartLinePriceUpdated", before, after, last.Type)
		}
		// The refusal names the position of the reprice: the cart read at it shows the new price.
		var refused struct {
			Error struct {
				Position int64 `json:"position"`
			} `json:"error"`
		}
		r.json(t, &refused)
		if refused.Error.Position != h.head() {
			t.Fatalf("the refusal's position %d, want the reprice's %d: %s", refused.Error.Position, h.head(), r.body)
		}
		c.lastPosition = max(c.lastPosition, refused.Error.Position)
		v := c.cart()
		if len(v.Lines) != 1 || v.Lines[0].PriceChanged || v.Lines[0].UnitPrice != money(t, "12.50") ||
			v.Lines[0].CurrentPrice != money(t, "12.50") || v.Total != money(t, "25.00") {
			t.Fatalf("cart after the price change: %+v", v)
		}
		// A repeat of the refused request (a client that lost the 409) is refused again, the same
		// way, and places nothing: the customer has not seen the new price yet.
		head := h.head()
		again := h.do("POST", "/api/v1/orders", body, "Authorization", "Bearer "+c.access, "Idempotency-Key", key)
		if again.status != r.status || string(again.body) != string(r.body) || h.head() != head {
			t.Fatalf("the refused order's key repeated: %d %s (first %s); log %d -> %d", again.status, again.body, r.body, head, h.head())
		}
		// Ordering again, knowingly, pays the new price.
		if p := placeOrder(c, addr); p.Order.Total != money(t, "25.00") {
			t.Fatalf("order at the new price: %+v", p.Order)
		}
	})

	t.Run("bad quantities", func(t *testing.T) {
		h := s.h.with(t)
		c, _, _ := s.shopper(t)
		add(c, s.gpu.ID, 1)
		for _, tc := range []struct {
			quantity string
			want     int
		}{{"0", 422}, {"-1", 422}, {"100", 422}, {`"2"`, 400}, {"1.5", 400}, {"null", 422}} {
			before := h.head()
			c.call("POST", "/api/v1/cart/items", fmt.Sprintf(`{"product_id":%d,"quantity":%s}`, s.ssd.ID, tc.quantity), tc.want)
			c.call("PATCH", fmt.Sprintf("/api/v1/cart/items/%d", s.gpu.ID), fmt.Sprintf(`{"quantity":%s}`, tc.quantity), tc.want)
			if after := h.head(); after != before {
				t.Errorf("quantity %s: the log grew from %d to %d", tc.quantity, before, after)
			}
		}
		c.call("POST", "/api/v1/cart/items", `{"product_id":999999,"quantity":1}`, 404)
		c.call("POST", "/api/v1/cart/items", fmt.Sprintf(`{"product_id":%d,"quantity":99}`, s.ssd.ID), 409) // more than in stock
		c.call("PATCH", fmt.Sprintf("/api/v1/cart/items/%d", s.ssd.ID), `{"quantity":1}`, 404)              // not in the cart
		c.call("PATCH", fmt.Sprintf("/api/v1/cart/items/%d", s.gpu.ID), `{"quantity":99}`, 409)             // a raise past the stock, as an add
		if cart := c.cart(); len(cart.Lines) != 1 || cart.Lines[0].Quantity != 1 {
			t.Fatalf("cart after bad quantities: %+v", cart)
		}
		// A line of a product no longer sold can be lowered or removed, not raised.
		gone := s.product(t, "Discontinued Fan", "9.99", 10)
		add(c, gone.ID, 2)
		h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d", gone.ID), "", 200)
		before := h.head()
		r := c.call("PATCH", fmt.Sprintf("/api/v1/cart/items/%d", gone.ID), `{"quantity":3}`, 409)
		if b := errorOf(t, r); b.Error.Field != "product_id" || h.head() != before {
			t.Fatalf("raising a deleted product's line: %s (log %d -> %d)", r.body, before, h.head())
		}
		c.call("PATCH", fmt.Sprintf("/api/v1/cart/items/%d", gone.ID), `{"quantity":1}`, 200)
		// The line still says what it was: the name the product had when it was added.
		lines := c.cart().Lines
		if i := slices.IndexFunc(lines, func(l cartLine) bool { return l.ProductID == gone.ID }); i < 0 || lines[i].Name != "Discontinued Fan" {
			t.Fatalf("the deleted product's line: %+v", lines)
		}
	})

	t.Run("promo codes: bad input and repeats change nothing", func(t *testing.T) {
		h := s.h.with(t)
		p := s.promoCode(t, `{"code":"STEADY10","kind":"amount","discount":1000}`)
		path := fmt.Sprintf("/api/v1/promo-codes/%d", p.ID)
		before := h.head()
		for _, tc := range []struct {
			method, path, body string
			status             int
			field, message     string
		}{
			{"POST", "/api/v1/promo-codes", `{"code":"HUGE1","kind":"amount","discount":100000000000}`, 422, "discount", "999999999.99"},
			{"POST", "/api/v1/promo-codes", `{"code":"DOTLESSı","kind":"percent","discount":5}`, 422, "code", "A-Z"},
			{"POST", "/api/v1/promo-codes", `{"code":"KELVINK","kind":"percent","discount":5}`, 422, "code", "A-Z"},
			{"POST", "/api/v1/promo-codes", `{"code":"WHEN1","kind":"percent","discount":5,"expiration_date":"tomorrow"}`, 422, "expiration_date", "RFC 3339"},
			{"PATCH", path, `{"expiration_date":"2027-13-01"}`, 422, "expiration_date", "RFC 3339"},
			{"PATCH", path, `{"expiration_date":20271301}`, 400, "expiration_date", "RFC 3339"},
			{"PATCH", path, `{}`, 422, "", "nothing to update"},
			{"PATCH", path, `{"is_active":null,"discount":null}`, 422, "", "nothing to update"},
			{"PATCH", path, `{"kind":"percent"}`, 422, "discount", "required when kind changes"},
		} {
			r := h.admin(tc.method, tc.path, tc.body, tc.status)
			if b := errorOf(t, r); b.Error.Field != tc.field || !strings.Contains(b.Error.Message, tc.message) {
				t.Errorf("%s %s %s: %s, want %q on %q", tc.method, tc.path, tc.body, r.body, tc.message, tc.field)
			}
		}
		// Terms as they are already: 200, nothing appended.
		for _, body := range []string{`{"discount":1000}`, `{"kind":"amount","is_active":true}`} {
			var res struct {
				Position int64 `json:"position"`
			}
			h.admin("PATCH", path, body, 200).json(t, &res)
			if res.Position != 0 {
				t.Errorf("PATCH %s as it is: position %d, want 0", body, res.Position)
			}
		}
		if after := h.head(); after != before {
			t.Fatalf("the log grew from %d to %d", before, after)
		}
		h.admin("PATCH", path, `{"discount":900}`, 200)
		if h.head() == before {
			t.Fatal("a real change appended nothing")
		}
		// An expiry is set, and removed with null.
		var dated, open struct {
			ExpiresAt *string `json:"expiration_date"`
		}
		h.admin("PATCH", path, `{"expiration_date":"2031-01-01T00:00:00Z"}`, 200).json(t, &dated)
		h.admin("PATCH", path, `{"expiration_date":null}`, 200).json(t, &open)
		if dated.ExpiresAt == nil || open.ExpiresAt != nil {
			t.Fatalf("expiry set to %v, then removed to %v", dated.ExpiresAt, open.ExpiresAt)
		}
	})

	t.Run("someone else's address or order is not found", func(t *testing.T) {
		h := s.h.with(t)
		ada, adaAddr, _ := s.shopper(t)
		add(ada, s.gpu.ID, 1)
		p := placeOrder(ada, adaAddr)
		bob, _, _ := s.shopper(t)
		add(bob, s.ssd.ID, 1)
		bob.lastPosition = max(bob.lastPosition, p.Position)

		before := h.head()
		r := bob.call("POST", "/api/v1/orders", fmt.Sprintf(`{"address_id":%d}`, adaAddr), 404)
		if b := errorOf(t, r); b.Error.Field != "address_id" {
			t.Errorf("ordering to another's address: %s", r.body)
		}
		id := p.Order.ID
		bob.call("GET", fmt.Sprintf("/api/v1/orders/%d", id), "", 404)
		bob.call("GET", fmt.Sprintf("/api/v1/orders/%d/invoice", id), "", 404)
		bob.call("POST", fmt.Sprintf("/api/v1/orders/%d/payment", id), "", 404)
		bob.call("POST", fmt.Sprintf("/api/v1/orders/%d/cancel", id), "", 404)
		var list page[orderView]
		bob.call("GET", "/api/v1/orders", "", 200).json(t, &list)
		if len(list.Items) != 0 {
			t.Errorf("bob lists someone else's orders: %+v", list.Items)
		}
		bob.call("GET", fmt.Sprintf("/api/v1/orders?user_id=%d", ada.me().ID), "", 400)
		for _, q := range []string{"status=bogus", "status=paid&status=cancelled", "from=yesterday",
			"from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z", "limit=0", "limit=101"} {
			bob.call("GET", "/api/v1/orders?"+q, "", 400)
		}
		if after := h.head(); after != before {
			t.Errorf("refusals grew the log from %d to %d", before, after)
		}
		if o := ada.order(id); o.Status != order.PendingPayment {
			t.Fatalf("ada's order after bob's attempts: %s", o.Status)
		}
	})

	t.Run("an empty cart cannot be ordered", func(t *testing.T) {
		c, addr, _ := s.shopper(t)
		c.call("POST", "/api/v1/orders", fmt.Sprintf(`{"address_id":%d}`, addr), 409)
		add(c, s.gpu.ID, 1)
		c.call("DELETE", "/api/v1/cart", "", 200)
		c.call("POST", "/api/v1/orders", fmt.Sprintf(`{"address_id":%d}`, addr), 409)
	})

	t.Run("unusable codes", func(t *testing.T) {
		past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		s.promoCode(t, fmt.Sprintf(`{"code":"EXPIRED5","kind":"percent","discount":5,"expiration_date":%q}`, past))
		s.promoCode(t, `{"code":"PAUSED5","kind":"amount","discount":500,"is_active":false}`)
		once := s.promoCode(t, `{"code":"ONCE5","kind":"amount","discount":500,"usage_limit":1}`)

		first, addr, _ := s.shopper(t)
		first.lastPosition = max(first.lastPosition, once.Position)
		add(first, s.gpu.ID, 1)
		first.call("POST", "/api/v1/cart/promo", `{"code":"ONCE5"}`, 200)
		if p := placeOrder(first, addr); p.Order.Discount != money(t, "5.00") {
			t.Fatalf("order with ONCE5: %+v", p.Order)
		}

		c, _, _ := s.shopper(t)
		for _, tc := range []struct{ code, reason string }{
			{"NOSUCHCODE", "unknown"}, {"EXPIRED5", "expired"}, {"PAUSED5", "inactive"}, {"once5", "used_up"},
		} {
			r := c.call("POST", "/api/v1/cart/promo", fmt.Sprintf(`{"code":%q}`, tc.code), 422)
			if b := errorOf(t, r); b.Error.Field != "code" || !strings.Contains(b.Error.Message, "("+tc.reason+")") {
				t.Errorf("code %s: %s, want the reason %s", tc.code, r.body, tc.reason)
			}
		}
		c.call("POST", "/api/v1/cart/promo", `{"code":"x"}`, 422) // not a code at all
		if cart := c.cart(); cart.PromoCode != "" {
			t.Fatalf("a refused code is on the cart: %+v", cart)
		}
	})

	t.Run("an order whose cart holds a withdrawn code says so", func(t *testing.T) {
		gone := s.promoCode(t, `{"code":"WITHDRAWN5","kind":"amount","discount":500}`)
		c, addr, _ := s.shopper(t)
		c.lastPosition = max(c.lastPosition, gone.Position)
		add(c, s.ssd.ID, 1)
		c.call("POST", "/api/v1/cart/promo", `{"code":"WITHDRAWN5"}`, 200)
		s.h.admin("DELETE", fmt.Sprintf("/api/v1/promo-codes/%d", gone.ID), "", 200)
		r := c.call("POST", "/api/v1/orders", fmt.Sprintf(`{"address_id":%d}`, addr), 422)
		if b := errorOf(t, r); b.Error.Field != "code" || !strings.Contains(b.Error.Message, "WITHDRAWN5") ||
			!strings.Contains(b.Error.Message, "DELETE /cart/promo") {
			t.Fatalf("ordering with a withdrawn code: %s", r.body)
		}
		c.call("DELETE", "/api/v1/cart/promo", "", 200)
		if p := placeOrder(c, addr); p.Order.Discount != 0 {
			t.Fatalf("the order without the code: %+v", p.Order)
		}
	})

	t.Run("a second code is a conflict", func(t *testing.T) {
		a := s.promoCode(t, `{"code":"FIRST1","kind":"amount","discount":100}`)
		s.promoCode(t, `{"code":"SECOND1","kind":"amount","discount":100}`)
		c, _, _ := s.shopper(t)
		c.lastPosition = max(c.lastPosition, a.Position)
		add(c, s.ssd.ID, 1)
		c.call("POST", "/api/v1/cart/promo", `{"code":"FIRST1"}`, 200)
		c.call("POST", "/api/v1/cart/promo", `{"code":"FIRST1"}`, 200) // the same again changes nothing
		c.call("POST", "/api/v1/cart/promo", `{"code":"SECOND1"}`, 409)
		if cart := c.cart(); cart.PromoCode != "FIRST1" || cart.Discount != money(t, "1.00") {
			t.Fatalf("cart: %+v", cart)
		}
		c.call("DELETE", "/api/v1/cart/promo", "", 200)
		c.call("POST", "/api/v1/cart/promo", `{"code":"SECOND1"}`, 200)
	})
}
