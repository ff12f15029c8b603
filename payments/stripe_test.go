package payments_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/stripetest"
	"github.com/techvault/techvault/payments"
)

// recorded is one request the client sent.
type recorded struct {
	Method, Path   string
	IdempotencyKey string
	Authorization  string
	Form           url.Values
}

// recorder is an http.RoundTripper that notes each request before sending it on.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := recorded{
		Method: req.Method, Path: req.URL.Path,
		IdempotencyKey: req.Header.Get("Idempotency-Key"),
		Authorization:  req.Header.Get("Authorization"),
	}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		if rec.Form, err = url.ParseQuery(string(body)); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// take returns the requests recorded since the last take.
func (r *recorder) take() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// newClient is a client of apiBase whose requests rec records.
func newClient(t *testing.T, apiBase string, rec *recorder, mutate ...func(*payments.Config)) *payments.Stripe {
	t.Helper()
	cfg := payments.Config{
		SecretKey:     stripetest.SecretKey,
		WebhookSecret: stripetest.WebhookSecret,
		APIBase:       apiBase,
		HTTPClient:    &http.Client{Transport: rec},
		Retries:       -1,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := payments.New(cfg)
	if err != nil {
		t.Fatalf("payments.New: %v", err)
	}
	return s
}

// one asserts that exactly one request was sent and returns it.
func one(t *testing.T, rec *recorder) recorded {
	t.Helper()
	reqs := rec.take()
	if len(reqs) != 1 {
		t.Fatalf("requests sent: %d (%+v), want 1", len(reqs), reqs)
	}
	return reqs[0]
}

// TestStripeMock runs the calls against a real stripe-mock. stripe-mock validates each request
// against Stripe's OpenAPI spec but keeps nothing: a create echoes amount and currency, a read
// echoes the id asked, everything else is fixture data. So the tests check what was sent (the
// recorder) and that the answers parse.
func TestStripeMock(t *testing.T) {
	mock := stripetest.StartMock(t)
	rec := &recorder{}
	s := newClient(t, mock.URL(), rec)
	ctx := context.Background()

	t.Run("create intent", func(t *testing.T) {
		in, err := s.CreateIntent(ctx, payments.IntentRequest{
			OrderID: 42, AmountCents: 4200, Currency: "EUR", Attempt: 1, CustomerRef: "user-7",
		})
		if err != nil {
			t.Fatalf("CreateIntent: %v", err)
		}
		if !strings.HasPrefix(in.ID, "pi_") || in.ClientSecret == "" || in.Status != "requires_payment_method" {
			t.Errorf("intent = %+v, want a pi_ id, a client secret, status requires_payment_method", in)
		}
		if in.AmountCents != 4200 || in.Currency != "eur" {
			t.Errorf("intent amount %d %s, want 4200 eur (stripe-mock echoes them)", in.AmountCents, in.Currency)
		}
		req := one(t, rec)
		want := map[string]string{
			"amount": "4200", "currency": "eur", "metadata[order_id]": "42", "metadata[attempt]": "1",
			"metadata[customer_ref]": "user-7", "automatic_payment_methods[enabled]": "true",
		}
		for k, v := range want {
			if got := req.Form.Get(k); got != v {
				t.Errorf("sent %s = %q, want %q", k, got, v)
			}
		}
		if req.Method != http.MethodPost || req.Path != "/v1/payment_intents" {
			t.Errorf("sent %s %s, want POST /v1/payment_intents", req.Method, req.Path)
		}
		if req.IdempotencyKey != "order-42-intent-1" {
			t.Errorf("Idempotency-Key = %q, want order-42-intent-1", req.IdempotencyKey)
		}
		if req.Authorization != "Bearer "+stripetest.SecretKey {
			t.Errorf("Authorization = %q, want the secret key as bearer", req.Authorization)
		}
	})

	t.Run("a new attempt has a new key", func(t *testing.T) {
		if _, err := s.CreateIntent(ctx, payments.IntentRequest{OrderID: 42, AmountCents: 4200, Currency: "eur", Attempt: 2}); err != nil {
			t.Fatalf("CreateIntent: %v", err)
		}
		req := one(t, rec)
		if req.IdempotencyKey != "order-42-intent-2" {
			t.Errorf("Idempotency-Key = %q, want order-42-intent-2", req.IdempotencyKey)
		}
		if _, ok := req.Form["metadata[customer_ref]"]; ok {
			t.Errorf("customer_ref sent without a CustomerRef")
		}
	})

	t.Run("get intent", func(t *testing.T) {
		in, err := s.GetIntent(ctx, "pi_3Abc123")
		if err != nil {
			t.Fatalf("GetIntent: %v", err)
		}
		if in.ID != "pi_3Abc123" || in.ClientSecret == "" || in.AmountCents <= 0 || in.Currency == "" {
			t.Errorf("intent = %+v, want the id asked, a client secret, an amount and a currency", in)
		}
		req := one(t, rec)
		if req.Method != http.MethodGet || req.Path != "/v1/payment_intents/pi_3Abc123" {
			t.Errorf("sent %s %s, want GET /v1/payment_intents/pi_3Abc123", req.Method, req.Path)
		}
	})

	t.Run("refund", func(t *testing.T) {
		r, err := s.Refund(ctx, payments.RefundRequest{OrderID: 42, IntentID: "pi_3Abc123", AmountCents: 4200})
		if err != nil {
			t.Fatalf("Refund: %v", err)
		}
		if !strings.HasPrefix(r.ID, "re_") || r.Status == "" {
			t.Errorf("refund = %+v, want a re_ id and a status", r)
		}
		req := one(t, rec)
		if req.Method != http.MethodPost || req.Path != "/v1/refunds" {
			t.Errorf("sent %s %s, want POST /v1/refunds", req.Method, req.Path)
		}
		if req.IdempotencyKey != "order-42-refund" {
			t.Errorf("Idempotency-Key = %q, want order-42-refund", req.IdempotencyKey)
		}
		for k, v := range map[string]string{"payment_intent": "pi_3Abc123", "amount": "4200", "metadata[order_id]": "42"} {
			if got := req.Form.Get(k); got != v {
				t.Errorf("sent %s = %q, want %q", k, got, v)
			}
		}
	})
}

// TestStripeRefusesBadRequests checks that requests that cannot be right fail with
// domain.ErrInvalid before any call.
func TestStripeRefusesBadRequests(t *testing.T) {
	rec := &recorder{}
	// Nothing listens here; a call would fail as unavailable, not invalid.
	s := newClient(t, "http://127.0.0.1:1", rec)
	ctx := context.Background()
	ok := payments.IntentRequest{OrderID: 42, AmountCents: 4200, Currency: "eur", Attempt: 1}
	tests := []struct {
		name string
		call func() error
	}{
		{"zero amount", func() error { in := ok; in.AmountCents = 0; _, err := s.CreateIntent(ctx, in); return err }},
		{"negative amount", func() error { in := ok; in.AmountCents = -1; _, err := s.CreateIntent(ctx, in); return err }},
		{"no order", func() error { in := ok; in.OrderID = 0; _, err := s.CreateIntent(ctx, in); return err }},
		{"bad currency", func() error { in := ok; in.Currency = "euro"; _, err := s.CreateIntent(ctx, in); return err }},
		{"attempt 0", func() error { in := ok; in.Attempt = 0; _, err := s.CreateIntent(ctx, in); return err }},
		{"get: path in the id", func() error { _, err := s.GetIntent(ctx, "pi_1/../../v1/customers"); return err }},
		{"get: not an intent", func() error { _, err := s.GetIntent(ctx, "ch_123"); return err }},
		{"refund: zero amount", func() error {
			_, err := s.Refund(ctx, payments.RefundRequest{OrderID: 42, IntentID: "pi_1", AmountCents: 0})
			return err
		}},
		{"refund: no intent", func() error {
			_, err := s.Refund(ctx, payments.RefundRequest{OrderID: 42, AmountCents: 100})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("err = %v, want domain.ErrInvalid", err)
			}
			if reqs := rec.take(); len(reqs) != 0 {
				t.Errorf("sent %d requests, want none", len(reqs))
			}
		})
	}
}

// TestStripeDown checks that an unreachable Stripe is ErrUnavailable (and domain.ErrUnavailable,
// so HTTP answers 503) for every call.
func TestStripeDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	_ = l.Close()
	s := newClient(t, closed, &recorder{})
	ctx := context.Background()
	calls := map[string]func() error{
		"create": func() error {
			_, err := s.CreateIntent(ctx, payments.IntentRequest{OrderID: 1, AmountCents: 100, Currency: "eur", Attempt: 1})
			return err
		},
		"get": func() error { _, err := s.GetIntent(ctx, "pi_1"); return err },
		"refund": func() error {
			_, err := s.Refund(ctx, payments.RefundRequest{OrderID: 1, IntentID: "pi_1", AmountCents: 100})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, payments.ErrUnavailable) || !errors.Is(err, domain.ErrUnavailable) {
				t.Errorf("err = %v, want ErrUnavailable matching domain.ErrUnavailable", err)
			}
		})
	}
}

// TestStripeTimeout checks that a Stripe that does not answer within Timeout is ErrUnavailable.
func TestStripeTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answer
	}))
	t.Cleanup(srv.Close)
	s := newClient(t, srv.URL, &recorder{}, func(c *payments.Config) { c.Timeout = 100 * time.Millisecond })
	_, err := s.GetIntent(context.Background(), "pi_1")
	if !errors.Is(err, domain.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrUnavailable from the deadline", err)
	}
}

// TestStripeErrors checks how Stripe's error answers map to the domain's kinds. stripe-mock
// cannot be told to decline or fail, so a local server answers Stripe's error bodies.
func TestStripeErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		kind    error
		message string // the customer's message, when kind is a domain kind
	}{
		{"card declined", 402,
			`{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","payment_intent":{"id":"pi_1","client_secret":"pi_1_secret_TOPSECRET"}}}`,
			payments.ErrDeclined, "Your card has insufficient funds."},
		{"amount too small", 400,
			`{"error":{"type":"invalid_request_error","code":"amount_too_small","param":"amount","message":"Amount must be at least €0.50 eur"}}`,
			payments.ErrDeclined, "the amount is below the smallest card payment Stripe takes"},
		{"other invalid request", 400,
			`{"error":{"type":"invalid_request_error","code":"parameter_unknown","param":"foo","message":"Received unknown parameter: foo"}}`,
			payments.ErrDeclined, "the payment provider refused the request"},
		{"missing intent", 404,
			`{"error":{"type":"invalid_request_error","code":"resource_missing","param":"intent","message":"No such payment_intent: 'pi_1'"}}`,
			domain.ErrNotFound, "the payment was not found at Stripe"},
		{"already refunded", 400,
			`{"error":{"type":"invalid_request_error","code":"charge_already_refunded","message":"Charge ch_1 has already been refunded."}}`,
			domain.ErrConflict, "the payment was already refunded"},
		{"server error", 500, `{"error":{"type":"api_error","message":"Something went wrong."}}`,
			payments.ErrUnavailable, ""},
		{"rate limited", 429, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests."}}`,
			payments.ErrUnavailable, ""},
		{"bad gateway without a body", 502, `<html>bad gateway</html>`, payments.ErrUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Request-Id", "req_test")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			s := newClient(t, srv.URL, &recorder{})
			_, err := s.CreateIntent(context.Background(), payments.IntentRequest{OrderID: 1, AmountCents: 100, Currency: "eur", Attempt: 1})
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want %v", err, tt.kind)
			}
			if tt.message != "" {
				var de *domain.Error
				if !errors.As(err, &de) || de.Message != tt.message {
					t.Errorf("customer message = %+v, want %q", de, tt.message)
				}
			}
			if strings.Contains(err.Error(), "TOPSECRET") || strings.Contains(err.Error(), stripetest.SecretKey) {
				t.Errorf("err = %v: holds a secret", err)
			}
		})
	}

	t.Run("refused key is not the client's fault", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_***"}}`)
		}))
		t.Cleanup(srv.Close)
		_, err := newClient(t, srv.URL, &recorder{}).GetIntent(context.Background(), "pi_1")
		if err == nil || errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("err = %v, want an internal error (neither invalid nor unavailable)", err)
		}
	})
}
