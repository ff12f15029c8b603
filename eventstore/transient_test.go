package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
)

func TestTransient(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("loading stream x: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"admin shutdown", pg("57P01"), true},
		{"crash shutdown", pg("57P02"), true},
		{"cannot connect now", pg("57P03"), true},
		{"connection failure", pg("08006"), true},
		{"serialization failure", pg("40001"), true},
		{"deadlock", pg("40P01"), true},
		{"unique violation", pg("23505"), false},
		{"syntax error", pg("42601"), false},
		{"reset", fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{"unexpected EOF", fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		{"closed pool", errors.New("closed pool"), true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"cancelled by the client", fmt.Errorf("x: %w", context.Canceled), false},
		{"concurrency", &eventstore.ConcurrencyError{StreamID: "s"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := eventstore.Transient(tc.err); got != tc.want {
				t.Fatalf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A version clash matches the domain's concurrency error, so the layers above need not import the
// event store to recognise it.
func TestConcurrencyErrorIsTheDomains(t *testing.T) {
	err := fmt.Errorf("appending: %w", &eventstore.ConcurrencyError{StreamID: "product-1", ExpectedVersion: 3})
	if !errors.Is(err, domain.ErrConcurrency) || !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("%v does not match both concurrency errors", err)
	}
}
