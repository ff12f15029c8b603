package stripetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// The event types the store reads.
const (
	IntentSucceeded = "payment_intent.succeeded"
	IntentFailed    = "payment_intent.payment_failed"
	IntentCanceled  = "payment_intent.canceled"
	ChargeRefunded  = "charge.refunded"
)

// Event builds a webhook event of type typ as Stripe renders it (API version stripe.APIVersion)
// with a fresh id ("evt_test_…"; set event["id"] to choose one). Its data.object is a charge for
// charge.refunded (amountCents refunded in full) and a payment_intent otherwise (succeeded,
// failed with a card decline, canceled, or still requiring a payment method for another type),
// with metadata order_id unless orderID is 0.
func Event(typ, intentID string, orderID, amountCents int64, currency string) map[string]any {
	created := time.Now().Unix()
	metadata := map[string]any{}
	if orderID != 0 {
		metadata["order_id"] = strconv.FormatInt(orderID, 10)
	}
	var object map[string]any
	if typ == ChargeRefunded {
		object = map[string]any{
			"id":              "ch_" + randomID(),
			"object":          "charge",
			"amount":          amountCents,
			"amount_captured": amountCents,
			"amount_refunded": amountCents,
			"captured":        true,
			"created":         created,
			"currency":        currency,
			"livemode":        false,
			"metadata":        metadata,
			"paid":            true,
			"payment_intent":  intentID,
			"refunded":        true,
			"status":          "succeeded",
		}
	} else {
		object = map[string]any{
			"id":                        intentID,
			"object":                    "payment_intent",
			"amount":                    amountCents,
			"amount_received":           0,
			"automatic_payment_methods": map[string]any{"enabled": true},
			"canceled_at":               nil,
			"cancellation_reason":       nil,
			"capture_method":            "automatic",
			"client_secret":             intentID + "_secret_" + randomID(),
			"created":                   created,
			"currency":                  currency,
			"last_payment_error":        nil,
			"livemode":                  false,
			"metadata":                  metadata,
			"status":                    "requires_payment_method",
		}
		switch typ {
		case IntentSucceeded:
			object["amount_received"] = amountCents
			object["status"] = "succeeded"
			object["latest_charge"] = "ch_" + randomID()
		case IntentFailed:
			object["last_payment_error"] = map[string]any{
				"type":         "card_error",
				"code":         "card_declined",
				"decline_code": "generic_decline",
				"message":      "Your card was declined.",
			}
		case IntentCanceled:
			object["status"] = "canceled"
			object["canceled_at"] = created
			object["cancellation_reason"] = "abandoned"
		}
	}
	return map[string]any{
		"id":               "evt_test_" + randomID(),
		"object":           "event",
		"api_version":      stripe.APIVersion,
		"created":          created,
		"livemode":         false,
		"pending_webhooks": 1,
		"request":          map[string]any{"id": nil, "idempotency_key": nil},
		"type":             typ,
		"data":             map[string]any{"object": object},
	}
}

// SignedWebhook encodes event (a map from Event, or any value encoding/json takes; a []byte is
// taken as the body itself) and signs it with secret as Stripe does, now: the body and the
// Stripe-Signature header to send with it. It panics if event cannot be encoded.
func SignedWebhook(secret string, event any) (payload []byte, header string) {
	return SignedWebhookAt(secret, event, time.Now())
}

// SignedWebhookAt is SignedWebhook with the signature's timestamp at (an old one is refused).
func SignedWebhookAt(secret string, event any, at time.Time) (payload []byte, header string) {
	payload, ok := event.([]byte)
	if !ok {
		var err error
		payload, err = json.Marshal(event)
		if err != nil {
			panic(fmt.Sprintf("stripetest: encoding a webhook event: %v", err))
		}
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: payload, Secret: secret, Timestamp: at,
	})
	return signed.Payload, signed.Header
}

// Webhook is a signed webhook of type typ about the intent (see Event): the body and its
// Stripe-Signature header. Each call makes a new event id.
func Webhook(t testing.TB, secret, typ, intentID string, orderID, amountCents int64, currency string) (payload []byte, sigHeader string) {
	t.Helper()
	return SignedWebhook(secret, Event(typ, intentID, orderID, amountCents, currency))
}

// randomID is 24 random hex digits, the tail of a Stripe-looking id.
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
