package commands

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/payments"
)

// Payments is what the order commands need of Stripe (package payments).
type Payments interface {
	// CreateIntent makes a PaymentIntent (idempotent per order and attempt).
	CreateIntent(ctx context.Context, in payments.IntentRequest) (payments.Intent, error)
	// GetIntent reads one back (its client secret, to hand out again).
	GetIntent(ctx context.Context, id string) (payments.Intent, error)
	// Refund refunds an order's payment (idempotent per order).
	Refund(ctx context.Context, in payments.RefundRequest) (payments.Refund, error)
}

// Id kinds of the order platform.
const (
	OrderIDs = "order"
	PromoIDs = "promo"
)

// Shop handles the commands of carts, promo codes and orders.
type Shop struct {
	store EventStore
	ids   IDAllocator
	load  loader
	pay   Payments
	now   func() time.Time
	// reserving queues this process's orders of the same products (see stripedLocks).
	reserving *stripedLocks
}

// NewShop returns the shop's command handlers. pay may be nil (no payment is requested then).
func NewShop(store EventStore, ids IDAllocator, pay Payments, now func() time.Time, opts ...Option) *Shop {
	rs := resilientStore{store}
	if now == nil {
		now = time.Now
	}
	l := newLoader(rs, resilientSnapshots(store), opts)
	return &Shop{store: l.observe(rs), ids: resilientIDs{ids}, load: l, pay: pay, now: now, reserving: &stripedLocks{}}
}

var cartKind = aggregateKind[*cart.Cart, cart.State]{
	name: "cart", streamID: cart.StreamID, streamType: cart.StreamType,
	schemaVersion: cart.SnapshotSchemaVersion, decode: cart.Decode,
	rehydrate: nil, rehydrateFrom: cart.RehydrateFrom,
	snapshot: (*cart.Cart).Snapshot, stateID: func(s cart.State) int64 { return s.UserID },
}

var promoKind = aggregateKind[*promo.Promo, promo.State]{
	name: "promo code", streamID: promo.StreamID, streamType: promo.StreamType,
	schemaVersion: promo.SnapshotSchemaVersion, decode: promo.Decode,
	rehydrate: promo.Rehydrate, rehydrateFrom: promo.RehydrateFrom,
	snapshot: (*promo.Promo).Snapshot, stateID: func(s promo.State) int64 { return s.ID },
}

func (h *Shop) loadCart(ctx context.Context, userID int64) (*cart.Cart, error) {
	k := cartKind
	k.rehydrate = func(history []domain.Event) *cart.Cart { return cart.Rehydrate(userID, history) }
	return loadForAppend(ctx, h.load, k, userID) // every command that loads a cart appends to it
}

func cartChange(c *cart.Cart) Change {
	return withState(Change{StreamID: cart.StreamID(c.UserID()), StreamType: cart.StreamType, ExpectedVersion: c.Version(),
		Events: c.Changes()}, cartKind, c)
}

func promoChange(p *promo.Promo) Change {
	return withState(Change{StreamID: promo.StreamID(p.ID()), StreamType: promo.StreamType, ExpectedVersion: p.Version(),
		Events: p.Changes()}, promoKind, p)
}

// CartResult is what a cart command did.
type CartResult struct {
	UserID   int64
	Position int64
}

func withCartPosition(r CartResult, pos int64) CartResult { r.Position = pos; return r }

// onCart runs a command on the caller's cart, re-deciding on a version clash.
func (h *Shop) onCart(ctx context.Context, md domain.Metadata, name string, userID int64,
	decide func(ctx context.Context, c *cart.Cart) error,
) (CartResult, error) {
	return execute(ctx, h.store, md, name, redecideOnConflict, withCartPosition,
		func(ctx context.Context) (CartResult, []Change, error) {
			if err := ensureAccount(ctx, h.load, userID); err != nil {
				return CartResult{}, nil, err
			}
			c, err := h.loadCart(ctx, userID)
			if err != nil {
				return CartResult{}, nil, err
			}
			if err := decide(ctx, c); err != nil {
				return CartResult{}, nil, err
			}
			return CartResult{UserID: userID}, []Change{cartChange(c)}, nil
		})
}

// AddToCart is the command to add a product to the caller's cart.
type AddToCart struct {
	UserID, ProductID, Quantity int64
}

// AddToCart adds to the line of the product (or opens one at the product's current price).
func (h *Shop) AddToCart(ctx context.Context, md domain.Metadata, cmd AddToCart) (CartResult, error) {
	return h.onCart(ctx, md, "AddToCart", cmd.UserID, func(ctx context.Context, c *cart.Cart) error {
		in, err := h.cartProduct(ctx, cmd.ProductID)
		if err != nil {
			return err
		}
		return c.Add(in, cmd.Quantity)
	})
}

// cartProduct is what a cart knows of a product: read, not appended to (see RecentReads).
func (h *Shop) cartProduct(ctx context.Context, id int64) (cart.Product, error) {
	p, err := loadRecent(ctx, h.load, productKind, id)
	if err != nil {
		return cart.Product{}, err
	}
	in := cart.Product{ID: id, Deleted: !p.Exists()}
	if p.Exists() {
		in.Name, in.Price, in.Stock = p.Name(), p.Price(), p.Stock()
	}
	return in, nil
}

// SetCartQuantity changes a line's quantity (a raise is checked against the product as an add).
func (h *Shop) SetCartQuantity(ctx context.Context, md domain.Metadata, cmd AddToCart) (CartResult, error) {
	return h.onCart(ctx, md, "SetCartQuantity", cmd.UserID, func(ctx context.Context, c *cart.Cart) error {
		in, err := h.cartProduct(ctx, cmd.ProductID)
		if err != nil {
			return err
		}
		return c.SetQuantity(in, cmd.Quantity)
	})
}

// RemoveFromCart removes a line.
func (h *Shop) RemoveFromCart(ctx context.Context, md domain.Metadata, userID, productID int64) (CartResult, error) {
	return h.onCart(ctx, md, "RemoveFromCart", userID, func(_ context.Context, c *cart.Cart) error {
		return c.Remove(productID)
	})
}

// ClearCart empties the caller's cart.
func (h *Shop) ClearCart(ctx context.Context, md domain.Metadata, userID int64) (CartResult, error) {
	return h.onCart(ctx, md, "ClearCart", userID, func(_ context.Context, c *cart.Cart) error {
		c.Clear()
		return nil
	})
}

// promoByCode finds the promo a code names (nil when none does).
func (h *Shop) promoByCode(ctx context.Context, code string) (*promo.Promo, error) {
	norm, err := promo.NormaliseCode(code)
	if err != nil {
		return nil, err
	}
	// Which promo holds the code: read, not appended to (see RecentReads); a code's reservation
	// changes only when a promo is created or deleted, by commands that drop this entry.
	sid := promo.CodeStreamID(norm)
	holder, ok := int64(0), false
	if v, found := h.load.recentState(ctx, sid, promo.CodeStreamType); found {
		holder, ok = v.(int64)
	}
	if !ok {
		history, err := loadEvents(ctx, h.store, sid, promo.Decode)
		if err != nil {
			return nil, err
		}
		holder = promo.RehydrateCode(history).Holder()
		h.load.learnedState(sid, promo.CodeStreamType, int64(len(history)), holder)
	}
	if holder == 0 {
		return nil, nil
	}
	return loadRecent(ctx, h.load, promoKind, holder) // read, not appended to: see RecentReads
}

// RedeemPromo attaches a redeemable code to the caller's cart (one code per cart). Its use is
// counted when the order is placed.
func (h *Shop) RedeemPromo(ctx context.Context, md domain.Metadata, userID int64, code string) (CartResult, error) {
	return h.onCart(ctx, md, "RedeemPromo", userID, func(ctx context.Context, c *cart.Cart) error {
		p, err := h.promoByCode(ctx, code)
		if err != nil {
			return err
		}
		if !p.Exists() {
			return promo.RedeemError(promo.ReasonUnknown)
		}
		if reason := p.Redeemable(h.now()); reason != "" {
			return promo.RedeemError(reason)
		}
		return c.ApplyPromo(p.ID(), p.Code())
	})
}

// RemovePromo detaches the cart's code.
func (h *Shop) RemovePromo(ctx context.Context, md domain.Metadata, userID int64) (CartResult, error) {
	return h.onCart(ctx, md, "RemovePromo", userID, func(_ context.Context, c *cart.Cart) error {
		return c.RemovePromo()
	})
}

// PromoResult is a promo code after a command.
type PromoResult struct {
	ID       int64
	Code     string
	Terms    promo.Terms
	Used     int64
	Position int64
}

func withPromoPosition(r PromoResult, pos int64) PromoResult { r.Position = pos; return r }

func promoResult(p *promo.Promo) PromoResult {
	return PromoResult{ID: p.ID(), Code: p.Code(), Terms: p.Terms(), Used: p.Used()}
}

// CreatePromo is the admin command to create a code.
type CreatePromo struct {
	Code  string
	Terms promo.Terms
}

// CreatePromo creates a code, reserving it (case-insensitively) in the same append.
func (h *Shop) CreatePromo(ctx context.Context, md domain.Metadata, cmd CreatePromo) (PromoResult, error) {
	code, err := promo.NormaliseCode(cmd.Code)
	if err != nil {
		return PromoResult{}, err
	}
	if err := promo.CheckTerms(cmd.Terms); err != nil {
		return PromoResult{}, err
	}
	id, err := h.ids.NextID(ctx, PromoIDs)
	if err != nil {
		return PromoResult{}, err
	}
	return execute(ctx, h.store, md, "CreatePromo", redecideOnConflict, withPromoPosition,
		func(ctx context.Context) (PromoResult, []Change, error) {
			history, err := loadEvents(ctx, h.store, promo.CodeStreamID(code), promo.Decode)
			if err != nil {
				return PromoResult{}, nil, err
			}
			holder := promo.RehydrateCode(history)
			if err := holder.Reserve(id); err != nil {
				return PromoResult{}, nil, err
			}
			p, err := promo.New(id, code, cmd.Terms)
			if err != nil {
				return PromoResult{}, nil, err
			}
			return promoResult(p), []Change{promoChange(p), {StreamID: promo.CodeStreamID(code), StreamType: promo.CodeStreamType,
				ExpectedVersion: holder.Version(), Events: holder.Changes()}}, nil
		})
}

// UpdatePromo replaces a code's terms.
func (h *Shop) UpdatePromo(ctx context.Context, md domain.Metadata, id int64, t promo.Terms) (PromoResult, error) {
	return execute(ctx, h.store, md, "UpdatePromo", redecideOnConflict, withPromoPosition,
		func(ctx context.Context) (PromoResult, []Change, error) {
			p, err := loadAggregate(ctx, h.load, promoKind, id)
			if err != nil {
				return PromoResult{}, nil, err
			}
			if !p.Exists() {
				return PromoResult{}, nil, domain.NotFound("promo code %d not found", id)
			}
			if err := p.Update(t); err != nil {
				return PromoResult{}, nil, err
			}
			return promoResult(p), []Change{promoChange(p)}, nil
		})
}

// Promo reads a promo code from its stream (the current terms a partial update starts from).
func (h *Shop) Promo(ctx context.Context, id int64) (PromoResult, error) {
	p, err := loadAggregate(ctx, h.load, promoKind, id)
	if err != nil {
		return PromoResult{}, err
	}
	if !p.Exists() {
		return PromoResult{}, domain.NotFound("promo code %d not found", id)
	}
	return promoResult(p), nil
}

// DeletePromo deletes a code and frees it.
func (h *Shop) DeletePromo(ctx context.Context, md domain.Metadata, id int64) (PromoResult, error) {
	return execute(ctx, h.store, md, "DeletePromo", redecideOnConflict, withPromoPosition,
		func(ctx context.Context) (PromoResult, []Change, error) {
			p, err := loadAggregate(ctx, h.load, promoKind, id)
			if err != nil {
				return PromoResult{}, nil, err
			}
			if !p.Exists() {
				return PromoResult{}, nil, domain.NotFound("promo code %d not found", id)
			}
			history, err := loadEvents(ctx, h.store, promo.CodeStreamID(p.Code()), promo.Decode)
			if err != nil {
				return PromoResult{}, nil, err
			}
			holder := promo.RehydrateCode(history)
			holder.Release()
			if err := p.Delete(); err != nil {
				return PromoResult{}, nil, err
			}
			return promoResult(p), []Change{promoChange(p), {StreamID: promo.CodeStreamID(p.Code()), StreamType: promo.CodeStreamType,
				ExpectedVersion: holder.Version(), Events: holder.Changes()}}, nil
		})
}

// ExpirePromos deactivates every active code whose expiry has passed (ids: the codes to look at,
// from the read side; each is re-checked on its own stream).
func (h *Shop) ExpirePromos(ctx context.Context, md domain.Metadata, ids []int64) (n int, position int64, err error) {
	// One Idempotency-Key cannot stand for several appends: stored with the first code's expiry,
	// it would answer for every other code, which would stay active. Each expiry is idempotent by
	// itself (an expired code is inactive and expires no more), so they run unkeyed.
	ctx = WithIdempotency(ctx, Idempotency{})
	for _, id := range ids {
		res, err := execute(ctx, h.store, md, "ExpirePromo", redecideOnConflict, withPromoPosition,
			func(ctx context.Context) (PromoResult, []Change, error) {
				p, err := loadAggregate(ctx, h.load, promoKind, id)
				if err != nil || !p.Exists() {
					return PromoResult{}, nil, err
				}
				p.Expire(h.now())
				return promoResult(p), []Change{promoChange(p)}, nil
			})
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return n, position, err
		}
		if res.Position > 0 {
			n, position = n+1, max(position, res.Position)
		}
	}
	return n, position, nil
}

// orderKindLoad loads an order (short streams: no snapshot).
func (h *Shop) loadOrder(ctx context.Context, id int64) (*order.Order, error) {
	o, _, err := h.loadOrderAt(ctx, id)
	return o, err
}

// loadOrderAt loads an order and the log position of its stream's last event.
func (h *Shop) loadOrderAt(ctx context.Context, id int64) (*order.Order, int64, error) {
	stored, err := h.store.Load(ctx, order.StreamID(id))
	if err != nil {
		return nil, 0, err
	}
	history, err := decodeEvents(order.StreamID(id), stored, order.Decode)
	if err != nil {
		return nil, 0, err
	}
	o := order.Rehydrate(history)
	if o == nil {
		return nil, 0, domain.NotFound("order %d not found", id)
	}
	return o, stored[len(stored)-1].Position, nil
}

func orderChange(o *order.Order) Change {
	return Change{StreamID: order.StreamID(o.ID()), StreamType: order.StreamType, ExpectedVersion: o.Version(), Events: o.Changes()}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
