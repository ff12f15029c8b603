// Package invoice renders an order's invoice as a PDF. It knows no storage and no transport: the
// caller builds an Invoice from the order and writes the PDF to any io.Writer (an HTTP response,
// a file, a buffer).
//
// The PDF uses the core Helvetica font, whose text is in code page 1252: text is translated to
// it, and characters it cannot show (Chinese, emoji, …) are printed as "?".
package invoice

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// MaxCents is the largest amount an invoice shows, 999,999,999.99 (the store's largest price
// and order total).
const MaxCents int64 = 99_999_999_999

// ErrInvalid is wrapped by the errors of Validate and Render for an invoice that cannot be
// issued. It names the field at fault, never its (possibly personal) value. An invalid invoice is
// built by the server from an order, so it is a server fault, not a client's.
var ErrInvalid = errors.New("invalid invoice")

// Invoice is what one invoice shows. Amounts are in cents of Currency.
type Invoice struct {
	Number   string    // the invoice number, e.g. "TV-000042"
	OrderID  int64     // the order the invoice is for
	Date     time.Time // the invoice date; shown as yyyy-mm-dd in UTC
	Customer string    // the customer's name; may be empty
	Address  Address   // the billing and shipping address
	Lines    []Line    // at least one

	SubtotalCents int64  // the sum of the lines' totals
	DiscountCents int64  // subtracted from the subtotal
	TotalCents    int64  // SubtotalCents - DiscountCents
	Currency      string // an ISO 4217 code such as "USD"
	PromoCode     string // the promo code that gave the discount; optional
	Status        string // the order's status, e.g. "paid"; optional
}

// Address is the billing and shipping address an invoice shows.
type Address struct {
	City     string
	PostCode string
	Country  string
}

// Line is one product line of an invoice.
type Line struct {
	Name           string // the product's name, any UTF-8
	Quantity       int64  // at least 1
	UnitPriceCents int64
	TotalCents     int64 // Quantity × UnitPriceCents
}

// Validate reports, wrapping ErrInvalid, an invoice that cannot be issued: no number, order id,
// date or currency, no lines, a quantity below one, an amount below zero or above MaxCents, or
// amounts that do not add up (a line's total is not quantity × unit price, the subtotal is not
// the sum of the lines, or the total is not the subtotal less the discount).
func (inv Invoice) Validate() error {
	switch {
	case inv.Number == "":
		return invalid("number is empty")
	case inv.OrderID < 1:
		return invalid("order id is not positive")
	case inv.Date.IsZero():
		return invalid("date is not set")
	case !currencyCode(inv.Currency):
		return invalid("currency is not a three-letter code")
	case len(inv.Lines) == 0:
		return invalid("there are no lines")
	}
	var sum int64
	for i, l := range inv.Lines {
		n := i + 1
		switch {
		case l.Name == "":
			return invalid("line %d: name is empty", n)
		case l.Quantity < 1:
			return invalid("line %d: quantity %d is below one", n, l.Quantity)
		case !inRange(l.UnitPriceCents):
			return invalid("line %d: unit price is out of range", n)
		case !inRange(l.TotalCents):
			return invalid("line %d: total is out of range", n)
		}
		// l.Quantity*l.UnitPriceCents could overflow; compare by division instead.
		if l.TotalCents != 0 || l.UnitPriceCents != 0 {
			p := l.UnitPriceCents
			if p == 0 || l.TotalCents%p != 0 || l.TotalCents/p != l.Quantity {
				return invalid("line %d: total is not quantity × unit price", n)
			}
		}
		sum += l.TotalCents // at most len(Lines) × MaxCents: no overflow
	}
	switch {
	case !inRange(inv.SubtotalCents):
		return invalid("subtotal is out of range")
	case !inRange(inv.DiscountCents):
		return invalid("discount is out of range")
	case !inRange(inv.TotalCents):
		return invalid("total is out of range")
	case inv.SubtotalCents != sum:
		return invalid("subtotal is not the sum of the lines")
	case inv.TotalCents != inv.SubtotalCents-inv.DiscountCents:
		return invalid("total is not the subtotal less the discount")
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func inRange(cents int64) bool { return cents >= 0 && cents <= MaxCents }

func currencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// Render validates inv and writes it to w as an A4 PDF: a header with the store's name, the
// invoice and order numbers, the date, the status and the address; a table of the lines (name,
// quantity, unit price, line total) that runs over as many pages as it needs, repeating its
// header row; then the subtotal, the discount (with the promo code) and the total. Long product
// names wrap onto up to three lines and are cut with "…" beyond that.
//
// Nothing is written to w when inv is invalid (the error wraps ErrInvalid) or the PDF cannot
// be built; the document is built in memory and written in one go. Render is safe for
// concurrent use.
func Render(w io.Writer, inv Invoice) error {
	if err := inv.Validate(); err != nil {
		return err
	}
	r := newRenderer(inv)
	r.build()
	if err := r.pdf.Error(); err != nil {
		return fmt.Errorf("building invoice %s: %w", inv.Number, err)
	}
	if err := r.pdf.Output(w); err != nil {
		return fmt.Errorf("writing invoice %s: %w", inv.Number, err)
	}
	return nil
}

func qty(n int64) string { return strconv.FormatInt(n, 10) }
