package queries

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/domain/order"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/eventstore"
)

// CartView is a user's cart priced at today's prices. A line's remembered unit price (what it
// was added at) is shown next to the current one; the totals use the current prices, because
// placing the order refuses a price that changed until the customer has seen it.
type CartView struct {
	UserID   int64
	Lines    []CartLineView
	Subtotal domain.Money // the sum of the available lines' LineTotal
	Discount domain.Money // what the promo takes off Subtotal (0 when it cannot be redeemed)
	Total    domain.Money // Subtotal - Discount
	Currency string
	// PromoID and PromoCode name the applied promo (0 and "" when none). PromoProblem says why it
	// gives no discount now: promo.ReasonExpired, ReasonInactive, ReasonUsedUp, or ReasonUnknown for
	// a deleted promo; "" when it applies.
	PromoID      int64
	PromoCode    string
	PromoProblem string
	Version      int64 // the cart stream's version (0: the user never had a cart)
}

// CartLineView is one line of a cart.
type CartLineView struct {
	ProductID    int64
	Name         string // the product's; once it is deleted, its name when the line was added ("" for lines added before names were kept)
	Quantity     int64
	UnitPrice    domain.Money // remembered when the line was added
	CurrentPrice domain.Money // the product's price now (UnitPrice for a deleted product)
	PriceChanged bool
	LineTotal    domain.Money // Quantity × CurrentPrice; 0 for a deleted product
	Available    bool         // false once the product is deleted
	InStock      bool         // available, with stock for the whole quantity
}

// OrderSummary is an order in a list.
type OrderSummary struct {
	ID        int64
	UserID    int64
	Status    string
	Subtotal  domain.Money
	Discount  domain.Money
	Total     domain.Money
	Currency  string
	PromoCode string
	ItemCount int64 // the sum of the lines' quantities
	PlacedAt  time.Time
	UpdatedAt time.Time
}

// OrderView is one order with its lines and the history of its status.
type OrderView struct {
	OrderSummary
	PromoID         int64
	AddressID       int64
	Address         OrderAddressView // empty once the customer is erased
	PaymentIntentID string
	PaidAt          *time.Time
	Lines           []OrderLineView
	History         []OrderStatusView // oldest first
	Version         int64
}

// OrderAddressView is the order's copy of its delivery address.
type OrderAddressView struct {
	City     string
	PostCode string
	Country  string
}

// OrderLineView is one line of an order, priced when the order was placed.
type OrderLineView struct {
	ID        int64
	ProductID int64
	Name      string
	Quantity  int64
	UnitPrice domain.Money
	Total     domain.Money
}

// OrderStatusView is one status an order took: when, and the log position of the event.
type OrderStatusView struct {
	Status   string
	At       time.Time
	Position int64
}

// PromoCodeView is a promo code as admins read it. Value is a percentage (1–100) when Kind is
// promo.Percent, an amount in cents when it is promo.Amount.
type PromoCodeView struct {
	ID         int64
	Code       string
	Kind       string
	Value      int64
	ExpiresAt  *time.Time // nil: never expires
	UsageLimit int64      // 0: unlimited
	UsageCount int64
	Active     bool
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// OrderFilter selects orders, listed newest first.
type OrderFilter struct {
	UserID *int64     // nil: every customer's (admins)
	Status string     // "": any status
	From   *time.Time // placed at or after
	To     *time.Time // placed before
	Limit  int
	Cursor string
}

// OrderQueries reads the carts, orders and promo codes read tables.
type OrderQueries struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewOrderQueries returns the order platform's queries. now is the clock that judges a cart
// promo's expiry (time.Now when nil).
func NewOrderQueries(pool *pgxpool.Pool, now func() time.Time) *OrderQueries {
	if now == nil {
		now = time.Now
	}
	return &OrderQueries{pool: pool, now: now}
}

// Cart returns a user's cart; a user who never had one has an empty cart.
func (q *OrderQueries) Cart(ctx context.Context, userID int64) (CartView, error) {
	v, err := q.cart(ctx, userID)
	return v, eventstore.Unavailable(err)
}

// cartPromo is the promo row of a cart, if it still exists.
type cartPromo struct {
	found              bool
	kind               string
	value, limit, used int64
	expires            *time.Time
	active             bool
}

func (q *OrderQueries) cart(ctx context.Context, userID int64) (CartView, error) {
	v := CartView{UserID: userID, Currency: catalog.Currency, Lines: []CartLineView{}}
	var (
		promoID *int64
		code    *string
		p       cartPromo
		kind    *string
	)
	batch := &pgx.Batch{}
	batch.Queue(`SELECT c.version, c.promo_id, c.promo_code,
			pc.kind, coalesce(pc.discount, 0), pc.expiration_date, coalesce(pc.usage_limit, 0), coalesce(pc.usage_count, 0),
			coalesce(pc.is_active, false)
		FROM carts c LEFT JOIN promo_codes pc ON pc.id = c.promo_id WHERE c.id = $1`, userID).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&v.Version, &promoID, &code, &kind, &p.value, &p.expires, &p.limit, &p.used, &p.active)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	batch.Queue(`SELECT ci.product_id, coalesce(p.name, ci.name), ci.quantity, (ci.unit_price * 100)::bigint,
			(p.price * 100)::bigint, coalesce(p.stock, 0), p.id IS NOT NULL
		FROM cart_items ci LEFT JOIN products p ON p.id = ci.product_id
		WHERE ci.cart_id = $1 ORDER BY ci.id`, userID).Query(func(rows pgx.Rows) error {
		var err error
		v.Lines, err = pgx.CollectRows(rows, scanCartLine)
		return err
	})
	if err := q.pool.SendBatch(ctx, batch).Close(); err != nil {
		return CartView{}, fmt.Errorf("reading cart %d: %w", userID, err)
	}
	for _, l := range v.Lines {
		v.Subtotal += l.LineTotal
	}
	if promoID != nil {
		v.PromoID = *promoID
		if code != nil {
			v.PromoCode = *code
		}
		if kind != nil {
			p.found, p.kind = true, *kind
		}
		v.Discount, v.PromoProblem = cartDiscount(p, v.PromoID, v.PromoCode, v.Subtotal, q.now())
	}
	v.Total = v.Subtotal - v.Discount
	return v, nil
}

func scanCartLine(r pgx.CollectableRow) (CartLineView, error) {
	var (
		l       CartLineView
		unit    int64
		current *int64
		stock   int64
	)
	if err := r.Scan(&l.ProductID, &l.Name, &l.Quantity, &unit, &current, &stock, &l.Available); err != nil {
		return l, err
	}
	l.UnitPrice, l.CurrentPrice = domain.Money(unit), domain.Money(unit)
	if current != nil {
		l.CurrentPrice = domain.Money(*current)
	}
	l.PriceChanged = l.CurrentPrice != l.UnitPrice
	if l.Available {
		l.LineTotal = l.CurrentPrice * domain.Money(l.Quantity)
		l.InStock = stock >= l.Quantity
	}
	return l, nil
}

// cartDiscount is what the cart's promo takes off subtotal now, by the domain's own rules
// (promo.Redeemable and promo.Discount, on a promo rebuilt from the row's terms), or why it
// takes nothing.
func cartDiscount(p cartPromo, id int64, code string, subtotal domain.Money, now time.Time) (domain.Money, string) {
	if !p.found {
		return 0, promo.ReasonUnknown
	}
	pr := promo.Rehydrate([]domain.Event{promo.Created{PromoID: id, Code: code, Terms: promo.Terms{
		Kind: p.kind, Value: p.value, ExpiresAt: p.expires, UsageLimit: p.limit, Active: p.active}}})
	reason := pr.Redeemable(now)
	if reason == "" && p.limit > 0 && p.used >= p.limit {
		reason = promo.ReasonUsedUp // the rebuilt promo has no uses: the row counts them
	}
	if reason != "" {
		return 0, reason
	}
	return pr.Discount(subtotal), ""
}

// orderStatuses are the statuses an order filter accepts.
var orderStatuses = []string{order.PendingPayment, order.Paid, order.Shipped, order.Delivered, order.Cancelled, order.Refunded}

// orderSummaryColumns are the columns scanOrderSummary reads, over orders o.
const orderSummaryColumns = `o.id, o.user_id, o.status, (o.subtotal * 100)::bigint, (o.discount * 100)::bigint,
	(o.total_amount * 100)::bigint, o.currency, coalesce(o.promo_code, ''),
	(SELECT coalesce(sum(i.quantity), 0) FROM order_items i WHERE i.order_id = o.id),
	coalesce(o.order_date, o.created_at), o.updated_at`

func scanOrderSummary(row pgx.Row, extra ...any) (OrderSummary, error) {
	var (
		o                         OrderSummary
		subtotal, discount, total int64
	)
	err := row.Scan(append([]any{&o.ID, &o.UserID, &o.Status, &subtotal, &discount, &total, &o.Currency, &o.PromoCode,
		&o.ItemCount, &o.PlacedAt, &o.UpdatedAt}, extra...)...)
	o.Subtotal, o.Discount, o.Total = domain.Money(subtotal), domain.Money(discount), domain.Money(total)
	o.PlacedAt, o.UpdatedAt = o.PlacedAt.UTC(), o.UpdatedAt.UTC()
	return o, err
}

// Orders lists orders newest first (by id), one keyset page at a time.
func (q *OrderQueries) Orders(ctx context.Context, f OrderFilter) (Page[OrderSummary], error) {
	v, err := q.orders(ctx, f)
	return v, eventstore.Unavailable(err)
}

func (q *OrderQueries) orders(ctx context.Context, f OrderFilter) (Page[OrderSummary], error) {
	if f.Limit < 1 {
		return Page[OrderSummary]{}, domain.Invalid("limit", "limit must be at least 1")
	}
	if f.Status != "" && !slices.Contains(orderStatuses, f.Status) {
		return Page[OrderSummary]{}, domain.Invalid("status", "status must be one of %v", orderStatuses)
	}
	cur, err := decodeCursor(f.Cursor, "orders")
	if err != nil {
		return Page[OrderSummary]{}, err
	}
	// Only the filters given become conditions, so each shape of the query gets a plan that uses
	// its index (a customer's orders: user_id, id; the admins' status filter: status, id).
	var (
		where []string
		args  []any
	)
	cond := func(sql string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(sql, "$?", fmt.Sprintf("$%d", len(args))))
	}
	if f.UserID != nil {
		cond("o.user_id = $?", *f.UserID)
	}
	if f.Status != "" {
		cond("o.status = $?", f.Status)
	}
	if f.From != nil {
		cond("o.created_at >= $?::timestamp", f.From.UTC())
	}
	if f.To != nil {
		cond("o.created_at < $?::timestamp", f.To.UTC())
	}
	if cur != nil {
		cond("o.id < $?", cur.ID)
	}
	sql := `SELECT ` + orderSummaryColumns + ` FROM orders o`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit+1)
	rows, err := q.pool.Query(ctx, sql+fmt.Sprintf(` ORDER BY o.id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return Page[OrderSummary]{}, fmt.Errorf("listing orders: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderSummary, error) { return scanOrderSummary(r) })
	if err != nil {
		return Page[OrderSummary]{}, fmt.Errorf("listing orders: %w", err)
	}
	page := Page[OrderSummary]{Items: items}
	if len(items) > f.Limit {
		page.Items = items[:f.Limit]
		page.NextCursor = encodeCursor(cursor{Sort: "orders", ID: items[f.Limit-1].ID})
	}
	return page, nil
}

func utcOrNil(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Order returns one order with its lines and status history. It does not check who asks: the
// caller compares UserID with the customer's id.
func (q *OrderQueries) Order(ctx context.Context, id int64) (OrderView, error) {
	v, err := q.order(ctx, id)
	return v, eventstore.Unavailable(err)
}

func (q *OrderQueries) order(ctx context.Context, id int64) (OrderView, error) {
	var (
		v       OrderView
		promoID *int64
		intent  *string
	)
	found := false
	batch := &pgx.Batch{}
	batch.Queue(`SELECT `+orderSummaryColumns+`, o.promo_id, o.address_id, o.city, o.post_code, o.country,
			o.payment_intent_id, o.paid_at, o.version
		FROM orders o WHERE o.id = $1`, id).QueryRow(func(row pgx.Row) error {
		var err error
		v.OrderSummary, err = scanOrderSummary(row, &promoID, &v.AddressID, &v.Address.City, &v.Address.PostCode,
			&v.Address.Country, &intent, &v.PaidAt, &v.Version)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	batch.Queue(`SELECT id, product_id, name, quantity, (price * 100)::bigint, (total * 100)::bigint
		FROM order_items WHERE order_id = $1 ORDER BY id`, id).Query(func(rows pgx.Rows) error {
		var err error
		v.Lines, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderLineView, error) {
			var l OrderLineView
			var unit, total int64
			err := r.Scan(&l.ID, &l.ProductID, &l.Name, &l.Quantity, &unit, &total)
			l.UnitPrice, l.Total = domain.Money(unit), domain.Money(total)
			return l, err
		})
		return err
	})
	batch.Queue(`SELECT status, at, position FROM order_status_history WHERE order_id = $1 ORDER BY position`, id).
		Query(func(rows pgx.Rows) error {
			var err error
			v.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderStatusView, error) {
				var s OrderStatusView
				err := r.Scan(&s.Status, &s.At, &s.Position)
				s.At = s.At.UTC()
				return s, err
			})
			return err
		})
	if err := q.pool.SendBatch(ctx, batch).Close(); err != nil {
		return OrderView{}, fmt.Errorf("reading order %d: %w", id, err)
	}
	if !found {
		return OrderView{}, domain.NotFound("order %d not found", id)
	}
	if promoID != nil {
		v.PromoID = *promoID
	}
	if intent != nil {
		v.PaymentIntentID = *intent
	}
	if v.PaidAt != nil {
		t := v.PaidAt.UTC()
		v.PaidAt = &t
	}
	return v, nil
}

const promoColumns = `id, code, kind, discount, expiration_date, usage_limit, usage_count, is_active, version,
	created_at, updated_at`

func scanPromo(row pgx.Row) (PromoCodeView, error) {
	var p PromoCodeView
	err := row.Scan(&p.ID, &p.Code, &p.Kind, &p.Value, &p.ExpiresAt, &p.UsageLimit, &p.UsageCount, &p.Active, &p.Version,
		&p.CreatedAt, &p.UpdatedAt)
	p.ExpiresAt = utcOrNil(p.ExpiresAt)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, err
}

// PromoCodes lists promo codes by id, one keyset page at a time.
func (q *OrderQueries) PromoCodes(ctx context.Context, limit int, after string) (Page[PromoCodeView], error) {
	v, err := q.promoCodes(ctx, limit, after)
	return v, eventstore.Unavailable(err)
}

func (q *OrderQueries) promoCodes(ctx context.Context, limit int, after string) (Page[PromoCodeView], error) {
	if limit < 1 {
		return Page[PromoCodeView]{}, domain.Invalid("limit", "limit must be at least 1")
	}
	cur, err := decodeCursor(after, "promo_codes")
	if err != nil {
		return Page[PromoCodeView]{}, err
	}
	var afterID int64
	if cur != nil {
		afterID = cur.ID
	}
	rows, err := q.pool.Query(ctx, `SELECT `+promoColumns+` FROM promo_codes WHERE id > $1 ORDER BY id LIMIT $2`,
		afterID, limit+1)
	if err != nil {
		return Page[PromoCodeView]{}, fmt.Errorf("listing promo codes: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PromoCodeView, error) { return scanPromo(r) })
	if err != nil {
		return Page[PromoCodeView]{}, fmt.Errorf("listing promo codes: %w", err)
	}
	page := Page[PromoCodeView]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextCursor = encodeCursor(cursor{Sort: "promo_codes", ID: items[limit-1].ID})
	}
	return page, nil
}

// PromoCode returns one promo code (domain.ErrNotFound once deleted).
func (q *OrderQueries) PromoCode(ctx context.Context, id int64) (PromoCodeView, error) {
	p, err := scanPromo(q.pool.QueryRow(ctx, `SELECT `+promoColumns+` FROM promo_codes WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return PromoCodeView{}, domain.NotFound("promo code %d not found", id)
	}
	if err != nil {
		return PromoCodeView{}, eventstore.Unavailable(fmt.Errorf("reading promo code %d: %w", id, err))
	}
	return p, nil
}
