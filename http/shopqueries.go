package http

import (
	"bytes"
	"fmt"
	nethttp "net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/invoice"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/orderproj"
	"github.com/techvault/techvault/queries"
)

type cartLineResponse struct {
	ProductID    int64        `json:"product_id"`
	Name         string       `json:"name"`
	Quantity     int64        `json:"quantity"`
	UnitPrice    domain.Money `json:"unit_price"`
	CurrentPrice domain.Money `json:"current_price"`
	PriceChanged bool         `json:"price_changed"`
	LineTotal    domain.Money `json:"line_total"`
	Available    bool         `json:"available"`
	InStock      bool         `json:"in_stock"`
}

type cartResponse struct {
	Lines        []cartLineResponse `json:"lines"`
	Subtotal     domain.Money       `json:"subtotal"`
	Discount     domain.Money       `json:"discount"`
	Total        domain.Money       `json:"total"`
	Currency     string             `json:"currency"`
	PromoCode    string             `json:"promo_code,omitempty"`
	PromoProblem string             `json:"promo_problem,omitempty"`
	Version      int64              `json:"version"`
}

type orderSummaryResponse struct {
	ID        int64        `json:"id"`
	UserID    int64        `json:"user_id"`
	Status    string       `json:"status"`
	Subtotal  domain.Money `json:"subtotal"`
	Discount  domain.Money `json:"discount"`
	Total     domain.Money `json:"total"`
	Currency  string       `json:"currency"`
	PromoCode string       `json:"promo_code,omitempty"`
	ItemCount int64        `json:"item_count"`
	PlacedAt  time.Time    `json:"placed_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

type orderLineResponse struct {
	ProductID int64        `json:"product_id"`
	Name      string       `json:"name"`
	Quantity  int64        `json:"quantity"`
	UnitPrice domain.Money `json:"unit_price"`
	Total     domain.Money `json:"total"`
}

type orderStatusResponse struct {
	Status   string    `json:"status"`
	At       time.Time `json:"at"`
	Position int64     `json:"position"`
}

type orderResponse struct {
	orderSummaryResponse
	Address struct {
		City     string `json:"city"`
		PostCode string `json:"post_code"`
		Country  string `json:"country"`
	} `json:"address"`
	PaidAt  *time.Time            `json:"paid_at"`
	Lines   []orderLineResponse   `json:"lines"`
	History []orderStatusResponse `json:"history"`
}

func toCartResponse(v queries.CartView) cartResponse {
	out := cartResponse{Lines: []cartLineResponse{}, Subtotal: v.Subtotal, Discount: v.Discount, Total: v.Total,
		Currency: v.Currency, PromoCode: v.PromoCode, PromoProblem: v.PromoProblem, Version: v.Version}
	for _, l := range v.Lines {
		out.Lines = append(out.Lines, cartLineResponse{ProductID: l.ProductID, Name: l.Name, Quantity: l.Quantity,
			UnitPrice: l.UnitPrice, CurrentPrice: l.CurrentPrice, PriceChanged: l.PriceChanged, LineTotal: l.LineTotal,
			Available: l.Available, InStock: l.InStock})
	}
	return out
}

func toOrderSummary(o queries.OrderSummary) orderSummaryResponse {
	return orderSummaryResponse{ID: o.ID, UserID: o.UserID, Status: o.Status, Subtotal: o.Subtotal, Discount: o.Discount,
		Total: o.Total, Currency: o.Currency, PromoCode: o.PromoCode, ItemCount: o.ItemCount, PlacedAt: o.PlacedAt, UpdatedAt: o.UpdatedAt}
}

func toOrderResponse(o queries.OrderView) orderResponse {
	out := orderResponse{orderSummaryResponse: toOrderSummary(o.OrderSummary), PaidAt: o.PaidAt,
		Lines: []orderLineResponse{}, History: []orderStatusResponse{}}
	out.Address.City, out.Address.PostCode, out.Address.Country = o.Address.City, o.Address.PostCode, o.Address.Country
	for _, l := range o.Lines {
		out.Lines = append(out.Lines, orderLineResponse{ProductID: l.ProductID, Name: l.Name, Quantity: l.Quantity,
			UnitPrice: l.UnitPrice, Total: l.Total})
	}
	for _, h := range o.History {
		out.History = append(out.History, orderStatusResponse{Status: h.Status, At: h.At, Position: h.Position})
	}
	return out
}

func (s *Server) shopQueryRoutes(user, admin *gin.RouterGroup) {
	user.GET("/cart", s.getCart)
	user.GET("/orders", s.listOrders)
	user.GET("/orders/:id", s.getOrder)
	user.GET("/orders/:id/invoice", s.getInvoice)
	admin.GET("/promo-codes", s.listPromoCodes)
	admin.GET("/promo-codes/:id", s.getPromoCode)
}

func (s *Server) getCart(c *gin.Context) {
	// The cart's lines are priced from the products table and discounted from the promo_codes
	// table: a client that changed either reads its write only once their projectors caught up.
	if _, err := s.awaitPosition(c, orderproj.CartsProjector, catalogproj.ProductsProjector, orderproj.PromoCodesProjector); err != nil {
		writeError(c, err)
		return
	}
	read := s.cfg.OrderQueries.Cart
	if s.cfg.Carts != nil && c.GetHeader(MinPositionHeader) == "" {
		read = s.cfg.Carts.Cart
	}
	v, err := read(c, me(c).UserID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toCartResponse(v))
}

// orderFilter reads GET /orders' query: a customer sees their own orders; an admin sees all and
// may filter by user, status and date.
func orderFilter(c *gin.Context, p principal) (queries.OrderFilter, error) {
	limit, err := queryLimit(c)
	if err != nil {
		return queries.OrderFilter{}, err
	}
	f := queries.OrderFilter{Limit: limit, Cursor: c.Query("cursor"), Status: c.Query("status")}
	if p.Role != roleAdmin {
		uid := p.UserID
		f.UserID = &uid
		if c.Query("user_id") != "" {
			return f, badRequest("user_id", "only admins filter orders by user")
		}
	} else if v := c.Query("user_id"); v != "" {
		uid, err := parseID("user_id", v)
		if err != nil {
			return f, err
		}
		f.UserID = &uid
	}
	for _, d := range []struct {
		name string
		dst  **time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := c.Query(d.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, badRequest(d.name, d.name+" must be an RFC 3339 time such as 2026-11-29T00:00:00Z")
			}
			*d.dst = &t
		}
	}
	if f.From != nil && f.To != nil && f.To.Before(*f.From) {
		return f, badRequest("to", "to must not be before from")
	}
	switch f.Status {
	case "", "pending_payment", "paid", "shipped", "delivered", "cancelled", "refunded":
	default:
		return f, badRequest("status", "status must be pending_payment, paid, shipped, delivered, cancelled or refunded")
	}
	return f, nil
}

func (s *Server) listOrders(c *gin.Context) {
	f, err := orderFilter(c, me(c))
	if err != nil {
		writeError(c, err)
		return
	}
	if _, err := s.awaitPosition(c, orderproj.OrdersProjector); err != nil {
		writeError(c, err)
		return
	}
	page, err := s.cfg.OrderQueries.Orders(c, f)
	if err != nil {
		writeError(c, err)
		return
	}
	items := make([]orderSummaryResponse, 0, len(page.Items))
	for _, o := range page.Items {
		items = append(items, toOrderSummary(o))
	}
	c.JSON(nethttp.StatusOK, pageView[orderSummaryResponse]{Items: items, NextCursor: page.NextCursor})
}

// visibleOrder reads an order the caller may see (their own; any for an admin): another's is 404.
func (s *Server) visibleOrder(c *gin.Context) (queries.OrderView, bool) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return queries.OrderView{}, false
	}
	if _, err := s.awaitPosition(c, orderproj.OrdersProjector); err != nil {
		writeError(c, err)
		return queries.OrderView{}, false
	}
	o, err := s.cfg.OrderQueries.Order(c, id)
	p := me(c)
	if err == nil && p.Role != roleAdmin && o.UserID != p.UserID {
		err = domain.NotFound("order %d not found", id)
	}
	if err != nil {
		writeError(c, err)
		return queries.OrderView{}, false
	}
	return o, true
}

func (s *Server) getOrder(c *gin.Context) {
	if o, ok := s.visibleOrder(c); ok {
		c.JSON(nethttp.StatusOK, toOrderResponse(o))
	}
}

// getInvoice renders the order's invoice as a PDF: an order has one once it was paid (an unpaid
// or cancelled order has none, 409; a refunded one keeps it, marked refunded).
func (s *Server) getInvoice(c *gin.Context) {
	o, ok := s.visibleOrder(c)
	if !ok {
		return
	}
	if o.PaidAt == nil {
		writeError(c, domain.Conflict("order %d is %s: an order has an invoice once it is paid", o.ID, strings.ReplaceAll(o.Status, "_", " ")))
		return
	}
	inv := invoice.Invoice{Number: fmt.Sprintf("TV-%06d", o.ID), OrderID: o.ID, Date: o.PlacedAt, Currency: o.Currency,
		Address:       invoice.Address{City: o.Address.City, PostCode: o.Address.PostCode, Country: o.Address.Country},
		SubtotalCents: o.Subtotal.Cents(), DiscountCents: o.Discount.Cents(), TotalCents: o.Total.Cents(),
		PromoCode: o.PromoCode, Status: o.Status}
	if u, err := s.cfg.UserQueries.User(c, o.UserID); err == nil {
		inv.Customer = u.FirstName + " " + u.LastName
	}
	for _, l := range o.Lines {
		inv.Lines = append(inv.Lines, invoice.Line{Name: l.Name, Quantity: l.Quantity, UnitPriceCents: l.UnitPrice.Cents(), TotalCents: l.Total.Cents()})
	}
	// Rendered whole before anything is sent, so a failure is still a JSON error.
	var pdf bytes.Buffer
	if err := invoice.Render(&pdf, inv); err != nil {
		writeError(c, fmt.Errorf("rendering the invoice of order %d: %w", o.ID, err))
		return
	}
	c.Header("Content-Disposition", `inline; filename="`+inv.Number+`.pdf"`)
	c.Data(nethttp.StatusOK, "application/pdf", pdf.Bytes())
}

func toPromoView(p queries.PromoCodeView) promoResponse {
	return promoResponse{ID: p.ID, Code: p.Code, Kind: p.Kind, Discount: p.Value, ExpiresAt: p.ExpiresAt,
		UsageLimit: p.UsageLimit, UsageCount: p.UsageCount, Active: p.Active}
}

func (s *Server) listPromoCodes(c *gin.Context) {
	limit, err := queryLimit(c)
	if err != nil {
		writeError(c, err)
		return
	}
	if _, err := s.awaitPosition(c, orderproj.PromoCodesProjector); err != nil {
		writeError(c, err)
		return
	}
	page, err := s.cfg.OrderQueries.PromoCodes(c, limit, c.Query("cursor"))
	if err != nil {
		writeError(c, err)
		return
	}
	items := make([]promoResponse, 0, len(page.Items))
	for _, p := range page.Items {
		items = append(items, toPromoView(p))
	}
	c.JSON(nethttp.StatusOK, pageView[promoResponse]{Items: items, NextCursor: page.NextCursor})
}

func (s *Server) getPromoCode(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	if _, err := s.awaitPosition(c, orderproj.PromoCodesProjector); err != nil {
		writeError(c, err)
		return
	}
	p, err := s.cfg.OrderQueries.PromoCode(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toPromoView(p))
}
