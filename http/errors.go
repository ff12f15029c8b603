// Package http is the HTTP API: the Gin router, thin handlers, the error mapping, request ids,
// access logs and the OpenAPI document.
package http

import (
	"context"
	"errors"
	"log/slog"
	nethttp "net/http"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong. Field is set when one field is at fault.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// Position is the log position of what a refused command appended nevertheless (an order
	// refused for a changed price reprices the cart), for X-Min-Position.
	Position int64 `json:"position,omitempty"`
}

// errorCodes is the one table mapping error kinds to status and code.
var errorCodes = []struct {
	kind   error
	status int
	code   string
}{
	{domain.ErrInvalid, nethttp.StatusUnprocessableEntity, "invalid"},
	{domain.ErrNotFound, nethttp.StatusNotFound, "not_found"},
	{domain.ErrPriceChanged, nethttp.StatusConflict, "price_changed"},
	{domain.ErrConflict, nethttp.StatusConflict, "conflict"},
	{domain.ErrConcurrency, nethttp.StatusConflict, "conflict"},
	{domain.ErrForbidden, nethttp.StatusForbidden, "forbidden"},
	{domain.ErrUnauthenticated, nethttp.StatusUnauthorized, "unauthenticated"},
	{errBadRequest, nethttp.StatusBadRequest, "invalid"},
	{errUnsupportedMedia, nethttp.StatusUnsupportedMediaType, "invalid"},
	{errTooLarge, nethttp.StatusRequestEntityTooLarge, "invalid"},
	{errTooManyRequests, nethttp.StatusTooManyRequests, "rate_limited"},
	{domain.ErrUnavailable, nethttp.StatusServiceUnavailable, "unavailable"},
}

// errBadRequest marks malformed requests (bad JSON, unknown fields, bad query parameters): 400.
var (
	errBadRequest       = errors.New("bad request")
	errUnsupportedMedia = errors.New("unsupported media type")
	errTooLarge         = errors.New("request body too large")
	errTooManyRequests  = errors.New("rate limited")
)

// badRequest is a 400 about field.
func badRequest(field, message string) error {
	return &domain.Error{Kind: errBadRequest, Field: field, Message: message}
}

// writeError maps err to its status and JSON body. Unknown errors are 500 with no details; the
// details go to the log with the request id.
func writeError(c *gin.Context, err error) {
	status, body := errorResponse(err)
	if status == nethttp.StatusServiceUnavailable {
		c.Header("Retry-After", "1")
	}
	if status >= 500 {
		if errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil {
			status = 499 // the client went away; nothing to tell it
		}
		logger(c).Error("request failed", "err", err)
	}
	c.AbortWithStatusJSON(status, body)
}

func errorResponse(err error) (int, ErrorBody) {
	if de := (*domain.Error)(nil); errors.As(err, &de) && errors.Is(de.Kind, domain.ErrInvalid) && de.Field == "cursor" {
		// A cursor is opaque: one the server did not hand out cannot be read, a 400 whichever
		// query decodes it (the one rule for 400 and 422).
		return nethttp.StatusBadRequest, ErrorBody{Error: ErrorDetail{Code: "invalid", Message: de.Message, Field: de.Field}}
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.kind) {
			d := ErrorDetail{Code: e.code, Message: err.Error()}
			var de *domain.Error
			if errors.As(err, &de) {
				d.Message, d.Field = de.Message, de.Field
			}
			if at := (*commands.RefusedAt)(nil); errors.As(err, &at) {
				d.Position = at.Position
			}
			switch {
			case errors.Is(e.kind, domain.ErrConcurrency):
				d.Message = "the resource was changed concurrently; reload and try again"
			case errors.Is(e.kind, domain.ErrUnavailable):
				d.Message = "a service this request needs is unavailable for a moment; retry (a command with the same Idempotency-Key, so it cannot apply twice)"
			}
			return e.status, ErrorBody{Error: d}
		}
	}
	return nethttp.StatusInternalServerError, ErrorBody{Error: ErrorDetail{Code: "internal", Message: "internal error"}}
}

// logger is the request's logger: every line carries the request id. It is built on first use,
// so requests that log nothing pay nothing for it.
func logger(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(loggerKey); ok {
		if l, ok := l.(*slog.Logger); ok {
			return l
		}
	}
	base, ok := c.Get(baseLoggerKey)
	if !ok {
		return slog.Default()
	}
	l := base.(*slog.Logger).With("request_id", c.GetString(requestIDKey))
	c.Set(loggerKey, l)
	return l
}
