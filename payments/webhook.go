package payments

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// The webhook event types ParseWebhook reads in full. Others come back with their Type only.
const (
	EventIntentSucceeded = "payment_intent.succeeded"
	EventIntentFailed    = "payment_intent.payment_failed"
	EventIntentCanceled  = "payment_intent.canceled"
	EventChargeRefunded  = "charge.refunded"
)

// SignatureHeader is the header Stripe signs webhooks in.
const SignatureHeader = "Stripe-Signature"

// Event is a verified webhook event. For a type other than the four Event… constants, only ID,
// Type and Created are set: the caller acknowledges it and does nothing.
type Event struct {
	// ID is Stripe's event id (evt_…): Stripe may deliver an event more than once, so record
	// each id once.
	ID   string
	Type string
	// IntentID is the PaymentIntent the event is about (for charge.refunded, the charge's).
	IntentID string
	// OrderID is the object's metadata order_id; 0 when it has none (an object this store did
	// not make, or a charge Stripe did not copy the intent's metadata to): find the order by
	// IntentID then, or ignore the event.
	OrderID int64
	// AmountCents is what the event is about: the amount received for payment_intent.succeeded,
	// the intent's amount for payment_failed and canceled, the amount refunded so far for
	// charge.refunded. Check it, with Currency, against the order.
	AmountCents int64
	// Currency is Stripe's lower-case ISO code.
	Currency string
	// FailureCode and FailureMessage explain payment_intent.payment_failed (Stripe's decline or
	// error code, and its message, written for the customer).
	FailureCode    string
	FailureMessage string
	// Created is when Stripe created the event.
	Created time.Time
}

// eventObject is the part of data.object the four event types need: a payment_intent, or a
// charge for charge.refunded.
type eventObject struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Amount           int64             `json:"amount"`
	AmountReceived   int64             `json:"amount_received"`
	AmountRefunded   int64             `json:"amount_refunded"`
	Currency         string            `json:"currency"`
	Metadata         map[string]string `json:"metadata"`
	PaymentIntent    json.RawMessage   `json:"payment_intent"`
	LastPaymentError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"last_payment_error"`
}

// ParseWebhook verifies the Stripe-Signature header (sigHeader) on the raw request body
// (payload, exactly as received) with the webhook secret, within webhook.DefaultTolerance (5
// minutes), and reads the event. Errors: ErrBadSignature, ErrMalformed (both: answer 400).
// The handler must pass the body's bytes untouched (read with a size limit, never re-encoded
// from a bound struct) and answer 2xx to an event it has already recorded, or Stripe retries it.
//
// The event's API version is not checked against stripe-go's (2023-10-16): the endpoint's
// version is set in Stripe's dashboard and may differ, and a refusal would make Stripe retry
// every event for days. That is safe because only fields stable across API versions are read
// (ids, amounts, currency, metadata, last_payment_error), by this package's own decoding rather
// than stripe-go's types.
func (s *Stripe) ParseWebhook(payload []byte, sigHeader string) (Event, error) {
	return parseWebhook(payload, sigHeader, s.cfg.WebhookSecret)
}

func parseWebhook(payload []byte, sigHeader, secret string) (Event, error) {
	se, err := webhook.ConstructEventWithOptions(payload, sigHeader, secret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		switch {
		case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader),
			errors.Is(err, webhook.ErrNoValidSignature), errors.Is(err, webhook.ErrTooOld):
			return Event{}, fmt.Errorf("%w: %w", ErrBadSignature, err)
		}
		// The signature held: what failed is decoding the body.
		return Event{}, fmt.Errorf("%w: %s", ErrMalformed, err.Error())
	}
	if se.ID == "" || se.Type == "" {
		return Event{}, fmt.Errorf("%w: no event id or type", ErrMalformed)
	}
	ev := Event{ID: se.ID, Type: string(se.Type), Created: time.Unix(se.Created, 0).UTC()}
	switch ev.Type {
	case EventIntentSucceeded, EventIntentFailed, EventIntentCanceled, EventChargeRefunded:
	default:
		return ev, nil
	}
	if se.Data == nil || len(se.Data.Raw) == 0 {
		return Event{}, fmt.Errorf("%w: event %s has no data.object", ErrMalformed, ev.ID)
	}
	var obj eventObject
	if err := json.Unmarshal(se.Data.Raw, &obj); err != nil {
		return Event{}, fmt.Errorf("%w: event %s: data.object: %s", ErrMalformed, ev.ID, err.Error())
	}
	if err := readObject(&ev, obj); err != nil {
		return Event{}, fmt.Errorf("%w: event %s (%s): %s", ErrMalformed, ev.ID, ev.Type, err.Error())
	}
	return ev, nil
}

// readObject fills ev from the event's object and checks it is the object the type promises.
func readObject(ev *Event, obj eventObject) error {
	ev.Currency = obj.Currency
	switch ev.Type {
	case EventChargeRefunded:
		if obj.Object != "charge" {
			return fmt.Errorf("data.object is a %q, not a charge", obj.Object)
		}
		id, err := intentRef(obj.PaymentIntent)
		if err != nil {
			return err
		}
		ev.IntentID, ev.AmountCents = id, obj.AmountRefunded
	default:
		if obj.Object != "payment_intent" {
			return fmt.Errorf("data.object is a %q, not a payment_intent", obj.Object)
		}
		if !isObjectID(obj.ID, "pi_") {
			return fmt.Errorf("data.object.id %q is no PaymentIntent id", obj.ID)
		}
		ev.IntentID, ev.AmountCents = obj.ID, obj.Amount
		if ev.Type == EventIntentSucceeded {
			ev.AmountCents = obj.AmountReceived
		}
		if e := obj.LastPaymentError; ev.Type == EventIntentFailed && e != nil {
			ev.FailureCode, ev.FailureMessage = e.Code, e.Message
			if e.DeclineCode != "" {
				ev.FailureCode = e.DeclineCode
			}
		}
	}
	if ev.AmountCents < 0 {
		return fmt.Errorf("negative amount %d", ev.AmountCents)
	}
	if !isCurrency(ev.Currency) {
		return fmt.Errorf("currency %q is no lower-case ISO code", ev.Currency)
	}
	if raw, ok := obj.Metadata[MetadataOrderID]; ok {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("metadata %s %q is no order id", MetadataOrderID, raw)
		}
		ev.OrderID = id
	}
	return nil
}

// intentRef reads a charge's payment_intent: an id, an expanded object, or null (a charge made
// without an intent: IntentID stays empty).
func intentRef(raw json.RawMessage) (string, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return "", nil
	}
	var id string
	if strings.HasPrefix(s, "{") {
		var obj struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", fmt.Errorf("payment_intent: %w", err)
		}
		id = obj.ID
	} else if err := json.Unmarshal(raw, &id); err != nil {
		return "", fmt.Errorf("payment_intent: %w", err)
	}
	if !isObjectID(id, "pi_") {
		return "", fmt.Errorf("payment_intent %q is no PaymentIntent id", id)
	}
	return id, nil
}
