package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/payments"
)

// OrderResult is an order after a command. It holds no personal data (it is stored with
// Idempotency-Keys).
type OrderResult struct {
	OrderID  int64
	UserID   int64
	Status   string
	Subtotal domain.Money
	Discount domain.Money
	Total    domain.Money
	Currency string
	Position int64
}

func withOrderPosition(r OrderResult, pos int64) OrderResult { r.Position = pos; return r }

func orderResult(o *order.Order) OrderResult {
	p := o.Placed()
	return OrderResult{OrderID: o.ID(), UserID: o.UserID(), Status: o.Status(), Subtotal: p.Subtotal,
		Discount: p.Discount, Total: p.Total, Currency: p.Currency}
}

// PlaceOrder is the command to turn the caller's cart into an order delivered to one of their
// addresses.
type PlaceOrder struct {
	UserID, AddressID int64
}

// PlaceOrder is one atomic append across streams, each at the version it was decided on: the new
// order (lines with their price snapshot, totals, a sealed copy of the address), the cart (checked
// out), the promo (one use against its limit) and every product's stock (reserved). A price that
// changed since it was added refuses the order (domain.ErrPriceChanged); a race with another order
// (stock, promo uses) re-decides on fresh state.
func (h *Shop) PlaceOrder(ctx context.Context, md domain.Metadata, cmd PlaceOrder) (OrderResult, error) {
	id, err := h.ids.NextID(ctx, OrderIDs)
	if err != nil {
		return OrderResult{}, err
	}
	unlock, err := h.queueReservations(ctx, cmd.UserID)
	if err != nil {
		return OrderResult{}, err
	}
	res, err := h.placeOrder(ctx, md, id, cmd)
	unlock()
	var de *domain.Error
	if errors.Is(err, domain.ErrPriceChanged) && errors.As(err, &de) {
		// The refusal shows the customer the new prices: the cart takes them, so that the next
		// order (placed knowingly, under a new Idempotency-Key) pays them.
		pos, rerr := h.repriceCart(ctx, md, cmd.UserID, de)
		if rerr != nil {
			return OrderResult{}, rerr
		}
		if pos > 0 {
			err = &RefusedAt{Err: err, Position: pos}
		}
	}
	return res, err
}

// queueReservations waits for this process's orders of the products in the user's cart to be
// decided and appended, and keeps the next ones waiting until unlock (see stripedLocks). The cart
// is taken from the cache when it holds it: it only names the products to queue on (a cart another
// process moved on queues on the wrong ones, which costs a wait, never a wrong order: the order is
// decided on a checked cart), so reading its stream here would be a second read per order.
func (h *Shop) queueReservations(ctx context.Context, userID int64) (unlock func(), err error) {
	c, err := h.loadCart(context.WithValue(ctx, cacheTraceKey{}, &cacheTrace{}), userID)
	if err != nil {
		return nil, err
	}
	lines := c.Lines()
	ids := make([]int64, 0, len(lines))
	for _, l := range lines {
		ids = append(ids, l.ProductID)
	}
	return h.reserving.lock(ids), nil
}

// repriceCart takes the products' current prices into the cart's lines. Under the order's
// Idempotency-Key, the key is stored with the reprice, its answer the refusal: a repeat of the
// order (a client that lost the 409, say) is refused again instead of placing the order at prices
// its customer has not seen; the order placed knowingly comes with a new key.
// It returns the position of its append (0 when the cart had the prices already).
func (h *Shop) repriceCart(ctx context.Context, md domain.Metadata, userID int64, refused *domain.Error) (int64, error) {
	answer := storedRefusal{Refused: &refusal{Kind: refusedPriceChanged, Field: refused.Field, Message: refused.Message}}
	res, err := execute(ctx, h.store, md, "RepriceCart", redecideOnConflict, func(r storedRefusal, pos int64) storedRefusal { r.at = pos; return r },
		func(ctx context.Context) (storedRefusal, []Change, error) {
			c, err := h.loadCart(ctx, userID)
			if err != nil {
				return answer, nil, err
			}
			current := map[int64]domain.Money{}
			for _, l := range c.Lines() {
				p, err := loadAggregate(ctx, h.load, productKind, l.ProductID)
				if err != nil {
					return answer, nil, err
				}
				if p.Exists() {
					current[l.ProductID] = p.Price()
				}
			}
			if !c.Reprice(current) {
				return answer, nil, nil
			}
			return answer, []Change{cartChange(c)}, nil
		})
	return res.at, err
}

func (h *Shop) placeOrder(ctx context.Context, md domain.Metadata, id int64, cmd PlaceOrder) (OrderResult, error) {
	return execute(ctx, h.store, md, "PlaceOrder", redecideOnConflict, withOrderPosition,
		func(ctx context.Context) (OrderResult, []Change, error) {
			u, err := loadRecent(ctx, h.load, userKind, cmd.UserID) // the address: read, see RecentReads
			if err != nil {
				return OrderResult{}, nil, err
			}
			if !u.Exists() {
				return OrderResult{}, nil, accountGone()
			}
			c, err := h.loadCart(ctx, cmd.UserID)
			if err != nil {
				return OrderResult{}, nil, err
			}
			if len(c.Lines()) == 0 {
				return OrderResult{}, nil, &domain.Error{Kind: domain.ErrConflict, Field: "cart", Message: "the cart is empty"}
			}
			addr, ok := u.Address(cmd.AddressID)
			if !ok {
				return OrderResult{}, nil, &domain.Error{Kind: domain.ErrNotFound, Field: "address_id", Message: "address not found"}
			}
			lines, products, err := h.reserve(ctx, id, c.Lines())
			if err != nil {
				return OrderResult{}, nil, err
			}
			changes := make([]Change, 0, len(products)+3)
			var discount domain.Money
			var p *promo.Promo
			if c.PromoID() != 0 {
				if p, err = loadRecent(ctx, h.load, promoKind, c.PromoID()); err != nil { // appended to only with a limit
					return OrderResult{}, nil, err
				}
				if err := p.Use(id, h.now()); err != nil {
					return OrderResult{}, nil, err
				}
				var subtotal domain.Money
				for _, l := range lines {
					subtotal += l.UnitPrice * domain.Money(l.Quantity)
				}
				discount = p.Discount(subtotal)
				changes = append(changes, promoChange(p))
			}
			o, err := order.Place(order.PlaceInput{OrderID: id, UserID: cmd.UserID, AddressID: cmd.AddressID, Lines: lines,
				Discount: discount, Currency: catalog.Currency, PromoID: c.PromoID(), PromoCode: c.Code(),
				Address: order.Address{City: string(addr.City), PostCode: string(addr.PostCode), Country: string(addr.Country)},
				Email:   string(primaryEmail(u))})
			if err != nil {
				return OrderResult{}, nil, err
			}
			if err := c.CheckOut(id); err != nil {
				return OrderResult{}, nil, err
			}
			changes = append(changes, orderChange(o), cartChange(c))
			for _, pr := range products {
				changes = append(changes, productChange(pr))
			}
			return orderResult(o), changes, nil
		})
}

// reserve prices the cart's lines at the products' current prices (refusing a changed one) and
// reserves their stock for the order.
func (h *Shop) reserve(ctx context.Context, orderID int64, lines []cart.Line) ([]order.Line, []*catalog.Product, error) {
	out := make([]order.Line, 0, len(lines))
	products := make([]*catalog.Product, 0, len(lines))
	for _, l := range lines {
		p, err := loadForAppend(ctx, h.load, productKind, l.ProductID) // its stock is reserved
		if err != nil {
			return nil, nil, err
		}
		if p.Exists() && p.Price() != l.UnitPrice {
			return nil, nil, &domain.Error{Kind: domain.ErrPriceChanged, Field: "cart",
				Message: fmt.Sprintf("the price of %s changed from %s to %s; the cart now holds the new price: place the order again to accept it",
					p.Name(), l.UnitPrice, p.Price())}
		}
		if err := p.Reserve(orderID, l.Quantity); err != nil {
			return nil, nil, err
		}
		out = append(out, order.Line{ProductID: p.ID(), Name: p.Name(), Quantity: l.Quantity, UnitPrice: l.UnitPrice})
		products = append(products, p)
	}
	return out, products, nil
}

// ownOrder loads an order of the caller (any order for an admin); another's is not found.
func (h *Shop) ownOrder(ctx context.Context, userID int64, admin bool, id int64) (*order.Order, error) {
	o, _, err := h.ownOrderAt(ctx, userID, admin, id)
	return o, err
}

// ownOrderAt is ownOrder with the log position of the order stream's last event.
func (h *Shop) ownOrderAt(ctx context.Context, userID int64, admin bool, id int64) (*order.Order, int64, error) {
	o, pos, err := h.loadOrderAt(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if !admin && o.UserID() != userID {
		return nil, 0, domain.NotFound("order %d not found", id)
	}
	return o, pos, nil
}

// PaymentResult is an order's PaymentIntent, to hand to the browser.
type PaymentResult struct {
	OrderID      int64
	IntentID     string
	ClientSecret string
	Amount       domain.Money
	Currency     string
	Position     int64
}

// RequestPayment returns the order's PaymentIntent: the current one again while it is usable,
// a new one (next attempt) after a failure or when none was made yet. Stripe's idempotency key
// is derived from the order and attempt, so a repeat never makes a second intent.
func (h *Shop) RequestPayment(ctx context.Context, md domain.Metadata, userID int64, admin bool, orderID int64) (PaymentResult, error) {
	if h.pay == nil {
		return PaymentResult{}, &domain.Error{Kind: domain.ErrUnavailable, Message: "payments are not configured on this server"}
	}
	if !admin { // no PaymentIntent at Stripe for an account that was erased
		if err := ensureAccount(ctx, h.load, userID); err != nil {
			return PaymentResult{}, err
		}
	}
	o, at, err := h.ownOrderAt(ctx, userID, admin, orderID)
	if err != nil {
		return PaymentResult{}, err
	}
	if o.Status() != order.PendingPayment {
		return PaymentResult{}, domain.Conflict("order %d is %s; there is nothing to pay", orderID, o.Status())
	}
	total := o.Placed().Total
	if o.IntentID() != "" && !o.LastPaymentFailed() {
		in, err := h.pay.GetIntent(ctx, o.IntentID())
		if err != nil {
			return PaymentResult{}, err
		}
		// Handed out again, with the position of the append that recorded it (the last of the
		// order's stream and the intent's), so that a repeat of the request that recorded it
		// answers the same.
		made, err := h.store.Load(ctx, order.IntentStreamID(in.ID))
		if err != nil {
			return PaymentResult{}, err
		}
		for _, e := range made {
			at = max(at, e.Position)
		}
		return PaymentResult{OrderID: orderID, IntentID: in.ID, ClientSecret: in.ClientSecret, Amount: total,
			Currency: o.Placed().Currency, Position: at}, nil
	}
	attempt := o.Attempts() + 1
	in, err := h.pay.CreateIntent(ctx, payments.IntentRequest{OrderID: orderID, AmountCents: total.Cents(),
		Currency: o.Placed().Currency, Attempt: attempt, CustomerRef: itoa(o.UserID())})
	if err != nil {
		return PaymentResult{}, err
	}
	var recorded string // the intent a concurrent request recorded for this attempt first
	res, err := execute(ctx, h.store, md, "RequestPayment", redecideOnConflict, withOrderPosition,
		func(ctx context.Context) (OrderResult, []Change, error) {
			o, err := h.loadOrder(ctx, orderID)
			if err != nil {
				return OrderResult{}, nil, err
			}
			recorded = ""
			if o.IntentID() == in.ID {
				return orderResult(o), nil, nil
			}
			if o.Attempts() >= attempt && !o.LastPaymentFailed() {
				// Stripe's idempotency key (order and attempt) gives concurrent requests one
				// intent; should it give another (a key Stripe forgot), the order keeps the one
				// recorded first and every request hands that one out.
				recorded = o.IntentID()
				return orderResult(o), nil, nil
			}
			if err := o.RequestPayment(in.ID); err != nil {
				return OrderResult{}, nil, err
			}
			made := Change{StreamID: order.IntentStreamID(in.ID), StreamType: order.IntentStreamType,
				Events: []domain.Event{order.IntentMade{IntentID: in.ID, OrderID: orderID}}} // a new stream
			return orderResult(o), []Change{orderChange(o), made}, nil
		})
	if err != nil {
		return PaymentResult{}, err
	}
	if recorded != "" {
		if in, err = h.pay.GetIntent(ctx, recorded); err != nil {
			return PaymentResult{}, err
		}
	}
	return PaymentResult{OrderID: orderID, IntentID: in.ID, ClientSecret: in.ClientSecret, Amount: total,
		Currency: o.Placed().Currency, Position: res.Position}, nil
}

// StripeEvent is a verified Stripe webhook event about an order (package payments).
type StripeEvent = payments.Event

// ErrUnknownOrder answers a webhook about an order this store does not have.
var ErrUnknownOrder = errors.New("the event names no order of this store")

// HandleStripeEvent applies a verified Stripe event to its order, once per Stripe event id:
// a success pays a pending order (amount and currency must match), a failure keeps it payable;
// a repeat, or an event that arrives after the order moved on, changes nothing more.
func (h *Shop) HandleStripeEvent(ctx context.Context, md domain.Metadata, ev StripeEvent) (OrderResult, error) {
	switch ev.Type {
	case payments.EventIntentSucceeded, payments.EventIntentFailed, payments.EventIntentCanceled, payments.EventChargeRefunded:
	default:
		return OrderResult{}, nil // not about paying an order
	}
	if ev.OrderID <= 0 && ev.IntentID != "" { // find the order by its intent
		history, err := loadEvents(ctx, h.store, order.IntentStreamID(ev.IntentID), order.Decode)
		if err != nil {
			return OrderResult{}, err
		}
		ev.OrderID = order.IntentOrder(history)
	}
	if ev.OrderID <= 0 {
		return OrderResult{}, ErrUnknownOrder
	}
	md.ActorID = "stripe"
	return execute(ctx, h.store, md, "HandleStripeEvent", redecideOnConflict, withOrderPosition,
		func(ctx context.Context) (OrderResult, []Change, error) {
			o, err := h.loadOrder(ctx, ev.OrderID)
			if errors.Is(err, domain.ErrNotFound) {
				return OrderResult{}, nil, ErrUnknownOrder
			}
			if err != nil {
				return OrderResult{}, nil, err
			}
			var restocked []Change
			switch ev.Type {
			case payments.EventIntentSucceeded:
				o.PaymentSucceeded(ev.ID, ev.IntentID, domain.Money(ev.AmountCents), upper(ev.Currency))
			case payments.EventChargeRefunded:
				unshipped := o.Status() == order.Paid
				o.RefundReported(ev.ID, ev.IntentID, domain.Money(ev.AmountCents), upper(ev.Currency))
				if unshipped && o.Status() == order.Refunded {
					if restocked, err = h.restock(ctx, o, nil); err != nil {
						return OrderResult{}, nil, err
					}
				}
			default:
				o.PaymentFailedFor(ev.ID, ev.IntentID, ev.FailureCode)
			}
			return orderResult(o), append([]Change{orderChange(o)}, restocked...), nil
		})
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// OrderRef names an order and who acts on it.
type OrderRef struct {
	UserID  int64
	Admin   bool
	OrderID int64
}

// ShipOrder and DeliverOrder move a paid order on (admins).
func (h *Shop) ShipOrder(ctx context.Context, md domain.Metadata, id int64) (OrderResult, error) {
	return h.onOrder(ctx, md, "ShipOrder", OrderRef{Admin: true, OrderID: id}, func(o *order.Order) error { return o.Ship() })
}

// DeliverOrder marks a shipped order delivered.
func (h *Shop) DeliverOrder(ctx context.Context, md domain.Metadata, id int64) (OrderResult, error) {
	return h.onOrder(ctx, md, "DeliverOrder", OrderRef{Admin: true, OrderID: id}, func(o *order.Order) error { return o.Deliver() })
}

func (h *Shop) onOrder(ctx context.Context, md domain.Metadata, name string, ref OrderRef, decide func(*order.Order) error) (OrderResult, error) {
	return execute(ctx, h.store, md, name, redecideOnConflict, withOrderPosition,
		func(ctx context.Context) (OrderResult, []Change, error) {
			o, err := h.ownOrder(ctx, ref.UserID, ref.Admin, ref.OrderID)
			if err != nil {
				return OrderResult{}, nil, err
			}
			if err := decide(o); err != nil {
				return OrderResult{}, nil, err
			}
			return orderResult(o), []Change{orderChange(o)}, nil
		})
}

// CancelOrder cancels an unpaid order (its owner, an admin, or the unpaid-order sweeper): the
// order, the stock of each line and the promo use are released in one append.
func (h *Shop) CancelOrder(ctx context.Context, md domain.Metadata, ref OrderRef, reason string) (OrderResult, error) {
	return execute(ctx, h.store, md, "CancelOrder", redecideOnConflict, withOrderPosition,
		func(ctx context.Context) (OrderResult, []Change, error) {
			o, err := h.ownOrder(ctx, ref.UserID, ref.Admin, ref.OrderID)
			if err != nil {
				return OrderResult{}, nil, err
			}
			if err := o.Cancel(reason); err != nil {
				return OrderResult{}, nil, err
			}
			changes, err := h.restock(ctx, o, []Change{orderChange(o)})
			if err != nil {
				return OrderResult{}, nil, err
			}
			if id := o.Placed().PromoID; id != 0 {
				p, err := loadAggregate(ctx, h.load, promoKind, id)
				if err != nil {
					return OrderResult{}, nil, err
				}
				p.ReleaseUse(o.ID())
				changes = append(changes, promoChange(p))
			}
			return orderResult(o), changes, nil
		})
}

// RefundOrder refunds a paid order through Stripe (the PaymentIntent that paid it, which need not
// be the latest: an earlier attempt's success may arrive after a new attempt was made), then
// records it (admins).
func (h *Shop) RefundOrder(ctx context.Context, md domain.Metadata, id int64) (OrderResult, error) {
	o, err := h.loadOrder(ctx, id)
	if err != nil {
		return OrderResult{}, err
	}
	if err := o.CanRefund(); err != nil {
		return OrderResult{}, err
	}
	refundID := "" // nothing was charged (an order paid as placed): nothing to ask of Stripe
	if o.Placed().Total > 0 {
		if h.pay == nil {
			return OrderResult{}, &domain.Error{Kind: domain.ErrUnavailable, Message: "payments are not configured on this server"}
		}
		r, err := h.pay.Refund(ctx, payments.RefundRequest{OrderID: id, IntentID: o.PaidIntentID(), AmountCents: o.Placed().Total.Cents()})
		if err != nil {
			return OrderResult{}, err
		}
		refundID = r.ID
	}
	return execute(ctx, h.store, md, "RefundOrder", redecideOnConflict, withOrderPosition,
		func(ctx context.Context) (OrderResult, []Change, error) {
			o, err := h.loadOrder(ctx, id)
			if err != nil {
				return OrderResult{}, nil, err
			}
			unshipped := o.Status() == order.Paid
			if err := o.Refund(refundID); err != nil {
				return OrderResult{}, nil, err
			}
			changes := []Change{orderChange(o)}
			if unshipped {
				changes, err = h.restock(ctx, o, changes)
			}
			return orderResult(o), changes, err
		})
}

// restock appends to changes the release of the stock of every line of o: what a cancelled
// order reserved, or a refunded one that never left the warehouse, goes back on sale, in the
// same append as the order's change.
func (h *Shop) restock(ctx context.Context, o *order.Order, changes []Change) ([]Change, error) {
	for _, l := range o.Placed().Lines {
		p, err := loadAggregate(ctx, h.load, productKind, l.ProductID)
		if err != nil {
			return nil, err
		}
		p.Release(o.ID(), l.Quantity)
		changes = append(changes, productChange(p))
	}
	return changes, nil
}

// primaryEmail is the account's primary address (sealed), where order mail goes.
func primaryEmail(u *user.User) user.Sealed {
	e, _ := u.PrimaryEmail()
	return e.Email
}
