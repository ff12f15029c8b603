package domain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Money is an exact amount in cents. It is written as a decimal string with two places
// ("1999.00"), never as a float.
type Money int64

// MaxMoney is the largest amount the store accepts (numeric(12,2) holds it).
const MaxMoney Money = 99_999_999_999 // 999,999,999.99

// Cents returns the amount in cents.
func (m Money) Cents() int64 { return int64(m) }

// String formats the amount with two decimal places.
func (m Money) String() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// ParseMoney reads a decimal amount with at most two decimal places: "12", "12.5", "12.50",
// "-3.10". It is strict: ASCII digits, at most one dot followed by one or two digits, and an
// optional leading minus; no spaces, no plus sign, no exponent, and no negative zero ("-0",
// "-0.00"). Whether a negative amount is allowed is for the caller (a price never is).
func ParseMoney(s string) (Money, error) {
	if s == "" {
		return 0, fmt.Errorf("empty amount")
	}
	text := s
	neg := false
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || len(frac) > 2 || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%q is not a decimal amount with at most two decimal places", text)
	}
	if len(whole) > 12 {
		return 0, fmt.Errorf("amount is too large")
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount is too large")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	v := w*100 + f
	if neg {
		if v == 0 {
			return 0, fmt.Errorf("%q is a negative zero; write 0", text)
		}
		v = -v
	}
	return Money(v), nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// MarshalJSON writes the amount as a decimal string.
func (m Money) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// UnmarshalJSON reads a decimal string; a bare JSON number is accepted when it has at most two
// decimal places (it is read as text, never through a float).
func (m *Money) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("amount must be a decimal string such as \"19.99\"")
		}
		s = n.String()
	}
	v, err := ParseMoney(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}
