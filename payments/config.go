// Package payments is the store's side of Stripe (stripe-go/v76): it creates a PaymentIntent for
// an order's total, reads one back for its client secret, refunds an order, and verifies and reads
// the webhooks Stripe sends about them. It knows no order: the commands decide what to charge and
// what an event means for an order, through an interface they declare.
//
// Failures of Stripe itself (down, 5xx, timeouts) match ErrUnavailable and domain.ErrUnavailable
// (HTTP 503: repeat with the same Idempotency-Key); a payment Stripe refuses matches ErrDeclined
// and domain.ErrInvalid and carries a message fit for the customer.
package payments

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// DefaultAPIBase is Stripe's API base URL.
const DefaultAPIBase = stripe.APIURL

// Defaults of Config.
const (
	DefaultTimeout = 15 * time.Second
	DefaultRetries = 2
)

// Config configures the Stripe client.
type Config struct {
	// SecretKey is the API secret key (sk_test_…, sk_live_…, or a restricted rk_… key).
	SecretKey string
	// WebhookSecret is the signing secret of the webhook endpoint (whsec_…).
	WebhookSecret string
	// APIBase is the API base URL; DefaultAPIBase if empty. Tests point it at stripe-mock's HTTP
	// URL (internal/stripetest).
	APIBase string
	// HTTPClient makes the calls; a client of its own (no client-wide timeout, Timeout bounds
	// each call) if nil.
	HTTPClient *http.Client
	// Timeout bounds each call, retries included; DefaultTimeout if zero.
	Timeout time.Duration
	// Retries is how often stripe-go repeats a call that failed on the way (a connection error,
	// a 409 lock conflict, a 503), with the same idempotency key and a backoff of 0.5s and more;
	// DefaultRetries if zero, none if negative.
	Retries int
	// Logger takes stripe-go's own log lines (retries, failed requests) at debug and warn level;
	// they are dropped if nil. Failures are returned as errors either way.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	return c
}

// Validate reports a missing or misplaced secret, a bad API base or a negative timeout. Its
// messages never hold a secret.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.SecretKey == "":
		return errors.New("stripe: secret key is required")
	case !hasAnyPrefix(c.SecretKey, "sk_test_", "sk_live_", "rk_test_", "rk_live_"):
		return errors.New("stripe: secret key must start with sk_test_, sk_live_, rk_test_ or rk_live_ (a publishable pk_ key or a webhook secret does not work here)")
	case c.WebhookSecret == "":
		return errors.New("stripe: webhook secret is required")
	case !strings.HasPrefix(c.WebhookSecret, "whsec_"):
		return errors.New("stripe: webhook secret must start with whsec_")
	case c.Timeout < 0:
		return errors.New("stripe: timeout must not be negative")
	}
	u, err := url.Parse(c.APIBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("stripe: API base %q must be an http(s) URL with no path", c.APIBase)
	}
	return nil
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// LogValue masks the secrets when the config is logged: only the key's mode is shown.
func (c Config) LogValue() slog.Value {
	c = c.withDefaults()
	return slog.GroupValue(
		slog.String("secret_key", maskKey(c.SecretKey)),
		slog.String("webhook_secret", mask(c.WebhookSecret)),
		slog.String("api_base", c.APIBase),
		slog.Duration("timeout", c.Timeout),
		slog.Int("retries", c.Retries),
	)
}

// String masks the secrets, as LogValue does, so printing a Config with %v or %+v shows none.
func (c Config) String() string {
	c = c.withDefaults()
	return fmt.Sprintf("payments.Config{SecretKey:%s WebhookSecret:%s APIBase:%s Timeout:%s Retries:%d}",
		maskKey(c.SecretKey), mask(c.WebhookSecret), c.APIBase, c.Timeout, c.Retries)
}

// GoString masks the secrets for %#v too.
func (c Config) GoString() string { return c.String() }

func mask(s string) string {
	if s == "" {
		return ""
	}
	return "***"
}

// maskKey keeps a key's mode prefix (sk_test_, rk_live_, …) and hides the rest.
func maskKey(s string) string {
	for _, p := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"} {
		if strings.HasPrefix(s, p) {
			return p + "***"
		}
	}
	return mask(s)
}
