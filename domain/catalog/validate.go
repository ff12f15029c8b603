package catalog

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/techvault/techvault/domain"
)

// Limits of the catalog's fields (the read tables' column sizes).
const (
	MaxCategoryName        = 50
	MaxCategoryDescription = 500
	MaxProductName         = 255
	MaxProductDescription  = 5000
	MaxStock               = 1_000_000_000
	Currency               = "USD"
)

// cleanText trims s and checks it is non-empty (when required), within max characters and free of
// control characters (newlines and tabs are allowed in multi-line fields).
func cleanText(field, s string, required bool, maxLen int, multiline bool) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", domain.Invalid(field, "%s is not valid UTF-8", field)
	}
	if required && s == "" {
		return "", domain.Invalid(field, "%s must not be empty", field)
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		return "", domain.Invalid(field, "%s is %d characters long; the limit is %d", field, n, maxLen)
	}
	for _, r := range s {
		allowed := multiline && (r == '\n' || r == '\t' || r == '\r')
		if unicode.IsControl(r) && !allowed {
			return "", domain.Invalid(field, "%s contains a control character", field)
		}
	}
	return s, nil
}

func checkPrice(p domain.Money) error {
	if p < 0 {
		return domain.Invalid("price", "price must not be negative")
	}
	if p > domain.MaxMoney {
		return domain.Invalid("price", "price must be at most %s", domain.MaxMoney)
	}
	return nil
}

func checkStock(field string, s int64) error {
	if s < 0 {
		return domain.Invalid(field, "stock must not go below zero")
	}
	if s > MaxStock {
		return domain.Invalid(field, "stock must be at most %d", MaxStock)
	}
	return nil
}
