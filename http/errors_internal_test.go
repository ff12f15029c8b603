package http

import (
	"fmt"
	"strings"
	"testing"

	"github.com/techvault/techvault/eventstore"
)

func TestErrorResponse(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"duplicate event", fmt.Errorf("appending: %w: Key (uuid)=(0190…) already exists", eventstore.ErrDuplicateEvent), 409, "conflict"},
		{"concurrency", fmt.Errorf("deciding: %w", &eventstore.ConcurrencyError{StreamID: "product-1"}), 409, "conflict"},
		{"bad request", badRequest("limit", "limit must be a whole number"), 400, "invalid"},
		{"unknown", fmt.Errorf("boom"), 500, "internal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := errorResponse(tc.err)
			if status != tc.status || body.Error.Code != tc.code {
				t.Fatalf("got %d %+v, want %d %s", status, body.Error, tc.status, tc.code)
			}
			if strings.Contains(body.Error.Message, "Key (") || strings.Contains(body.Error.Message, "boom") {
				t.Fatalf("message leaks internals: %q", body.Error.Message)
			}
		})
	}
}
