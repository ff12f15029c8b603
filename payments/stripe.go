package payments

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/techvault/techvault/domain"
)

// MetadataOrderID is the metadata key of a PaymentIntent (and Refund) that names the order, as a
// decimal number. ParseWebhook reads it back.
const MetadataOrderID = "order_id"

// Stripe calls Stripe's API for the store. It is safe for concurrent use.
type Stripe struct {
	cfg Config
	api *client.API
}

// New validates cfg and returns a client. It makes no call.
func New(cfg Config) (*Stripe, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	retries := int64(max(cfg.Retries, 0))
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		HTTPClient:        httpClient,
		LeveledLogger:     leveledLogger(cfg.Logger),
		MaxNetworkRetries: &retries,
		URL:               stripe.String(cfg.APIBase),
		EnableTelemetry:   stripe.Bool(false),
	})
	// Only the API backend is called; the others are built so that no global backend is used.
	api := client.New(cfg.SecretKey, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	return &Stripe{cfg: cfg, api: api}, nil
}

// IntentRequest asks for a PaymentIntent for one attempt to pay an order.
type IntentRequest struct {
	// OrderID is the order paid; it goes to the intent's metadata (MetadataOrderID).
	OrderID int64
	// AmountCents is the exact amount to charge, in the currency's smallest unit; > 0.
	AmountCents int64
	// Currency is an ISO 4217 code ("eur", "EUR"); Stripe's form, lower case, is sent.
	Currency string
	// Attempt numbers the order's payment attempts from 1: the same order and attempt always
	// give the same intent (within Stripe's 24 hours of idempotency), a new attempt a new one.
	Attempt int
	// CustomerRef is an optional opaque reference of the store's customer (a user id) for
	// Stripe's dashboard, sent as metadata customer_ref. Never personal data (no email, no name).
	CustomerRef string
}

// Intent is a PaymentIntent as the store needs it.
type Intent struct {
	ID string
	// ClientSecret lets the customer's browser confirm the payment with Stripe.js. It is for
	// that customer only: never log it (LogValue leaves it out).
	ClientSecret string
	// Status is Stripe's: requires_payment_method, requires_confirmation, requires_action,
	// processing, requires_capture, canceled or succeeded.
	Status      string
	AmountCents int64
	Currency    string
}

// LogValue leaves the client secret out when an intent is logged.
func (i Intent) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", i.ID),
		slog.String("status", i.Status),
		slog.Int64("amount_cents", i.AmountCents),
		slog.String("currency", i.Currency),
	)
}

// IntentIdempotencyKey is the idempotency key CreateIntent sends: "order-42-intent-1".
func IntentIdempotencyKey(orderID int64, attempt int) string {
	return fmt.Sprintf("order-%d-intent-%d", orderID, attempt)
}

// RefundIdempotencyKey is the idempotency key Refund sends: "order-42-refund" (an order is
// refunded once, in full).
func RefundIdempotencyKey(orderID int64) string {
	return fmt.Sprintf("order-%d-refund", orderID)
}

// CreateIntent creates the PaymentIntent of one payment attempt (automatic payment methods,
// automatic capture), with an idempotency key derived from the order and the attempt: repeating
// the call after an unknown outcome returns the same intent. Errors: domain.ErrInvalid for a bad
// request (before any call), ErrDeclined, ErrUnavailable.
func (s *Stripe) CreateIntent(ctx context.Context, in IntentRequest) (Intent, error) {
	currency := strings.ToLower(in.Currency)
	switch {
	case in.OrderID <= 0:
		return Intent{}, domain.Invalid("order_id", "the order id must be positive")
	case in.AmountCents <= 0:
		return Intent{}, domain.Invalid("amount", "the amount to pay must be positive")
	case !isCurrency(currency):
		return Intent{}, domain.Invalid("currency", "the currency must be a three-letter ISO code")
	case in.Attempt < 1:
		return Intent{}, domain.Invalid("attempt", "the payment attempt is numbered from 1")
	case len(in.CustomerRef) > 500:
		return Intent{}, domain.Invalid("customer_ref", "the customer reference is longer than 500 bytes")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	params := &stripe.PaymentIntentParams{
		Amount:                  stripe.Int64(in.AmountCents),
		Currency:                stripe.String(currency),
		AutomaticPaymentMethods: &stripe.PaymentIntentAutomaticPaymentMethodsParams{Enabled: stripe.Bool(true)},
		Description:             stripe.String(fmt.Sprintf("Tech Vault order %d", in.OrderID)),
	}
	params.Context = ctx
	params.SetIdempotencyKey(IntentIdempotencyKey(in.OrderID, in.Attempt))
	params.AddMetadata(MetadataOrderID, strconv.FormatInt(in.OrderID, 10))
	params.AddMetadata("attempt", strconv.Itoa(in.Attempt))
	if in.CustomerRef != "" {
		params.AddMetadata("customer_ref", in.CustomerRef)
	}
	pi, err := s.api.PaymentIntents.New(params)
	if err != nil {
		return Intent{}, classify(ctx, fmt.Sprintf("create intent for order %d attempt %d", in.OrderID, in.Attempt), err)
	}
	return toIntent(pi), nil
}

// GetIntent reads a PaymentIntent back, to hand its client secret out again. Errors:
// domain.ErrInvalid for an id that is no intent id, domain.ErrNotFound, ErrUnavailable.
func (s *Stripe) GetIntent(ctx context.Context, id string) (Intent, error) {
	if !isObjectID(id, "pi_") {
		return Intent{}, domain.Invalid("intent_id", "not a PaymentIntent id")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	pi, err := s.api.PaymentIntents.Get(id, params)
	if err != nil {
		return Intent{}, classify(ctx, "get intent "+id, err)
	}
	return toIntent(pi), nil
}

func toIntent(pi *stripe.PaymentIntent) Intent {
	return Intent{
		ID:           pi.ID,
		ClientSecret: pi.ClientSecret,
		Status:       string(pi.Status),
		AmountCents:  pi.Amount,
		Currency:     string(pi.Currency),
	}
}

// RefundRequest asks to refund an order's payment.
type RefundRequest struct {
	OrderID int64
	// IntentID is the succeeded PaymentIntent of the order.
	IntentID string
	// AmountCents is the amount to refund, > 0 (the order's total for a full refund).
	AmountCents int64
}

// Refund is a refund as the store needs it.
type Refund struct {
	ID string
	// Status is Stripe's: pending, requires_action, succeeded, failed or canceled. The final
	// word comes by webhook (charge.refunded).
	Status string
}

// Refund refunds an order's payment, with the idempotency key RefundIdempotencyKey: an order is
// refunded once, and repeating the call returns that refund. Errors: domain.ErrInvalid for a bad
// request (before any call), domain.ErrConflict when the payment was already refunded,
// domain.ErrNotFound, ErrDeclined, ErrUnavailable.
func (s *Stripe) Refund(ctx context.Context, in RefundRequest) (Refund, error) {
	switch {
	case in.OrderID <= 0:
		return Refund{}, domain.Invalid("order_id", "the order id must be positive")
	case !isObjectID(in.IntentID, "pi_"):
		return Refund{}, domain.Invalid("intent_id", "not a PaymentIntent id")
	case in.AmountCents <= 0:
		return Refund{}, domain.Invalid("amount", "the amount to refund must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	params := &stripe.RefundParams{
		PaymentIntent: stripe.String(in.IntentID),
		Amount:        stripe.Int64(in.AmountCents),
		Reason:        stripe.String(string(stripe.RefundReasonRequestedByCustomer)),
	}
	params.Context = ctx
	params.SetIdempotencyKey(RefundIdempotencyKey(in.OrderID))
	params.AddMetadata(MetadataOrderID, strconv.FormatInt(in.OrderID, 10))
	r, err := s.api.Refunds.New(params)
	if err != nil {
		return Refund{}, classify(ctx, fmt.Sprintf("refund order %d", in.OrderID), err)
	}
	return Refund{ID: r.ID, Status: string(r.Status)}, nil
}

// isCurrency reports whether c is three lower-case ASCII letters.
func isCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

// isObjectID reports whether id is a Stripe id with the prefix: letters, digits and
// underscores only, so it is safe in a URL path.
func isObjectID(id, prefix string) bool {
	if len(id) <= len(prefix) || len(id) > 255 || !strings.HasPrefix(id, prefix) {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
		default:
			return false
		}
	}
	return true
}

// slogLeveled hands stripe-go's log lines to slog. Its info lines (three per request) become
// debug and its errors warnings: the failure is returned to the caller, who decides.
type slogLeveled struct{ l *slog.Logger }

func leveledLogger(l *slog.Logger) stripe.LeveledLoggerInterface {
	if l == nil {
		return &stripe.LeveledLogger{Level: stripe.LevelNull}
	}
	return slogLeveled{l.With("component", "stripe-go")}
}

func (s slogLeveled) Debugf(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s slogLeveled) Infof(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s slogLeveled) Warnf(format string, v ...any)  { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s slogLeveled) Errorf(format string, v ...any) { s.l.Warn(fmt.Sprintf(format, v...)) }
