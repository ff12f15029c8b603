package payments

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/stripe/stripe-go/v76"

	"github.com/techvault/techvault/domain"
)

// kindError is a sentinel of this package that also matches a domain error kind.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// The errors of the package.
var (
	// ErrUnavailable: Stripe could not be reached or failed (5xx, rate limit, timeout). The
	// call's outcome may be unknown; repeating it with the same idempotency key is safe. It
	// matches domain.ErrUnavailable (HTTP 503).
	ErrUnavailable error = &kindError{"stripe unavailable", domain.ErrUnavailable}
	// ErrDeclined: Stripe refused the payment or refund (a card error, an amount out of range,
	// a request it judged invalid). The error chain holds a *domain.Error whose Message is fit
	// for the customer. It matches domain.ErrInvalid (HTTP 422).
	ErrDeclined error = &kindError{"payment declined", domain.ErrInvalid}
	// ErrBadSignature: a webhook's Stripe-Signature header is missing, unreadable, does not
	// sign the body with the webhook secret, or is older than the tolerance. Answer 400.
	ErrBadSignature = errors.New("stripe webhook: bad signature")
	// ErrMalformed: a correctly signed webhook whose body is not the JSON event expected.
	// Answer 400.
	ErrMalformed = errors.New("stripe webhook: malformed event")
)

// classify turns an error of stripe-go into one of the package's kinds. The text it wraps names
// the HTTP status, Stripe's error type and code and the request id, never the body Stripe sent
// (stripe-go's Error() is that body as JSON, which can hold an intent with its client secret).
func classify(ctx context.Context, op string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		// Not an answer of Stripe: a connection error, a timeout, a cancelled context.
		if ctx.Err() != nil {
			return fmt.Errorf("stripe %s: %w: %w", op, ErrUnavailable, ctx.Err())
		}
		return fmt.Errorf("stripe %s: %w: %w", op, ErrUnavailable, err)
	}
	detail := fmt.Sprintf("status %d %s", se.HTTPStatusCode, se.Type)
	if se.Code != "" {
		detail += " " + string(se.Code)
	}
	if se.DeclineCode != "" {
		detail += " (" + string(se.DeclineCode) + ")"
	}
	if se.Param != "" {
		detail += " param " + se.Param
	}
	if se.RequestID != "" {
		detail += " request " + se.RequestID
	}
	switch {
	case se.HTTPStatusCode >= 500, se.HTTPStatusCode == http.StatusTooManyRequests,
		se.HTTPStatusCode == http.StatusConflict, se.Type == stripe.ErrorTypeAPI:
		return fmt.Errorf("stripe %s: %s: %w", op, detail, ErrUnavailable)
	case se.HTTPStatusCode == http.StatusUnauthorized, se.HTTPStatusCode == http.StatusForbidden:
		// The server's key is wrong or lacks a permission: not the client's fault, nor passing.
		return fmt.Errorf("stripe %s: %s: the secret key was refused", op, detail)
	case se.Type == stripe.ErrorTypeCard:
		// Stripe writes card errors' messages for the customer ("Your card was declined.").
		msg := se.Msg
		if msg == "" {
			msg = "the card was declined"
		}
		return fmt.Errorf("stripe %s: %s: %w", op, detail, declined(msg))
	case se.Code == stripe.ErrorCodeResourceMissing:
		return fmt.Errorf("stripe %s: %s: %w", op, detail, domain.NotFound("the payment was not found at Stripe"))
	case se.Code == stripe.ErrorCodeChargeAlreadyRefunded:
		return fmt.Errorf("stripe %s: %s: %w", op, detail, domain.Conflict("the payment was already refunded"))
	case se.Code == stripe.ErrorCodeAmountTooSmall:
		return fmt.Errorf("stripe %s: %s: %w", op, detail, declined("the amount is below the smallest card payment Stripe takes"))
	case se.Code == stripe.ErrorCodeAmountTooLarge:
		return fmt.Errorf("stripe %s: %s: %w", op, detail, declined("the amount is above the largest card payment Stripe takes"))
	case se.Type == stripe.ErrorTypeIdempotency:
		// The same key with other parameters: a bug of the caller (an attempt's amount changed).
		return fmt.Errorf("stripe %s: %s: an idempotency key was reused with other parameters", op, detail)
	case se.Type == stripe.ErrorTypeInvalidRequest:
		// Stripe's message for these is written for developers: the customer gets a generic one.
		return fmt.Errorf("stripe %s: %s: %w", op, detail, declined("the payment provider refused the request"))
	}
	return fmt.Errorf("stripe %s: %s: unexpected error", op, detail)
}

// declined is an ErrDeclined with a message for the customer.
func declined(msg string) error {
	return &domain.Error{Kind: ErrDeclined, Field: "payment", Message: msg}
}
