// Package cart is the shopping cart's domain: one cart per user, its lines (each remembering the
// unit price when it was added), its promo code, and its checkout.
package cart

import (
	"fmt"
	"slices"

	"github.com/techvault/techvault/domain"
)

// StreamType of carts.
const StreamType = "cart"

// StreamID is the cart stream of a user (one cart per user, reused after each checkout).
func StreamID(userID int64) string { return fmt.Sprintf("cart-%d", userID) }

// Quantity bounds of a line.
const (
	MinQuantity = 1
	MaxQuantity = 99
	// MaxLines bounds the lines of one cart.
	MaxLines = 50
)

// ItemAdded.v2: quantity of a product was added to the cart at unit price UnitPrice (a line
// already there grows; its remembered price stays the one it was first added at), when the
// product was called Name (the line shows it once the product has left the catalog). v1 had no
// name: it reads as v2 with Name "".
type ItemAdded struct {
	UserID    int64        `json:"user_id"`
	ProductID int64        `json:"product_id"`
	Quantity  int64        `json:"quantity"`
	UnitPrice domain.Money `json:"unit_price"`
	Name      string       `json:"name"`
}

// Reads implements domain.Reader: v1 is v2 without the name.
func (ItemAdded) Reads(schemaVersion int) bool { return schemaVersion == 1 }

// QuantityChanged.v1: a line's quantity is now Quantity.
type QuantityChanged struct {
	UserID    int64 `json:"user_id"`
	ProductID int64 `json:"product_id"`
	Quantity  int64 `json:"quantity"`
}

// ItemRemoved.v1: a line was removed.
type ItemRemoved struct {
	UserID    int64 `json:"user_id"`
	ProductID int64 `json:"product_id"`
}

// Cleared.v1: every line (and the promo) was removed.
type Cleared struct {
	UserID int64 `json:"user_id"`
}

// PromoApplied.v1: a promo code is attached to the cart.
type PromoApplied struct {
	UserID  int64  `json:"user_id"`
	PromoID int64  `json:"promo_id"`
	Code    string `json:"code"`
}

// PromoRemoved.v1: the cart's promo code was detached.
type PromoRemoved struct {
	UserID int64 `json:"user_id"`
}

// LinePriceUpdated.v1: a line's remembered unit price became NewPrice (the product's price when
// an order was refused for a changed price: the cart now shows, and the next order pays, the new
// one).
type LinePriceUpdated struct {
	UserID    int64        `json:"user_id"`
	ProductID int64        `json:"product_id"`
	OldPrice  domain.Money `json:"old_price"`
	NewPrice  domain.Money `json:"new_price"`
}

// CheckedOut.v1: the cart became order OrderID and is empty again.
type CheckedOut struct {
	UserID  int64 `json:"user_id"`
	OrderID int64 `json:"order_id"`
}

var registry = domain.Registry{
	"CartItemAdded": func() domain.Event { return &ItemAdded{} }, "CartQuantityChanged": func() domain.Event { return &QuantityChanged{} },
	"CartItemRemoved": func() domain.Event { return &ItemRemoved{} }, "CartCleared": func() domain.Event { return &Cleared{} },
	"CartPromoApplied": func() domain.Event { return &PromoApplied{} }, "CartPromoRemoved": func() domain.Event { return &PromoRemoved{} },
	"CartCheckedOut": func() domain.Event { return &CheckedOut{} }, "CartLinePriceUpdated": func() domain.Event { return &LinePriceUpdated{} },
}

func (ItemAdded) EventType() string        { return "CartItemAdded" }
func (QuantityChanged) EventType() string  { return "CartQuantityChanged" }
func (ItemRemoved) EventType() string      { return "CartItemRemoved" }
func (Cleared) EventType() string          { return "CartCleared" }
func (PromoApplied) EventType() string     { return "CartPromoApplied" }
func (PromoRemoved) EventType() string     { return "CartPromoRemoved" }
func (CheckedOut) EventType() string       { return "CartCheckedOut" }
func (LinePriceUpdated) EventType() string { return "CartLinePriceUpdated" }

// Every cart event is at schema version 1 but ItemAdded (2).
func (ItemAdded) SchemaVersion() int        { return 2 }
func (QuantityChanged) SchemaVersion() int  { return 1 }
func (ItemRemoved) SchemaVersion() int      { return 1 }
func (Cleared) SchemaVersion() int          { return 1 }
func (PromoApplied) SchemaVersion() int     { return 1 }
func (PromoRemoved) SchemaVersion() int     { return 1 }
func (CheckedOut) SchemaVersion() int       { return 1 }
func (LinePriceUpdated) SchemaVersion() int { return 1 }

// Decode turns a stored cart event into its struct (by value).
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return registry.Decode(eventType, schemaVersion, data)
}

// Line is one product in the cart.
type Line struct {
	ProductID int64        `json:"product_id"`
	Quantity  int64        `json:"quantity"`
	UnitPrice domain.Money `json:"unit_price"`
}

// State is a cart's whole state, as a snapshot stores it.
type State struct {
	UserID  int64  `json:"user_id"`
	Lines   []Line `json:"lines"`
	PromoID int64  `json:"promo_id,omitempty"`
	Code    string `json:"code,omitempty"`
}

// SnapshotSchemaVersion is the version of State in snapshots.
const SnapshotSchemaVersion = 1

// Cart is a user's cart. It changes only by recording events.
type Cart struct {
	s       State
	version int64
	changes []domain.Event
}

// New returns the empty cart of a user who never had one.
func New(userID int64) *Cart { return &Cart{s: State{UserID: userID}} }

// Rehydrate rebuilds a cart from its stream (empty when the stream is).
func Rehydrate(userID int64, history []domain.Event) *Cart {
	c := New(userID)
	for _, e := range history {
		c.apply(e)
		c.version++
	}
	return c
}

// RehydrateFrom rebuilds a cart from a snapshot at version and the events after it.
func RehydrateFrom(s State, version int64, tail []domain.Event) (*Cart, error) {
	if s.UserID <= 0 || version <= 0 {
		return nil, domain.Invalid("snapshot", "impossible cart snapshot")
	}
	c := &Cart{s: State{UserID: s.UserID, Lines: slices.Clone(s.Lines), PromoID: s.PromoID, Code: s.Code}, version: version}
	for _, e := range tail {
		c.apply(e)
		c.version++
	}
	return c, nil
}

// Snapshot returns the cart's state.
func (c *Cart) Snapshot() State {
	s := c.s
	s.Lines = slices.Clone(c.s.Lines)
	return s
}

// Accessors.
func (c *Cart) UserID() int64           { return c.s.UserID }
func (c *Cart) Lines() []Line           { return slices.Clone(c.s.Lines) }
func (c *Cart) PromoID() int64          { return c.s.PromoID }
func (c *Cart) Code() string            { return c.s.Code }
func (c *Cart) Version() int64          { return c.version }
func (c *Cart) Changes() []domain.Event { return c.changes }

func (c *Cart) line(productID int64) (Line, int) {
	i := slices.IndexFunc(c.s.Lines, func(l Line) bool { return l.ProductID == productID })
	if i < 0 {
		return Line{}, -1
	}
	return c.s.Lines[i], i
}

func checkQuantity(q int64) error {
	if q < MinQuantity || q > MaxQuantity {
		return domain.Invalid("quantity", "quantity must be a whole number from %d to %d", MinQuantity, MaxQuantity)
	}
	return nil
}

// Product is what the cart needs to know of a product when it is added.
type Product struct {
	ID      int64
	Name    string
	Price   domain.Money
	Stock   int64
	Deleted bool
}

// Add adds quantity of a product: a line already there grows (to at most MaxQuantity); a
// deleted or out-of-stock product cannot be added, nor more than its stock.
func (c *Cart) Add(p Product, quantity int64) error {
	if err := checkQuantity(quantity); err != nil {
		return err
	}
	if p.Deleted || p.ID <= 0 {
		return &domain.Error{Kind: domain.ErrNotFound, Field: "product_id", Message: "product not found"}
	}
	l, i := c.line(p.ID)
	if i < 0 && len(c.s.Lines) >= MaxLines {
		return domain.Conflict("a cart holds at most %d lines", MaxLines)
	}
	if l.Quantity+quantity > MaxQuantity {
		return domain.Invalid("quantity", "a line holds at most %d", MaxQuantity)
	}
	if err := p.holds(l.Quantity + quantity); err != nil {
		return err
	}
	c.record(ItemAdded{UserID: c.s.UserID, ProductID: p.ID, Quantity: quantity, UnitPrice: p.Price, Name: p.Name})
	return nil
}

// holds refuses a line of quantity more than the product has in stock.
func (p Product) holds(quantity int64) error {
	if p.Stock < quantity {
		return &domain.Error{Kind: domain.ErrConflict, Field: "quantity", Message: fmt.Sprintf("only %d in stock", p.Stock)}
	}
	return nil
}

// SetQuantity changes the quantity of p's line. Raising it adds to the cart, so it is checked as
// Add is (the product still sold, enough in stock); lowering it always goes.
func (c *Cart) SetQuantity(p Product, quantity int64) error {
	if err := checkQuantity(quantity); err != nil {
		return err
	}
	l, i := c.line(p.ID)
	if i < 0 {
		return domain.NotFound("product %d is not in the cart", p.ID)
	}
	if l.Quantity == quantity {
		return nil
	}
	if quantity > l.Quantity {
		if p.Deleted {
			return &domain.Error{Kind: domain.ErrConflict, Field: "product_id",
				Message: fmt.Sprintf("product %d is no longer sold: its line can only be lowered or removed", p.ID)}
		}
		if err := p.holds(quantity); err != nil {
			return err
		}
	}
	c.record(QuantityChanged{UserID: c.s.UserID, ProductID: p.ID, Quantity: quantity})
	return nil
}

// Remove removes a line.
func (c *Cart) Remove(productID int64) error {
	if _, i := c.line(productID); i < 0 {
		return domain.NotFound("product %d is not in the cart", productID)
	}
	c.record(ItemRemoved{UserID: c.s.UserID, ProductID: productID})
	return nil
}

// Clear empties the cart (no event when it is empty already).
func (c *Cart) Clear() {
	if len(c.s.Lines) > 0 || c.s.PromoID != 0 {
		c.record(Cleared{UserID: c.s.UserID})
	}
}

// ApplyPromo attaches a redeemable promo (one per cart).
func (c *Cart) ApplyPromo(promoID int64, code string) error {
	if c.s.PromoID != 0 {
		if c.s.PromoID == promoID {
			return nil
		}
		return &domain.Error{Kind: domain.ErrConflict, Field: "code", Message: "the cart already has a code; remove it first"}
	}
	c.record(PromoApplied{UserID: c.s.UserID, PromoID: promoID, Code: code})
	return nil
}

// RemovePromo detaches the promo.
func (c *Cart) RemovePromo() error {
	if c.s.PromoID == 0 {
		return domain.NotFound("the cart has no code")
	}
	c.record(PromoRemoved{UserID: c.s.UserID})
	return nil
}

// Reprice takes the products' current prices (by product id) for the lines whose remembered price
// differs, and reports whether any did. A product missing from current keeps its line as it is.
func (c *Cart) Reprice(current map[int64]domain.Money) bool {
	changed := false
	for _, l := range c.s.Lines {
		if p, ok := current[l.ProductID]; ok && p != l.UnitPrice {
			c.record(LinePriceUpdated{UserID: c.s.UserID, ProductID: l.ProductID, OldPrice: l.UnitPrice, NewPrice: p})
			changed = true
		}
	}
	return changed
}

// CheckOut empties the cart into an order.
func (c *Cart) CheckOut(orderID int64) error {
	if len(c.s.Lines) == 0 {
		return &domain.Error{Kind: domain.ErrConflict, Field: "cart", Message: "the cart is empty"}
	}
	c.record(CheckedOut{UserID: c.s.UserID, OrderID: orderID})
	return nil
}

func (c *Cart) record(e domain.Event) {
	c.apply(e)
	c.changes = append(c.changes, e)
}

func (c *Cart) apply(e domain.Event) {
	s := &c.s
	switch e := e.(type) {
	case ItemAdded:
		if _, i := c.line(e.ProductID); i >= 0 {
			s.Lines[i].Quantity += e.Quantity
		} else {
			s.Lines = append(s.Lines, Line{ProductID: e.ProductID, Quantity: e.Quantity, UnitPrice: e.UnitPrice})
		}
	case QuantityChanged:
		if _, i := c.line(e.ProductID); i >= 0 {
			s.Lines[i].Quantity = e.Quantity
		}
	case ItemRemoved:
		s.Lines = slices.DeleteFunc(s.Lines, func(l Line) bool { return l.ProductID == e.ProductID })
	case Cleared, CheckedOut:
		s.Lines, s.PromoID, s.Code = nil, 0, ""
	case PromoApplied:
		s.PromoID, s.Code = e.PromoID, e.Code
	case PromoRemoved:
		s.PromoID, s.Code = 0, ""
	case LinePriceUpdated:
		if _, i := c.line(e.ProductID); i >= 0 {
			s.Lines[i].UnitPrice = e.NewPrice
		}
	}
}
