package eventstore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/techvault/techvault/domain"
)

// Transient reports whether err is a database failure that may pass if the operation is tried
// again: the server shutting down or terminating the connection (57P01, 57P02, 57P03), a
// connection exception (class 08), a serialization failure (40001) or deadlock (40P01), a reset or
// closed connection, a closed pool, or the operation's deadline. Errors the server reported about
// the request itself (constraint violations, bad SQL, ...) are not transient.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "40001", "40P01":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	}
	// pgxpool (through puddle) and pgconn report these as plain errors.
	msg := err.Error()
	return strings.Contains(msg, "closed pool") || strings.Contains(msg, "conn closed")
}

// SafeToRetry reports whether err happened before anything was sent to the server, so that the
// operation certainly had no effect and may be repeated, even an append.
func SafeToRetry(err error) bool { return pgconn.SafeToRetry(err) }

// unavailableError is a transient database failure: errors.Is(err, domain.ErrUnavailable) holds
// (HTTP 503 with Retry-After), and the cause stays in the chain for the log.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{domain.ErrUnavailable, e.err} }

// Unavailable marks a transient failure (see Transient) with domain.ErrUnavailable; any other
// error, and nil, is returned as it is. Commands, queries and projection status use it at their
// boundaries, so that a lost connection is a retryable 503 on every route, never a 500.
func Unavailable(err error) error {
	if err != nil && Transient(err) {
		return &unavailableError{err}
	}
	return err
}
