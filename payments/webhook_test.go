package payments_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/techvault/techvault/internal/stripetest"
	"github.com/techvault/techvault/payments"
)

func TestParseWebhook(t *testing.T) {
	s, err := payments.New(payments.Config{SecretKey: stripetest.SecretKey, WebhookSecret: stripetest.WebhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	secret := stripetest.WebhookSecret
	signed := func(ev map[string]any) ([]byte, string) { return stripetest.SignedWebhook(secret, ev) }
	withObject := func(ev map[string]any, key string, value any) map[string]any {
		ev["data"].(map[string]any)["object"].(map[string]any)[key] = value
		return ev
	}

	// An event for the cases that check one field.
	valid := stripetest.Event(stripetest.IntentSucceeded, "pi_ok", 42, 4200, "eur")
	validBody, validHeader := signed(valid)

	type want struct {
		ev  payments.Event
		err error
	}
	tests := []struct {
		name   string
		body   func() ([]byte, string)
		want   want
		wantID bool // the event id is the one generated
	}{
		{"succeeded", func() ([]byte, string) {
			return stripetest.Webhook(t, secret, stripetest.IntentSucceeded, "pi_1", 42, 4200, "eur")
		}, want{ev: payments.Event{Type: payments.EventIntentSucceeded, IntentID: "pi_1", OrderID: 42, AmountCents: 4200, Currency: "eur"}}, true},
		{"payment failed", func() ([]byte, string) {
			return stripetest.Webhook(t, secret, stripetest.IntentFailed, "pi_2", 43, 999, "usd")
		}, want{ev: payments.Event{Type: payments.EventIntentFailed, IntentID: "pi_2", OrderID: 43, AmountCents: 999, Currency: "usd",
			FailureCode: "generic_decline", FailureMessage: "Your card was declined."}}, true},
		{"canceled", func() ([]byte, string) {
			return stripetest.Webhook(t, secret, stripetest.IntentCanceled, "pi_3", 44, 100, "eur")
		}, want{ev: payments.Event{Type: payments.EventIntentCanceled, IntentID: "pi_3", OrderID: 44, AmountCents: 100, Currency: "eur"}}, true},
		{"charge refunded", func() ([]byte, string) {
			return stripetest.Webhook(t, secret, stripetest.ChargeRefunded, "pi_4", 45, 4200, "eur")
		}, want{ev: payments.Event{Type: payments.EventChargeRefunded, IntentID: "pi_4", OrderID: 45, AmountCents: 4200, Currency: "eur"}}, true},
		{"an intent without order metadata", func() ([]byte, string) {
			return stripetest.Webhook(t, secret, stripetest.IntentSucceeded, "pi_5", 0, 100, "eur")
		}, want{ev: payments.Event{Type: payments.EventIntentSucceeded, IntentID: "pi_5", AmountCents: 100, Currency: "eur"}}, true},
		{"another API version", func() ([]byte, string) {
			ev := stripetest.Event(stripetest.IntentSucceeded, "pi_6", 46, 100, "eur")
			ev["api_version"] = "2020-08-27"
			ev["id"] = "evt_fixed"
			return signed(ev)
		}, want{ev: payments.Event{ID: "evt_fixed", Type: payments.EventIntentSucceeded, IntentID: "pi_6", OrderID: 46, AmountCents: 100, Currency: "eur"}}, false},
		{"unknown type: type only", func() ([]byte, string) {
			return stripetest.Webhook(t, secret, "customer.created", "pi_7", 47, 100, "eur")
		}, want{ev: payments.Event{Type: "customer.created"}}, true},

		{"tampered body", func() ([]byte, string) {
			return bytes.Replace(validBody, []byte(`"amount":4200`), []byte(`"amount":1`), 1), validHeader
		}, want{err: payments.ErrBadSignature}, false},
		{"wrong secret", func() ([]byte, string) {
			return stripetest.Webhook(t, "whsec_other", stripetest.IntentSucceeded, "pi_1", 42, 4200, "eur")
		}, want{err: payments.ErrBadSignature}, false},
		{"missing header", func() ([]byte, string) { return validBody, "" }, want{err: payments.ErrBadSignature}, false},
		{"garbled header", func() ([]byte, string) { return validBody, "t=notatime,v1" }, want{err: payments.ErrBadSignature}, false},
		{"old timestamp", func() ([]byte, string) {
			return stripetest.SignedWebhookAt(secret, valid, time.Now().Add(-10*time.Minute))
		}, want{err: payments.ErrBadSignature}, false},
		{"malformed JSON", func() ([]byte, string) {
			return stripetest.SignedWebhook(secret, []byte(`{"id":"evt_1","type":`))
		}, want{err: payments.ErrMalformed}, false},
		{"no event id", func() ([]byte, string) {
			ev := stripetest.Event(stripetest.IntentSucceeded, "pi_1", 42, 4200, "eur")
			delete(ev, "id")
			return signed(ev)
		}, want{err: payments.ErrMalformed}, false},
		{"object of the wrong kind", func() ([]byte, string) {
			return signed(withObject(stripetest.Event(stripetest.IntentSucceeded, "pi_1", 42, 4200, "eur"), "object", "charge"))
		}, want{err: payments.ErrMalformed}, false},
		{"order id not a number", func() ([]byte, string) {
			return signed(withObject(stripetest.Event(stripetest.IntentSucceeded, "pi_1", 42, 4200, "eur"), "metadata", map[string]any{"order_id": "forty-two"}))
		}, want{err: payments.ErrMalformed}, false},
		{"amount not a number", func() ([]byte, string) {
			return signed(withObject(stripetest.Event(stripetest.ChargeRefunded, "pi_1", 42, 4200, "eur"), "amount_refunded", "4200"))
		}, want{err: payments.ErrMalformed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, header := tt.body()
			got, err := s.ParseWebhook(body, header)
			if tt.want.err != nil {
				if !errors.Is(err, tt.want.err) {
					t.Fatalf("err = %v, want %v", err, tt.want.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if tt.wantID {
				if len(got.ID) < len("evt_x") || got.ID[:4] != "evt_" {
					t.Errorf("ID = %q, want an evt_ id", got.ID)
				}
				tt.want.ev.ID = got.ID
			}
			if got.Created.IsZero() || time.Since(got.Created) > time.Hour {
				t.Errorf("Created = %v, want about now", got.Created)
			}
			got.Created = time.Time{}
			if got != tt.want.ev {
				t.Errorf("event =\n %+v, want\n %+v", got, tt.want.ev)
			}
		})
	}
}

func TestWebhookIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		id := stripetest.Event(stripetest.IntentSucceeded, "pi_1", 1, 1, "eur")["id"].(string)
		if seen[id] {
			t.Fatalf("event id %s made twice", id)
		}
		seen[id] = true
	}
}
