// Package promo is the promo codes' domain: codes with a percentage or fixed-amount discount,
// an expiry, a usage limit and an active flag; their events and rules.
package promo

import (
	"fmt"
	"strings"
	"time"

	"github.com/techvault/techvault/domain"
)

// Stream types.
const (
	StreamType = "promo"
	// CodeStreamType reserves a code (case-insensitively) for one promo.
	CodeStreamType = "promo_code"
)

// StreamID is the event stream of one promo.
func StreamID(id int64) string { return fmt.Sprintf("promo-%d", id) }

// CodeStreamID is the reservation stream of a normalised code.
func CodeStreamID(code string) string { return "promo-code-" + code }

// Kinds of discount.
const (
	// Percent takes Value percent (1–100) of the subtotal, rounded half up to the cent.
	Percent = "percent"
	// Amount takes Value cents off the subtotal (never more than the subtotal).
	Amount = "amount"
)

// Terms are what a promo gives and when: the whole state an admin sets.
type Terms struct {
	Kind       string     `json:"kind"`
	Value      int64      `json:"value"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	UsageLimit int64      `json:"usage_limit"` // 0: unlimited
	Active     bool       `json:"active"`
}

// Created.v1: a promo code was created.
type Created struct {
	PromoID int64  `json:"promo_id"`
	Code    string `json:"code"`
	Terms
}

// Updated.v1: the promo's terms are now these.
type Updated struct {
	PromoID int64 `json:"promo_id"`
	Terms
}

// Expired.v1: the promo was deactivated because its expiry passed (DELETE /promo-codes/expired).
type Expired struct {
	PromoID int64 `json:"promo_id"`
}

// Deleted.v1: the promo was deleted; its code is free again.
type Deleted struct {
	PromoID int64  `json:"promo_id"`
	Code    string `json:"code"`
}

// Used.v1: an order took one use of the promo.
type Used struct {
	PromoID int64 `json:"promo_id"`
	OrderID int64 `json:"order_id"`
}

// UseReleased.v1: a cancelled order gave its use back.
type UseReleased struct {
	PromoID int64 `json:"promo_id"`
	OrderID int64 `json:"order_id"`
}

// CodeReserved.v1 (code stream): the code names this promo.
type CodeReserved struct {
	PromoID int64 `json:"promo_id"`
}

// CodeReleased.v1 (code stream): the code is free again.
type CodeReleased struct {
	PromoID int64 `json:"promo_id"`
}

var registry = domain.Registry{
	"PromoCreated": func() domain.Event { return &Created{} }, "PromoUpdated": func() domain.Event { return &Updated{} },
	"PromoExpired": func() domain.Event { return &Expired{} }, "PromoDeleted": func() domain.Event { return &Deleted{} },
	"PromoUsed": func() domain.Event { return &Used{} }, "PromoUseReleased": func() domain.Event { return &UseReleased{} },
	"PromoCodeReserved": func() domain.Event { return &CodeReserved{} }, "PromoCodeReleased": func() domain.Event { return &CodeReleased{} },
}

func (Created) EventType() string      { return "PromoCreated" }
func (Updated) EventType() string      { return "PromoUpdated" }
func (Expired) EventType() string      { return "PromoExpired" }
func (Deleted) EventType() string      { return "PromoDeleted" }
func (Used) EventType() string         { return "PromoUsed" }
func (UseReleased) EventType() string  { return "PromoUseReleased" }
func (CodeReserved) EventType() string { return "PromoCodeReserved" }
func (CodeReleased) EventType() string { return "PromoCodeReleased" }

// Every promo event is at schema version 1.
func (Created) SchemaVersion() int      { return 1 }
func (Updated) SchemaVersion() int      { return 1 }
func (Expired) SchemaVersion() int      { return 1 }
func (Deleted) SchemaVersion() int      { return 1 }
func (Used) SchemaVersion() int         { return 1 }
func (UseReleased) SchemaVersion() int  { return 1 }
func (CodeReserved) SchemaVersion() int { return 1 }
func (CodeReleased) SchemaVersion() int { return 1 }

// Decode turns a stored promo event into its struct (by value).
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return registry.Decode(eventType, schemaVersion, data)
}

// NormaliseCode checks a code (3–32 letters, digits, dashes or underscores) and returns its
// normal form (upper case): codes are unique case-insensitively.
func NormaliseCode(s string) (string, error) {
	// Checked before upper-casing: Unicode upper-cases some letters outside A-Z into it ("ı"
	// becomes "I", the Kelvin sign "K"), which would let a code outside the pattern in.
	c := strings.TrimSpace(s)
	if len(c) < 3 || len(c) > 32 {
		return "", domain.Invalid("code", "code must have 3 to 32 characters")
	}
	for _, r := range c {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return "", domain.Invalid("code", "code may hold only letters A-Z, digits, - and _")
		}
	}
	return strings.ToUpper(c), nil
}

// CheckTerms checks terms an admin sets.
func CheckTerms(t Terms) error {
	switch t.Kind {
	case Percent:
		if t.Value < 1 || t.Value > 100 {
			return domain.Invalid("discount", "a percentage discount must be 1 to 100")
		}
	case Amount:
		if t.Value < 1 || domain.Money(t.Value) > domain.MaxMoney {
			return domain.Invalid("discount", "an amount discount must be 0.01 to %s", domain.MaxMoney)
		}
	default:
		return domain.Invalid("kind", "kind must be percent or amount")
	}
	if t.UsageLimit < 0 {
		return domain.Invalid("usage_limit", "usage_limit must not be negative (0: unlimited)")
	}
	return nil
}

// Promo is a promo code. It changes only by recording events.
type Promo struct {
	id      int64
	code    string
	terms   Terms
	used    int64
	deleted bool
	version int64
	changes []domain.Event
}

// New creates a promo (terms checked, code normalised by the caller).
func New(id int64, code string, t Terms) (*Promo, error) {
	if err := CheckTerms(t); err != nil {
		return nil, err
	}
	p := &Promo{}
	p.record(Created{PromoID: id, Code: code, Terms: t})
	return p, nil
}

// Rehydrate rebuilds a promo from its stream; nil when it is empty.
func Rehydrate(history []domain.Event) *Promo {
	if len(history) == 0 {
		return nil
	}
	p := &Promo{}
	for _, e := range history {
		p.apply(e)
		p.version++
	}
	return p
}

// Exists reports whether the promo exists and is not deleted.
func (p *Promo) Exists() bool { return p != nil && !p.deleted }

// Accessors.
func (p *Promo) ID() int64               { return p.id }
func (p *Promo) Code() string            { return p.code }
func (p *Promo) Terms() Terms            { return p.terms }
func (p *Promo) Used() int64             { return p.used }
func (p *Promo) Version() int64          { return p.version }
func (p *Promo) Changes() []domain.Event { return p.changes }

// Refusal reasons of Redeemable.
const (
	ReasonExpired  = "expired"
	ReasonInactive = "inactive"
	ReasonUsedUp   = "used_up"
)

// Redeemable says why the promo cannot be used now ("" when it can).
func (p *Promo) Redeemable(now time.Time) string {
	switch {
	case !p.terms.Active:
		return ReasonInactive
	case p.terms.ExpiresAt != nil && !now.Before(*p.terms.ExpiresAt):
		return ReasonExpired
	case p.terms.UsageLimit > 0 && p.used >= p.terms.UsageLimit:
		return ReasonUsedUp
	}
	return ""
}

// ReasonUnknown is the reason given for a code that does not exist (never created, or deleted).
const ReasonUnknown = "unknown"

// whyNot says why a code cannot be used, after "this code": a Redeemable reason's words.
var whyNot = map[string]string{ReasonExpired: "has expired", ReasonInactive: "is not active", ReasonUsedUp: "has been used up"}

// RedeemError is the client's error for a code that cannot be used, with the reason.
func RedeemError(reason string) error {
	msg := "no such code"
	if reason != ReasonUnknown {
		msg = "this code " + whyNot[reason]
	}
	return &domain.Error{Kind: domain.ErrInvalid, Field: "code", Message: msg + " (" + reason + ")"}
}

// CartCodeError is the client's error for an order whose cart holds code, which cannot be used
// now (reason as RedeemError's): the customer removes it to order without it.
func CartCodeError(code, reason string) error {
	why := "is no longer offered"
	if reason != ReasonUnknown {
		why = whyNot[reason]
	}
	return &domain.Error{Kind: domain.ErrInvalid, Field: "code", Message: fmt.Sprintf(
		"the code %s on your cart %s (%s): remove it (DELETE /cart/promo) to order without it", code, why, reason)}
}

// Discount is what the promo takes off a subtotal. Percentages round half up to the cent
// (12.345 → 12.35); an amount never exceeds the subtotal.
func (p *Promo) Discount(subtotal domain.Money) domain.Money {
	switch p.terms.Kind {
	case Percent:
		return domain.Money((int64(subtotal)*p.terms.Value + 50) / 100)
	case Amount:
		return min(domain.Money(p.terms.Value), subtotal)
	}
	return 0
}

// Use takes one use for an order. A code with a usage limit records it (PromoUsed), checked
// against the limit at the version loaded, so concurrent orders race on the promo's stream and
// the limit holds exactly. A code without a limit records nothing: the order's own OrderPlaced
// (which names the code) is the use, so orders never meet on a popular code's stream. Such an
// order is decided on the terms as loaded; a change of terms committed meanwhile (deactivated,
// expiry brought forward) does not refuse it.
func (p *Promo) Use(orderID int64, now time.Time) error {
	if !p.Exists() {
		return CartCodeError(p.code, ReasonUnknown)
	}
	if r := p.Redeemable(now); r != "" {
		return CartCodeError(p.code, r)
	}
	if p.terms.UsageLimit > 0 {
		p.record(Used{PromoID: p.id, OrderID: orderID})
	}
	return nil
}

// ReleaseUse gives back the use of a cancelled order that took one (the order knows it did); a
// code without a limit recorded none.
func (p *Promo) ReleaseUse(orderID int64) {
	if p != nil && p.terms.UsageLimit > 0 && p.used > 0 {
		p.record(UseReleased{PromoID: p.id, OrderID: orderID})
	}
}

// SnapshotSchemaVersion is the version of State in snapshots.
const SnapshotSchemaVersion = 1

// State is a promo's whole state, as a snapshot stores it (a popular code's stream grows with
// every order).
type State struct {
	ID      int64  `json:"id"`
	Code    string `json:"code"`
	Terms   Terms  `json:"terms"`
	Used    int64  `json:"used"`
	Deleted bool   `json:"deleted"`
}

// Snapshot returns the promo's state.
func (p *Promo) Snapshot() State {
	return State{ID: p.id, Code: p.code, Terms: p.terms, Used: p.used, Deleted: p.deleted}
}

// RehydrateFrom rebuilds a promo from a snapshot at version and the events after it.
func RehydrateFrom(s State, version int64, tail []domain.Event) (*Promo, error) {
	if s.ID <= 0 || version <= 0 || s.Used < 0 {
		return nil, domain.Invalid("snapshot", "impossible promo snapshot")
	}
	p := &Promo{id: s.ID, code: s.Code, terms: s.Terms, used: s.Used, deleted: s.Deleted, version: version}
	for _, e := range tail {
		p.apply(e)
		p.version++
	}
	return p, nil
}

// Update replaces the terms. A limited code's limit may change, but a code keeps the kind of limit
// it was created with: the uses of a code without a limit are not recorded on its stream (see
// Use), so a limit added later could not count them.
func (p *Promo) Update(t Terms) error {
	if !p.Exists() {
		return domain.NotFound("promo code %d not found", p.idOr0())
	}
	if err := CheckTerms(t); err != nil {
		return err
	}
	if (t.UsageLimit == 0) != (p.terms.UsageLimit == 0) {
		return domain.Invalid("usage_limit", "a code created without a usage limit cannot get one, nor a limited code lose it; create a new code")
	}
	if t.equal(p.terms) {
		return nil // as it is already: nothing to record
	}
	p.record(Updated{PromoID: p.id, Terms: t})
	return nil
}

// equal says whether t and u are the same terms (expiry instants compared, not their zones).
func (t Terms) equal(u Terms) bool {
	sameExpiry := t.ExpiresAt == nil && u.ExpiresAt == nil ||
		t.ExpiresAt != nil && u.ExpiresAt != nil && t.ExpiresAt.Equal(*u.ExpiresAt)
	return sameExpiry && t.Kind == u.Kind && t.Value == u.Value && t.UsageLimit == u.UsageLimit && t.Active == u.Active
}

// Expire deactivates an expired, active promo (no change otherwise).
func (p *Promo) Expire(now time.Time) {
	if p.Exists() && p.terms.Active && p.terms.ExpiresAt != nil && !now.Before(*p.terms.ExpiresAt) {
		p.record(Expired{PromoID: p.id})
	}
}

// Delete deletes the promo.
func (p *Promo) Delete() error {
	if !p.Exists() {
		return domain.NotFound("promo code %d not found", p.idOr0())
	}
	p.record(Deleted{PromoID: p.id, Code: p.code})
	return nil
}

func (p *Promo) idOr0() int64 {
	if p == nil {
		return 0
	}
	return p.id
}

func (p *Promo) record(e domain.Event) {
	p.apply(e)
	p.changes = append(p.changes, e)
}

func (p *Promo) apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		p.id, p.code, p.terms = e.PromoID, e.Code, e.Terms
	case Updated:
		p.terms = e.Terms
	case Expired:
		p.terms.Active = false
	case Deleted:
		p.deleted = true
	case Used:
		p.used++
	case UseReleased:
		p.used--
	}
}

// CodeHolder is a code's reservation: the promo holding it (0: free).
type CodeHolder struct {
	holder  int64
	version int64
	changes []domain.Event
}

// RehydrateCode rebuilds a code's reservation.
func RehydrateCode(history []domain.Event) *CodeHolder {
	c := &CodeHolder{}
	for _, e := range history {
		c.apply(e)
		c.version++
	}
	return c
}

// Holder is the promo holding the code (0: free).
func (c *CodeHolder) Holder() int64 { return c.holder }

// Reserve takes the code for a promo.
func (c *CodeHolder) Reserve(promoID int64) error {
	if c.holder != 0 {
		return domain.Conflict("a promo code with this code exists")
	}
	c.record(CodeReserved{PromoID: promoID})
	return nil
}

// Release frees the code.
func (c *CodeHolder) Release() {
	if c.holder != 0 {
		c.record(CodeReleased{PromoID: c.holder})
	}
}

// Version and Changes.
func (c *CodeHolder) Version() int64          { return c.version }
func (c *CodeHolder) Changes() []domain.Event { return c.changes }

func (c *CodeHolder) record(e domain.Event) {
	c.apply(e)
	c.changes = append(c.changes, e)
}

func (c *CodeHolder) apply(e domain.Event) {
	switch e := e.(type) {
	case CodeReserved:
		c.holder = e.PromoID
	case CodeReleased:
		c.holder = 0
	}
}
