// Package order is the orders' domain: an order placed from a cart (lines with their price
// snapshot, totals, a copy of the address), its payment and its life:
// pending_payment → paid → shipped → delivered, with cancelled and refunded.
package order

import (
	"fmt"
	"slices"

	"github.com/techvault/techvault/domain"
)

// StreamType of orders.
const StreamType = "order"

// StreamID is the event stream of one order.
func StreamID(id int64) string { return fmt.Sprintf("order-%d", id) }

// IntentStreamType is the type of the stream of one PaymentIntent, which names the order it was
// made for: Stripe's word about an intent finds its order by it when the word carries no order id
// (a charge Stripe did not copy the intent's metadata to). It is appended in the same atomic
// append as the order's PaymentRequested.
const IntentStreamType = "payment_intent"

// IntentStreamID is the stream of PaymentIntent intentID.
func IntentStreamID(intentID string) string { return "payment-intent-" + intentID }

// IntentMade.v1: PaymentIntent IntentID was made for order OrderID (the only event of its stream).
type IntentMade struct {
	IntentID string `json:"intent_id"`
	OrderID  int64  `json:"order_id"`
}

// Statuses.
const (
	PendingPayment = "pending_payment"
	Paid           = "paid"
	Shipped        = "shipped"
	Delivered      = "delivered"
	Cancelled      = "cancelled"
	Refunded       = "refunded"
)

// Line is one product of an order, with its price when the order was placed.
type Line struct {
	ProductID int64        `json:"product_id"`
	Name      string       `json:"name"`
	Quantity  int64        `json:"quantity"`
	UnitPrice domain.Money `json:"unit_price"`
	Total     domain.Money `json:"total"`
}

// Address is the order's copy of the delivery address, sealed with the customer's key (personal
// data: an erased customer's orders keep their totals, not their address).
type Address struct {
	City     string `json:"city"`
	PostCode string `json:"post_code"`
	Country  string `json:"country"`
}

// Notification says whether an order event tells its customer something, and what (no personal
// data: notifications are stored readable).
func Notification(e domain.Event) (userID int64, kind, message string, ok bool) {
	switch e := e.(type) {
	case MarkedPaid:
		return e.UserID, "order_paid", fmt.Sprintf("Thank you! Order #%d is paid; we are preparing it.", e.OrderID), true
	case MarkedShipped:
		return e.UserID, "order_shipped", fmt.Sprintf("Order #%d is on its way.", e.OrderID), true
	case MarkedDelivered:
		return e.UserID, "order_delivered", fmt.Sprintf("Order #%d was delivered.", e.OrderID), true
	case MarkedCancelled:
		return e.UserID, "order_cancelled", fmt.Sprintf("Order #%d was cancelled.", e.OrderID), true
	case MarkedRefunded:
		return e.UserID, "order_refunded", fmt.Sprintf("Order #%d was refunded.", e.OrderID), true
	}
	return 0, "", "", false
}

// Placed.v1: an order was placed from the customer's cart. Subtotal is the sum of the lines'
// totals; Discount what the promo took (rounded half up to the cent for a percentage); Total =
// Subtotal − Discount.
type Placed struct {
	OrderID   int64        `json:"order_id"`
	UserID    int64        `json:"user_id"`
	Lines     []Line       `json:"lines"`
	Subtotal  domain.Money `json:"subtotal"`
	Discount  domain.Money `json:"discount"`
	Total     domain.Money `json:"total"`
	Currency  string       `json:"currency"`
	PromoID   int64        `json:"promo_id,omitempty"`
	PromoCode string       `json:"promo_code,omitempty"`
	AddressID int64        `json:"address_id"`
	Address   Address      `json:"address"`
	// Email is the customer's primary address then (sealed): where the order's mail goes.
	Email string `json:"email,omitempty"`
}

// PaymentRequested.v1: a Stripe PaymentIntent was made for the order's total (attempt n).
type PaymentRequested struct {
	OrderID  int64  `json:"order_id"`
	IntentID string `json:"intent_id"`
	Attempt  int    `json:"attempt"`
}

// PaymentFailed.v1: Stripe reported the intent failed (a new attempt may follow).
type PaymentFailed struct {
	OrderID       int64  `json:"order_id"`
	IntentID      string `json:"intent_id"`
	StripeEventID string `json:"stripe_event_id"`
	Reason        string `json:"reason"`
}

// MarkedPaid.v1: Stripe reported the payment of the order's total. An order whose discount
// covers its whole subtotal has nothing to charge: it is recorded paid in the append that places
// it, with an empty IntentID and StripeEventID and an Amount of 0.
type MarkedPaid struct {
	OrderID       int64        `json:"order_id"`
	UserID        int64        `json:"user_id"`
	IntentID      string       `json:"intent_id"`
	StripeEventID string       `json:"stripe_event_id"`
	Amount        domain.Money `json:"amount"`
}

// MarkedShipped.v1, MarkedDelivered.v1: an admin moved the order on.
type MarkedShipped struct {
	OrderID int64 `json:"order_id"`
	UserID  int64 `json:"user_id"`
}

// MarkedDelivered.v1: the order was delivered.
type MarkedDelivered struct {
	OrderID int64 `json:"order_id"`
	UserID  int64 `json:"user_id"`
}

// MarkedCancelled.v1: the order was cancelled (by the customer, an admin, or for want of
// payment); its stock and promo use are released in the same append.
type MarkedCancelled struct {
	OrderID int64  `json:"order_id"`
	UserID  int64  `json:"user_id"`
	Reason  string `json:"reason"`
}

// MarkedRefunded.v1: the order's payment was refunded through Stripe. RefundID is empty when
// the refund was made outside the store (Stripe's charge.refunded reported it) or when nothing
// was charged (an order paid as placed).
type MarkedRefunded struct {
	OrderID  int64        `json:"order_id"`
	UserID   int64        `json:"user_id"`
	RefundID string       `json:"refund_id"`
	Amount   domain.Money `json:"amount"`
}

// StripeEventIgnored.v1: a Stripe event about the order changed nothing (recorded so the same
// event id is never processed twice).
type StripeEventIgnored struct {
	OrderID       int64  `json:"order_id"`
	StripeEventID string `json:"stripe_event_id"`
	Type          string `json:"type"`
	Reason        string `json:"reason"`
}

var registry = domain.Registry{
	"OrderPlaced": func() domain.Event { return &Placed{} }, "OrderPaymentRequested": func() domain.Event { return &PaymentRequested{} },
	"OrderPaymentFailed": func() domain.Event { return &PaymentFailed{} }, "OrderPaid": func() domain.Event { return &MarkedPaid{} },
	"OrderShipped": func() domain.Event { return &MarkedShipped{} }, "OrderDelivered": func() domain.Event { return &MarkedDelivered{} },
	"OrderCancelled": func() domain.Event { return &MarkedCancelled{} }, "OrderRefunded": func() domain.Event { return &MarkedRefunded{} },
	"OrderStripeEventIgnored": func() domain.Event { return &StripeEventIgnored{} },
	"PaymentIntentMade":       func() domain.Event { return &IntentMade{} },
}

func (Placed) EventType() string             { return "OrderPlaced" }
func (PaymentRequested) EventType() string   { return "OrderPaymentRequested" }
func (PaymentFailed) EventType() string      { return "OrderPaymentFailed" }
func (MarkedPaid) EventType() string         { return "OrderPaid" }
func (MarkedShipped) EventType() string      { return "OrderShipped" }
func (MarkedDelivered) EventType() string    { return "OrderDelivered" }
func (MarkedCancelled) EventType() string    { return "OrderCancelled" }
func (MarkedRefunded) EventType() string     { return "OrderRefunded" }
func (StripeEventIgnored) EventType() string { return "OrderStripeEventIgnored" }
func (IntentMade) EventType() string         { return "PaymentIntentMade" }

// Every order event is at schema version 1.
func (Placed) SchemaVersion() int             { return 1 }
func (PaymentRequested) SchemaVersion() int   { return 1 }
func (PaymentFailed) SchemaVersion() int      { return 1 }
func (MarkedPaid) SchemaVersion() int         { return 1 }
func (MarkedShipped) SchemaVersion() int      { return 1 }
func (MarkedDelivered) SchemaVersion() int    { return 1 }
func (MarkedCancelled) SchemaVersion() int    { return 1 }
func (MarkedRefunded) SchemaVersion() int     { return 1 }
func (StripeEventIgnored) SchemaVersion() int { return 1 }
func (IntentMade) SchemaVersion() int         { return 1 }

// IntentOrder is the order a PaymentIntent's stream names (0 for an intent this store did not
// make, or made before intents had streams).
func IntentOrder(history []domain.Event) int64 {
	for _, e := range history {
		if m, ok := e.(IntentMade); ok {
			return m.OrderID
		}
	}
	return 0
}

// Decode turns a stored order event into its struct (by value).
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return registry.Decode(eventType, schemaVersion, data)
}

// Order is one order. It changes only by recording events.
type Order struct {
	placed   Placed
	status   string
	intentID string
	intents  []string // every PaymentIntent made for the order
	paidWith string   // the PaymentIntent that paid it (any of intents; "" when nothing was charged)
	attempts int
	failed   bool     // the latest intent failed
	stripe   []string // Stripe event ids already handled
	version  int64
	changes  []domain.Event
}

// PlaceInput is a priced order to place.
type PlaceInput struct {
	OrderID, UserID, AddressID int64
	Lines                      []Line
	Discount                   domain.Money
	Currency                   string
	PromoID                    int64
	PromoCode                  string
	Address                    Address
	Email                      string
}

// Place records a new order; totals are computed here from the lines.
func Place(in PlaceInput) (*Order, error) {
	if len(in.Lines) == 0 {
		return nil, &domain.Error{Kind: domain.ErrConflict, Field: "cart", Message: "the cart is empty"}
	}
	var subtotal domain.Money
	lines := slices.Clone(in.Lines)
	for i, l := range lines {
		if l.Quantity < 1 || l.UnitPrice < 0 {
			return nil, domain.Invalid("lines", "impossible order line")
		}
		lines[i].Total = l.UnitPrice * domain.Money(l.Quantity)
		subtotal += lines[i].Total
	}
	if in.Discount < 0 || in.Discount > subtotal {
		return nil, domain.Invalid("discount", "impossible discount")
	}
	o := &Order{}
	o.record(Placed{OrderID: in.OrderID, UserID: in.UserID, Lines: lines, Subtotal: subtotal, Discount: in.Discount,
		Total: subtotal - in.Discount, Currency: in.Currency, PromoID: in.PromoID, PromoCode: in.PromoCode,
		AddressID: in.AddressID, Address: in.Address, Email: in.Email})
	if subtotal == in.Discount { // nothing to charge (a 100 % code, say): paid as placed
		o.record(MarkedPaid{OrderID: in.OrderID, UserID: in.UserID})
	}
	return o, nil
}

// Rehydrate rebuilds an order from its stream; nil when it is empty.
func Rehydrate(history []domain.Event) *Order {
	if len(history) == 0 {
		return nil
	}
	o := &Order{}
	for _, e := range history {
		o.apply(e)
		o.version++
	}
	return o
}

// Accessors.
func (o *Order) ID() int64               { return o.placed.OrderID }
func (o *Order) UserID() int64           { return o.placed.UserID }
func (o *Order) Placed() Placed          { return o.placed }
func (o *Order) Status() string          { return o.status }
func (o *Order) IntentID() string        { return o.intentID }
func (o *Order) PaidIntentID() string    { return o.paidWith }
func (o *Order) Attempts() int           { return o.attempts }
func (o *Order) Version() int64          { return o.version }
func (o *Order) Changes() []domain.Event { return o.changes }

// LastPaymentFailed reports whether the latest PaymentIntent failed (a new one may be made).
func (o *Order) LastPaymentFailed() bool { return o.failed }

// SeenStripeEvent reports whether a Stripe event was handled already.
func (o *Order) SeenStripeEvent(id string) bool { return slices.Contains(o.stripe, id) }

func (o *Order) transition(to string) error {
	allowed := map[string][]string{
		Paid:      {PendingPayment},
		Shipped:   {Paid},
		Delivered: {Shipped},
		Cancelled: {PendingPayment},
		Refunded:  {Paid, Shipped, Delivered},
	}
	if !slices.Contains(allowed[to], o.status) {
		return domain.Conflict("order %d is %s; it cannot become %s", o.ID(), o.status, to)
	}
	return nil
}

// RequestPayment records a new PaymentIntent for a pending order.
func (o *Order) RequestPayment(intentID string) error {
	if o.status != PendingPayment {
		return domain.Conflict("order %d is %s; there is nothing to pay", o.ID(), o.status)
	}
	o.record(PaymentRequested{OrderID: o.ID(), IntentID: intentID, Attempt: o.attempts + 1})
	return nil
}

// PaymentSucceeded applies Stripe's word that an intent was paid: a pending order whose intent it
// is, paid its exact total, becomes paid. A repeat of a Stripe event changes nothing; any other
// success (an intent not made for the order, another amount or currency, an order that moved on
// meanwhile) is recorded as ignored, with the reason, for an admin to settle.
func (o *Order) PaymentSucceeded(stripeEventID, intentID string, amount domain.Money, currency string) {
	if o.SeenStripeEvent(stripeEventID) {
		return
	}
	// Stripe's word is recorded whatever it says, so that it is answered once: a payment that is
	// not this order's, or not its total, is kept for the audit and leaves the order as it is.
	if !slices.Contains(o.intents, intentID) {
		o.record(StripeEventIgnored{OrderID: o.ID(), StripeEventID: stripeEventID, Type: "payment_succeeded",
			Reason: fmt.Sprintf("intent %s was not made for this order", intentID)})
		return
	}
	if amount != o.placed.Total || currency != o.placed.Currency {
		o.record(StripeEventIgnored{OrderID: o.ID(), StripeEventID: stripeEventID, Type: "payment_succeeded",
			Reason: fmt.Sprintf("the payment (%s %s) does not match the order's total (%s %s)", amount, currency, o.placed.Total, o.placed.Currency)})
		return
	}
	if o.status != PendingPayment {
		o.record(StripeEventIgnored{OrderID: o.ID(), StripeEventID: stripeEventID, Type: "payment_succeeded", Reason: "order is " + o.status})
		return
	}
	o.record(MarkedPaid{OrderID: o.ID(), UserID: o.UserID(), IntentID: intentID, StripeEventID: stripeEventID, Amount: amount})
}

// PaymentFailedFor applies Stripe's word that an intent failed: the order stays payable.
func (o *Order) PaymentFailedFor(stripeEventID, intentID, reason string) {
	if o.SeenStripeEvent(stripeEventID) {
		return
	}
	if !slices.Contains(o.intents, intentID) {
		o.record(StripeEventIgnored{OrderID: o.ID(), StripeEventID: stripeEventID, Type: "payment_failed",
			Reason: fmt.Sprintf("intent %s was not made for this order", intentID)})
		return
	}
	if o.status != PendingPayment {
		o.record(StripeEventIgnored{OrderID: o.ID(), StripeEventID: stripeEventID, Type: "payment_failed", Reason: "order is " + o.status})
		return
	}
	o.record(PaymentFailed{OrderID: o.ID(), IntentID: intentID, StripeEventID: stripeEventID, Reason: reason})
}

// RefundReported applies Stripe's word that the order's charge was refunded (charge.refunded):
// a refund of the whole total made outside the store (in Stripe's dashboard) refunds the order.
// To a refunded order (the store's own refund, or this word delivered again) it adds nothing. A
// partial refund, or a charge that is not this order's, is recorded once for an admin and
// changes nothing.
func (o *Order) RefundReported(stripeEventID, intentID string, amount domain.Money, currency string) {
	if o.SeenStripeEvent(stripeEventID) || o.status == Refunded && slices.Contains(o.intents, intentID) {
		return
	}
	ignore := func(reason string) {
		o.record(StripeEventIgnored{OrderID: o.ID(), StripeEventID: stripeEventID, Type: "charge_refunded", Reason: reason})
	}
	switch {
	case !slices.Contains(o.intents, intentID):
		ignore(fmt.Sprintf("intent %s was not made for this order", intentID))
	case amount != o.placed.Total || currency != o.placed.Currency:
		ignore(fmt.Sprintf("a refund of %s %s is not the order's total (%s %s): settle it by hand", amount, currency, o.placed.Total, o.placed.Currency))
	case o.transition(Refunded) != nil:
		ignore("order is " + o.status)
	default:
		o.record(MarkedRefunded{OrderID: o.ID(), UserID: o.UserID(), Amount: o.placed.Total})
	}
}

// Ship, Deliver, Cancel and Refund move the order on; a backward or skipping move is a conflict.
func (o *Order) Ship() error {
	if err := o.transition(Shipped); err != nil {
		return err
	}
	o.record(MarkedShipped{OrderID: o.ID(), UserID: o.UserID()})
	return nil
}

// Deliver marks a shipped order delivered.
func (o *Order) Deliver() error {
	if err := o.transition(Delivered); err != nil {
		return err
	}
	o.record(MarkedDelivered{OrderID: o.ID(), UserID: o.UserID()})
	return nil
}

// Cancel cancels an unpaid order.
func (o *Order) Cancel(reason string) error {
	if err := o.transition(Cancelled); err != nil {
		return err
	}
	o.record(MarkedCancelled{OrderID: o.ID(), UserID: o.UserID(), Reason: reason})
	return nil
}

// Refund records the refund of a paid order.
func (o *Order) Refund(refundID string) error {
	if err := o.transition(Refunded); err != nil {
		return err
	}
	o.record(MarkedRefunded{OrderID: o.ID(), UserID: o.UserID(), RefundID: refundID, Amount: o.placed.Total})
	return nil
}

// CanRefund reports whether a refund may be asked of Stripe now.
func (o *Order) CanRefund() error { return o.transition(Refunded) }

func (o *Order) record(e domain.Event) {
	o.apply(e)
	o.changes = append(o.changes, e)
}

func (o *Order) apply(e domain.Event) {
	switch e := e.(type) {
	case Placed:
		o.placed, o.status = e, PendingPayment
	case PaymentRequested:
		o.intentID, o.attempts, o.failed = e.IntentID, e.Attempt, false
		o.intents = append(o.intents, e.IntentID)
	case PaymentFailed:
		o.stripe = append(o.stripe, e.StripeEventID)
		o.failed = e.IntentID == o.intentID
	case MarkedPaid:
		o.status, o.paidWith = Paid, e.IntentID
		if e.StripeEventID != "" { // paid with nothing to charge: no word of Stripe's
			o.stripe = append(o.stripe, e.StripeEventID)
		}
	case StripeEventIgnored:
		o.stripe = append(o.stripe, e.StripeEventID)
	case MarkedShipped:
		o.status = Shipped
	case MarkedDelivered:
		o.status = Delivered
	case MarkedCancelled:
		o.status = Cancelled
	case MarkedRefunded:
		o.status = Refunded
	}
}
