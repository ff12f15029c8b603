package queries_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/queries"
)

// Hand-made cursors whose values Go's parsers accept but Postgres would not are refused as
// invalid (400), never passed on to fail in SQL (500).
func TestHandMadeCursors(t *testing.T) {
	e := projtest.NewEnv(t)
	cursor := func(sort, value string) string {
		b, _ := json.Marshal(map[string]any{"s": sort, "v": value, "id": 1})
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		sort, value string
	}{
		{"-created_at", "0000-01-01T00:00:00"},
		{"-rating", "0x1p-2"},
		{"-rating", "NaN"},
		{"-rating", "6"},
		{"price", "\u00a05"},
		{"-price", "5\u2003"},
		{"price", "-1"},
		{"name", "a\u0000b"},
	}
	for _, tc := range tests {
		t.Run(tc.sort+" "+tc.value, func(t *testing.T) {
			_, err := e.Q.Products(context.Background(), queries.ProductFilter{Sort: tc.sort, Limit: 5, Cursor: cursor(tc.sort, tc.value)})
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("err = %v, want invalid", err)
			}
		})
	}
	// Well-formed ones still work.
	for sort, value := range map[string]string{"-rating": "4.50", "price": "19.99", "-created_at": "2026-01-02T03:04:05.123456", "name": "Mouse"} {
		if _, err := e.Q.Products(context.Background(), queries.ProductFilter{Sort: sort, Limit: 5, Cursor: cursor(sort, value)}); err != nil {
			t.Errorf("%s %s: %v", sort, value, err)
		}
	}
}
