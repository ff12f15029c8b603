// Package domain holds what every aggregate shares: the error vocabulary, money and the event
// contract. It imports the standard library only.
package domain

import (
	"errors"
	"fmt"
)

// The error kinds. The HTTP layer maps each to one status code.
var (
	ErrInvalid         = errors.New("invalid")
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrForbidden       = errors.New("forbidden")
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrConcurrency: a stream changed between a command's load and its append (a version
	// clash). The event store's concurrency error matches it.
	ErrConcurrency = errors.New("concurrency conflict")
	// ErrUnavailable: a dependency (the database) failed transiently; the request may be
	// repeated. For a command, its outcome may be unknown: repeat it with its Idempotency-Key.
	ErrUnavailable = errors.New("unavailable")
	// ErrPriceChanged: an order was refused because a price in the cart changed since it was
	// added (the cart now shows the new price). A conflict of its own code, price_changed.
	ErrPriceChanged = errors.New("price changed")
)

// Error is a domain error of one kind, with a message fit for clients and, where one field is at
// fault, that field's name.
type Error struct {
	Kind    error
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap lets errors.Is(err, ErrInvalid) and friends match.
func (e *Error) Unwrap() error { return e.Kind }

// Invalid reports a bad value of field.
func Invalid(field, format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports a missing resource.
func NotFound(format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf(format, args...)}
}

// Conflict reports a request the current state forbids.
func Conflict(format string, args ...any) error {
	return &Error{Kind: ErrConflict, Message: fmt.Sprintf(format, args...)}
}
