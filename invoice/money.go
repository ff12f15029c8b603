package invoice

import (
	"errors"
	"strconv"
)

// ErrNegativeAmount is returned by FormatCents for an amount below zero: an invoice shows
// amounts as they are charged, and a discount is shown as a subtraction, never as a negative.
var ErrNegativeAmount = errors.New("negative amount")

// FormatCents formats an amount of cents with a thousands separator, two decimal places and the
// currency code after it: 189900 and "USD" give "1,899.00 USD". It uses integer arithmetic
// only (no floats), so every amount up to math.MaxInt64 cents is exact.
func FormatCents(cents int64, currency string) (string, error) {
	if cents < 0 {
		return "", ErrNegativeAmount
	}
	whole := strconv.FormatInt(cents/100, 10)
	frac := cents % 100
	b := make([]byte, 0, len(whole)+len(whole)/3+4+len(currency))
	for i := range len(whole) {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, whole[i])
	}
	b = append(b, '.', byte('0'+frac/10), byte('0'+frac%10))
	if currency != "" {
		b = append(b, ' ')
		b = append(b, currency...)
	}
	return string(b), nil
}
