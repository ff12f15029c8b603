package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/payments"
)

// StripeWebhooks verifies Stripe's webhook deliveries (package payments).
type StripeWebhooks interface {
	ParseWebhook(payload []byte, sigHeader string) (payments.Event, error)
}

type cartItemRequest struct {
	ProductID int64 `json:"product_id"`
	Quantity  int64 `json:"quantity"`
}

type quantityRequest struct {
	Quantity int64 `json:"quantity"`
}

type codeRequest struct {
	Code string `json:"code"`
}

type placeOrderRequest struct {
	AddressID int64 `json:"address_id"`
}

type promoRequest struct {
	Code       *string        `json:"code"`
	Kind       *string        `json:"kind"`
	Discount   *int64         `json:"discount"`
	ExpiresAt  expirationDate `json:"expiration_date"`
	UsageLimit *int64         `json:"usage_limit"`
	Active     *bool          `json:"is_active"`
}

// expirationDate is a promo code's expiration_date: an RFC 3339 time, or null for none (which
// removes a code's expiry); refused by name otherwise (a string that is no such time breaks a
// rule, 422; any other JSON type cannot be read, 400).
type expirationDate struct {
	set bool       // the request names it
	at  *time.Time // nil: no expiry
}

func (d *expirationDate) UnmarshalJSON(b []byte) error {
	d.set = true
	if string(b) == "null" {
		d.at = nil
		return nil
	}
	var t time.Time
	if err := t.UnmarshalJSON(b); err != nil {
		msg := "expiration_date must be an RFC 3339 time, like 2027-01-31T23:59:59Z, or null for none"
		if len(b) > 0 && b[0] == '"' {
			return domain.Invalid("expiration_date", "%s", msg)
		}
		return badRequest("expiration_date", msg)
	}
	t = t.UTC()
	d.at = &t
	return nil
}

type cartCommandResponse struct {
	UserID   int64 `json:"user_id"`
	Position int64 `json:"position"`
}

type orderCommandResponse struct {
	ID       int64        `json:"id"`
	UserID   int64        `json:"user_id"`
	Status   string       `json:"status"`
	Subtotal domain.Money `json:"subtotal"`
	Discount domain.Money `json:"discount"`
	Total    domain.Money `json:"total"`
	Currency string       `json:"currency"`
	Position int64        `json:"position"`
}

type paymentResponse struct {
	OrderID      int64        `json:"order_id"`
	IntentID     string       `json:"payment_intent_id"`
	ClientSecret string       `json:"client_secret"`
	Amount       domain.Money `json:"amount"`
	Currency     string       `json:"currency"`
	Position     int64        `json:"position,omitempty"`
}

type placedResponse struct {
	Order   orderCommandResponse `json:"order"`
	Payment *paymentResponse     `json:"payment"`
	// PaymentError says why no payment could be requested yet (retry POST /orders/{id}/payment).
	PaymentError string `json:"payment_error,omitempty"`
	Position     int64  `json:"position"`
}

type promoResponse struct {
	ID         int64      `json:"id"`
	Code       string     `json:"code"`
	Kind       string     `json:"kind"`
	Discount   int64      `json:"discount"`
	ExpiresAt  *time.Time `json:"expiration_date"`
	UsageLimit int64      `json:"usage_limit"`
	UsageCount int64      `json:"usage_count"`
	Active     bool       `json:"is_active"`
	Position   int64      `json:"position"`
}

func toOrderCommandResponse(r commands.OrderResult) orderCommandResponse {
	return orderCommandResponse{ID: r.OrderID, UserID: r.UserID, Status: r.Status, Subtotal: r.Subtotal,
		Discount: r.Discount, Total: r.Total, Currency: r.Currency, Position: r.Position}
}

func toPaymentResponse(p commands.PaymentResult) *paymentResponse {
	return &paymentResponse{OrderID: p.OrderID, IntentID: p.IntentID, ClientSecret: p.ClientSecret, Amount: p.Amount,
		Currency: p.Currency, Position: p.Position}
}

func toPromoResponse(r commands.PromoResult) promoResponse {
	return promoResponse{ID: r.ID, Code: r.Code, Kind: r.Terms.Kind, Discount: r.Terms.Value, ExpiresAt: r.Terms.ExpiresAt,
		UsageLimit: r.Terms.UsageLimit, UsageCount: r.Used, Active: r.Terms.Active, Position: r.Position}
}

func (s *Server) shopRoutes(v1, user, admin *gin.RouterGroup) {
	user.POST("/cart/items", idempotent, s.addToCart)
	user.PATCH("/cart/items/:product_id", idempotent, s.setCartQuantity)
	user.DELETE("/cart/items/:product_id", bodiless, s.removeFromCart)
	user.DELETE("/cart", bodiless, s.clearCart)
	user.POST("/cart/promo", idempotent, s.redeemPromo)
	user.DELETE("/cart/promo", bodiless, s.removePromo)
	user.POST("/orders", idempotent, s.placeOrder)
	user.POST("/orders/:id/cancel", bodiless, s.cancelOrder)
	user.POST("/orders/:id/payment", bodiless, s.requestPayment)
	admin.POST("/orders/:id/ship", bodiless, s.orderStep(s.cfg.Shop.ShipOrder))
	admin.POST("/orders/:id/deliver", bodiless, s.orderStep(s.cfg.Shop.DeliverOrder))
	admin.POST("/orders/:id/refund", bodiless, s.orderStep(s.cfg.Shop.RefundOrder))
	admin.POST("/promo-codes", idempotent, s.createPromo)
	admin.PATCH("/promo-codes/:id", idempotent, s.updatePromo)
	admin.DELETE("/promo-codes/expired", bodiless, s.expirePromos)
	admin.DELETE("/promo-codes/:id", bodiless, s.deletePromo)
	v1.POST("/webhooks/stripe", s.stripeWebhook)
}

func (s *Server) cartCommand(c *gin.Context, run func(md domain.Metadata, userID int64) (commands.CartResult, error), status int) {
	res, err := run(metadata(c), me(c).UserID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(status, cartCommandResponse{UserID: res.UserID, Position: res.Position})
}

func (s *Server) addToCart(c *gin.Context) {
	var req cartItemRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.ProductID <= 0 {
		writeError(c, domain.Invalid("product_id", "product_id is required"))
		return
	}
	s.cartCommand(c, func(md domain.Metadata, uid int64) (commands.CartResult, error) {
		return s.cfg.Shop.AddToCart(c, md, commands.AddToCart{UserID: uid, ProductID: req.ProductID, Quantity: req.Quantity})
	}, nethttp.StatusCreated)
}

func (s *Server) setCartQuantity(c *gin.Context) {
	pid, err := pathID(c, "product_id")
	if err != nil {
		writeError(c, err)
		return
	}
	var req quantityRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	s.cartCommand(c, func(md domain.Metadata, uid int64) (commands.CartResult, error) {
		return s.cfg.Shop.SetCartQuantity(c, md, commands.AddToCart{UserID: uid, ProductID: pid, Quantity: req.Quantity})
	}, nethttp.StatusOK)
}

func (s *Server) removeFromCart(c *gin.Context) {
	pid, err := pathID(c, "product_id")
	if err != nil {
		writeError(c, err)
		return
	}
	s.cartCommand(c, func(md domain.Metadata, uid int64) (commands.CartResult, error) {
		return s.cfg.Shop.RemoveFromCart(c, md, uid, pid)
	}, nethttp.StatusOK)
}

func (s *Server) clearCart(c *gin.Context) {
	s.cartCommand(c, func(md domain.Metadata, uid int64) (commands.CartResult, error) {
		return s.cfg.Shop.ClearCart(c, md, uid)
	}, nethttp.StatusOK)
}

func (s *Server) redeemPromo(c *gin.Context) {
	var req codeRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	s.cartCommand(c, func(md domain.Metadata, uid int64) (commands.CartResult, error) {
		return s.cfg.Shop.RedeemPromo(c, md, uid, req.Code)
	}, nethttp.StatusOK)
}

func (s *Server) removePromo(c *gin.Context) {
	s.cartCommand(c, func(md domain.Metadata, uid int64) (commands.CartResult, error) {
		return s.cfg.Shop.RemovePromo(c, md, uid)
	}, nethttp.StatusOK)
}

func (s *Server) placeOrder(c *gin.Context) {
	var req placeOrderRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.AddressID <= 0 {
		writeError(c, domain.Invalid("address_id", "address_id is required"))
		return
	}
	p := me(c)
	res, err := s.cfg.Shop.PlaceOrder(c, metadata(c), commands.PlaceOrder{UserID: p.UserID, AddressID: req.AddressID})
	if err != nil {
		writeError(c, err)
		return
	}
	out := placedResponse{Order: toOrderCommandResponse(res), Position: res.Position}
	// An order with nothing to charge (its discount covers it) is paid as placed: no payment.
	if res.Status == order.PendingPayment {
		s.requestPaymentWithOrder(c, p, res.OrderID, &out)
	}
	c.Header("Location", fmt.Sprintf("/api/v1/orders/%d", res.OrderID))
	c.JSON(nethttp.StatusCreated, out)
}

// requestPaymentWithOrder puts the new order's PaymentIntent into out. The order stands whatever
// Stripe answers: a payment that cannot be requested now is requested again with POST
// /orders/{id}/payment. The request's Idempotency-Key is PlaceOrder's: under it the payment
// would be answered with the order's stored result and its intent never recorded. Unkeyed, the
// payment is idempotent by itself (Stripe's key is the order's and attempt's, and a recorded
// intent is handed out again).
func (s *Server) requestPaymentWithOrder(c *gin.Context, p principal, orderID int64, out *placedResponse) {
	payCtx := commands.WithIdempotency(c.Request.Context(), commands.Idempotency{})
	pay, err := s.cfg.Shop.RequestPayment(payCtx, metadata(c), p.UserID, false, orderID)
	if err != nil {
		logger(c).WarnContext(c, "payment not requested with the order", "order_id", orderID, "err", err)
		_, body := errorResponse(err)
		out.PaymentError = body.Error.Message
		return
	}
	out.Payment = toPaymentResponse(pay)
	out.Position = max(out.Position, pay.Position)
}

func (s *Server) cancelOrder(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	p := me(c)
	res, err := s.cfg.Shop.CancelOrder(c, metadata(c), commands.OrderRef{UserID: p.UserID, Admin: p.Role == roleAdmin, OrderID: id}, "cancelled by "+p.Role)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toOrderCommandResponse(res))
}

func (s *Server) requestPayment(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	p := me(c)
	res, err := s.cfg.Shop.RequestPayment(c, metadata(c), p.UserID, p.Role == roleAdmin, id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(nethttp.StatusOK, toPaymentResponse(res))
}

func (s *Server) orderStep(step func(ctx context.Context, md domain.Metadata, id int64) (commands.OrderResult, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := pathID(c, "id")
		if err != nil {
			writeError(c, err)
			return
		}
		res, err := step(c, metadata(c), id)
		if err != nil {
			writeError(c, err)
			return
		}
		c.JSON(nethttp.StatusOK, toOrderCommandResponse(res))
	}
}

// promoTerms merges a request's terms into base (a code's current terms, or a new code's). A
// discount is read by its kind, so a change of kind needs the discount too: amount 100 ($1.00
// off) is not percent 100.
func promoTerms(req promoRequest, base promo.Terms) (promo.Terms, error) {
	t := base
	if req.Kind != nil && *req.Kind != base.Kind && req.Discount == nil && base.Kind != "" {
		return t, domain.Invalid("discount", "discount is required when kind changes: a discount is read by its kind")
	}
	if req.Kind != nil {
		t.Kind = *req.Kind
	}
	if req.Discount != nil {
		t.Value = *req.Discount
	}
	if req.ExpiresAt.set {
		t.ExpiresAt = req.ExpiresAt.at
	}
	if req.UsageLimit != nil {
		t.UsageLimit = *req.UsageLimit
	}
	if req.Active != nil {
		t.Active = *req.Active
	}
	return t, promo.CheckTerms(t)
}

func (s *Server) createPromo(c *gin.Context) {
	var req promoRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Code == nil {
		writeError(c, domain.Invalid("code", "code is required"))
		return
	}
	t, err := promoTerms(req, promo.Terms{Active: true})
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.Shop.CreatePromo(c, metadata(c), commands.CreatePromo{Code: *req.Code, Terms: t})
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Location", fmt.Sprintf("/api/v1/promo-codes/%d", res.ID))
	c.JSON(nethttp.StatusCreated, toPromoResponse(res))
}

func (s *Server) updatePromo(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	var req promoRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Code != nil {
		writeError(c, domain.Invalid("code", "a code cannot be renamed; delete it and create another"))
		return
	}
	if req.Kind == nil && req.Discount == nil && !req.ExpiresAt.set && req.UsageLimit == nil && req.Active == nil {
		writeError(c, domain.Invalid("", "nothing to update: give kind, discount, expiration_date, usage_limit and/or is_active"))
		return
	}
	cur, err := s.cfg.Shop.Promo(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	t, err := promoTerms(req, cur.Terms)
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.Shop.UpdatePromo(c, metadata(c), id, t)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toPromoResponse(res))
}

func (s *Server) deletePromo(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.Shop.DeletePromo(c, metadata(c), id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, deletedResponse{ID: res.ID, Deleted: true, Position: res.Position})
}

func (s *Server) expirePromos(c *gin.Context) {
	ids, err := s.cfg.PromoExpiry.ExpiredActivePromoIDs(c, time.Now())
	if err != nil {
		writeError(c, err)
		return
	}
	n, pos, err := s.cfg.Shop.ExpirePromos(c, metadata(c), ids)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, gin.H{"deactivated": n, "position": pos})
}

// maxWebhookBytes bounds a Stripe delivery (their events are a few kB).
const maxWebhookBytes = 256 << 10

// stripeWebhook verifies the signature on the raw body and applies the event to its order, once
// per Stripe event id. A bad signature or body is 400; an event about no order of this store,
// or of a type that pays nothing, is acknowledged (200) so Stripe stops sending it.
func (s *Server) stripeWebhook(c *gin.Context) {
	if s.cfg.Stripe == nil {
		writeError(c, &domain.Error{Kind: domain.ErrNotFound, Message: "payments are not configured on this server"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxWebhookBytes+1))
	if err != nil || len(body) > maxWebhookBytes {
		writeError(c, badRequest("body", "the webhook body cannot be read or is too large"))
		return
	}
	ev, err := s.cfg.Stripe.ParseWebhook(body, c.GetHeader(payments.SignatureHeader))
	if err != nil {
		if errors.Is(err, payments.ErrBadSignature) || errors.Is(err, payments.ErrMalformed) {
			writeError(c, badRequest("Stripe-Signature", "the webhook is not signed by Stripe or is malformed"))
			return
		}
		writeError(c, err)
		return
	}
	res, err := s.cfg.Shop.HandleStripeEvent(c, metadata(c), ev)
	if errors.Is(err, commands.ErrUnknownOrder) {
		c.JSON(nethttp.StatusOK, gin.H{"received": true, "ignored": "the event names no order of this store"})
		return
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, gin.H{"received": true, "order_id": res.OrderID, "status": strings.ToLower(res.Status), "position": res.Position})
}
