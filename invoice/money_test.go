package invoice_test

import (
	"errors"
	"math"
	"testing"

	"github.com/techvault/techvault/invoice"
)

func TestFormatCents(t *testing.T) {
	tests := []struct {
		name     string
		cents    int64
		currency string
		want     string
	}{
		{"zero", 0, "USD", "0.00 USD"},
		{"five cents", 5, "USD", "0.05 USD"},
		{"ten cents", 10, "USD", "0.10 USD"},
		{"one unit", 100, "USD", "1.00 USD"},
		{"no separator below a thousand", 99999, "USD", "999.99 USD"},
		{"one separator", 189900, "USD", "1,899.00 USD"},
		{"two separators", 123456789, "USD", "1,234,567.89 USD"},
		{"max invoice amount", invoice.MaxCents, "EUR", "999,999,999.99 EUR"},
		{"max int64 is exact", math.MaxInt64, "USD", "92,233,720,368,547,758.07 USD"},
		{"no currency", 123456, "", "1,234.56"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := invoice.FormatCents(tt.cents, tt.currency)
			if err != nil || got != tt.want {
				t.Fatalf("FormatCents(%d, %q) = %q, %v; want %q", tt.cents, tt.currency, got, err, tt.want)
			}
		})
	}
}

func TestFormatCentsRefusesNegative(t *testing.T) {
	for _, cents := range []int64{-1, -100, math.MinInt64} {
		got, err := invoice.FormatCents(cents, "USD")
		if !errors.Is(err, invoice.ErrNegativeAmount) || got != "" {
			t.Errorf("FormatCents(%d) = %q, %v; want ErrNegativeAmount", cents, got, err)
		}
	}
}
