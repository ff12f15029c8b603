package stripetest_test

import (
	"encoding/json"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/techvault/techvault/internal/stripetest"
)

// TestWebhookIsWhatStripeGoExpects checks the events against stripe-go's own strict reading (its
// signature check and API version check, and its types), so they look like Stripe's.
func TestWebhookIsWhatStripeGoExpects(t *testing.T) {
	for _, typ := range []string{stripetest.IntentSucceeded, stripetest.IntentFailed, stripetest.IntentCanceled, stripetest.ChargeRefunded} {
		t.Run(typ, func(t *testing.T) {
			payload, header := stripetest.Webhook(t, stripetest.WebhookSecret, typ, "pi_123", 42, 4200, "eur")
			ev, err := webhook.ConstructEvent(payload, header, stripetest.WebhookSecret)
			if err != nil {
				t.Fatalf("ConstructEvent: %v", err)
			}
			if string(ev.Type) != typ {
				t.Errorf("type = %s, want %s", ev.Type, typ)
			}
			if typ == stripetest.ChargeRefunded {
				var ch stripe.Charge
				if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
					t.Fatalf("decoding the charge: %v", err)
				}
				if ch.PaymentIntent == nil || ch.PaymentIntent.ID != "pi_123" || ch.AmountRefunded != 4200 || !ch.Refunded || ch.Metadata["order_id"] != "42" {
					t.Errorf("charge = %+v, want refunded in full, of pi_123, order 42", ch)
				}
				return
			}
			var pi stripe.PaymentIntent
			if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
				t.Fatalf("decoding the intent: %v", err)
			}
			if pi.ID != "pi_123" || pi.Amount != 4200 || pi.Currency != "eur" || pi.Metadata["order_id"] != "42" {
				t.Errorf("intent = %+v, want pi_123 of 4200 eur for order 42", pi)
			}
			wantStatus := map[string]stripe.PaymentIntentStatus{
				stripetest.IntentSucceeded: stripe.PaymentIntentStatusSucceeded,
				stripetest.IntentFailed:    stripe.PaymentIntentStatusRequiresPaymentMethod,
				stripetest.IntentCanceled:  stripe.PaymentIntentStatusCanceled,
			}[typ]
			if pi.Status != wantStatus {
				t.Errorf("status = %s, want %s", pi.Status, wantStatus)
			}
		})
	}
}
