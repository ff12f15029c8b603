package invoice_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledongthuc/pdf"

	"github.com/techvault/techvault/invoice"
)

// sample is a valid invoice of three lines with a promo discount, dated in a time zone where
// it is already the next day: the invoice shows the UTC date.
func sample() invoice.Invoice {
	tokyo := time.FixedZone("JST", 9*3600)
	return invoice.Invoice{
		Number:   "TV-000042",
		OrderID:  42,
		Date:     time.Date(2026, 3, 2, 5, 30, 0, 0, tokyo), // 2026-03-01 20:30 UTC
		Customer: "Jürgen Example",
		Address:  invoice.Address{City: "München", PostCode: "80331", Country: "Germany"},
		Lines: []invoice.Line{
			{Name: "Ryzen™ 9 7950X", Quantity: 1, UnitPriceCents: 59900, TotalCents: 59900},
			{Name: "Überlast-Schutz Steckdose", Quantity: 2, UnitPriceCents: 2500, TotalCents: 5000},
			{Name: "RTX 4090 Founders Edition", Quantity: 1, UnitPriceCents: 125000, TotalCents: 125000},
		},
		SubtotalCents: 189900,
		DiscountCents: 5000,
		TotalCents:    184900,
		Currency:      "USD",
		PromoCode:     "SPRING10",
		Status:        "paid",
	}
}

// render renders inv and reads its text back out, one entry a page.
func render(t *testing.T, inv invoice.Invoice) (raw []byte, pages []string) {
	t.Helper()
	var buf bytes.Buffer
	if err := invoice.Render(&buf, inv); err != nil {
		t.Fatalf("Render: %v", err)
	}
	return buf.Bytes(), readText(t, buf.Bytes())
}

// readText extracts each page's text with a PDF reader: the document as Render wrote it, its
// content streams compressed.
func readText(t *testing.T, b []byte) []string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatalf("output is not a PDF: %.20q", b)
	}
	r, err := pdf.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("reading the PDF: %v", err)
	}
	pages := make([]string, 0, r.NumPage())
	for i := 1; i <= r.NumPage(); i++ {
		text, err := r.Page(i).GetPlainText(nil)
		if err != nil {
			t.Fatalf("reading the text of page %d: %v", i, err)
		}
		pages = append(pages, text)
	}
	return pages
}

// lines splits a page's text into its text objects: every cell of the invoice is one.
func lines(page string) []string {
	var out []string
	for l := range strings.SplitSeq(page, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestRenderReadsBack(t *testing.T) {
	raw, pages := render(t, sample())
	if len(pages) != 1 {
		t.Fatalf("%d pages; want 1", len(pages))
	}
	// The text was read out of compressed streams, not found in the file as it is.
	if !bytes.Contains(raw, []byte("/FlateDecode")) || bytes.Contains(raw, []byte("Founders")) {
		t.Fatalf("the page content is not compressed")
	}
	got := lines(pages[0])
	for _, want := range []string{
		"Tech Vault",
		"TV-000042",
		"#42",
		"2026-03-01", // the UTC date, not Tokyo's 2026-03-02
		"paid",
		"Jürgen Example",
		"80331 München",
		"Germany",
		"Ryzen™ 9 7950X",
		"Überlast-Schutz Steckdose",
		"RTX 4090 Founders Edition",
		"599.00 USD",
		"25.00 USD",
		"50.00 USD", // the line total of two at 25.00
		"1,250.00 USD",
		"1,899.00 USD", // subtotal
		"Discount (SPRING10)",
		"-50.00 USD",
		"Total",
		"1,849.00 USD",
		"Page 1/1",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("%q is not in the PDF's text:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if slices.Contains(got, "2026-03-02") {
		t.Errorf("the date is the local one, not UTC")
	}
}

func TestRenderText(t *testing.T) {
	long := strings.Repeat("Ultra-wide curved gaming monitor with adaptive sync ", 8) + "END-OF-NAME"
	tests := []struct {
		name   string
		line   string
		want   []string // text objects that must be on the page
		absent string   // text that must not be anywhere on the page
	}{
		{"cp1252 characters are kept", "Café «Crème» – 50 € Gutschein", []string{"Café «Crème» – 50 € Gutschein"}, ""},
		{"characters cp1252 lacks become ?", "机械键盘 K2 🎮", []string{"???? K2 ?"}, ""},
		{"control characters become spaces", "Cable\tUSB-C\n2m", []string{"Cable USB-C 2m"}, ""},
		{"invalid UTF-8 becomes ?", "Fan \xff\xfe 120mm", []string{"Fan ?? 120mm"}, ""},
		{"a long name wraps and is cut with …", long, []string{"Ultra-wide curved gaming monitor with adaptive sync Ultra-wide"}, "END-OF-NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := sample()
			inv.Lines[0].Name = tt.line
			_, pages := render(t, inv)
			got := lines(strings.Join(pages, "\n"))
			for _, want := range tt.want {
				if !slices.Contains(got, want) {
					t.Errorf("%q is not in the PDF's text:\n%s", want, strings.Join(got, "\n"))
				}
			}
			if tt.absent != "" && strings.Contains(strings.Join(got, "\n"), tt.absent) {
				t.Errorf("%q is in the PDF's text; it should have been cut", tt.absent)
			}
		})
	}
}

// A long name takes at most three lines, the last of them ending in "…".
func TestRenderCutsLongNames(t *testing.T) {
	inv := sample()
	inv.Lines[0].Name = strings.Repeat("word ", 200) + "END"
	_, pages := render(t, inv)
	var nameLines []string
	for _, l := range lines(pages[0]) {
		if strings.HasPrefix(l, "word") {
			nameLines = append(nameLines, l)
		}
	}
	if len(nameLines) != 3 || !strings.HasSuffix(nameLines[2], "…") || strings.HasSuffix(nameLines[1], "…") {
		t.Fatalf("the name's lines are %q; want three, the last cut with …", nameLines)
	}
}

// 100 lines run over several pages: every page shows the table's header row and its page
// number, every line is printed once and in order, and the totals come last.
func TestRenderPaginates(t *testing.T) {
	inv := sample()
	inv.Lines = nil
	inv.SubtotalCents = 0
	for i := 1; i <= 100; i++ {
		inv.Lines = append(inv.Lines, invoice.Line{
			Name: fmt.Sprintf("Item %03d", i), Quantity: int64(i), UnitPriceCents: 1999, TotalCents: int64(i) * 1999,
		})
		inv.SubtotalCents += int64(i) * 1999
	}
	inv.TotalCents = inv.SubtotalCents - inv.DiscountCents
	total, err := invoice.FormatCents(inv.TotalCents, "USD")
	if err != nil {
		t.Fatal(err)
	}

	_, pages := render(t, inv)
	if len(pages) < 3 {
		t.Fatalf("%d pages for 100 lines; want at least 3", len(pages))
	}
	next := 1
	for i, page := range pages {
		got := lines(page)
		if want := fmt.Sprintf("Page %d/%d", i+1, len(pages)); !slices.Contains(got, want) {
			t.Errorf("page %d: no %q", i+1, want)
		}
		items := 0
		for _, l := range got {
			if strings.HasPrefix(l, "Item ") {
				if want := fmt.Sprintf("Item %03d", next); l != want {
					t.Fatalf("page %d: %q; want %q", i+1, l, want)
				}
				next++
				items++
			}
		}
		if items > 0 && !slices.Contains(got, "Line total") {
			t.Errorf("page %d has lines but no header row", i+1)
		}
		last := i == len(pages)-1
		if slices.Contains(got, total) != last {
			t.Errorf("page %d: total %s shown: %v; want it on the last page only", i+1, total, !last)
		}
	}
	if next != 101 {
		t.Errorf("%d lines printed; want 100", next-1)
	}
}

func TestRenderRefusesInvalid(t *testing.T) {
	tests := []struct {
		name   string
		change func(*invoice.Invoice)
	}{
		{"no lines", func(inv *invoice.Invoice) { inv.Lines = nil }},
		{"no number", func(inv *invoice.Invoice) { inv.Number = "" }},
		{"no order id", func(inv *invoice.Invoice) { inv.OrderID = 0 }},
		{"no date", func(inv *invoice.Invoice) { inv.Date = time.Time{} }},
		{"no currency", func(inv *invoice.Invoice) { inv.Currency = "" }},
		{"lower-case currency", func(inv *invoice.Invoice) { inv.Currency = "usd" }},
		{"line without a name", func(inv *invoice.Invoice) { inv.Lines[1].Name = "" }},
		{"zero quantity", func(inv *invoice.Invoice) { inv.Lines[1].Quantity = 0 }},
		{"negative unit price", func(inv *invoice.Invoice) { inv.Lines[1].UnitPriceCents = -2500 }},
		{"line total is not quantity × price", func(inv *invoice.Invoice) { inv.Lines[1].TotalCents = 4999 }},
		{"subtotal is not the sum", func(inv *invoice.Invoice) { inv.SubtotalCents++ }},
		{"negative discount", func(inv *invoice.Invoice) {
			inv.DiscountCents = -100
			inv.TotalCents = inv.SubtotalCents + 100
		}},
		{"discount above the subtotal", func(inv *invoice.Invoice) {
			inv.DiscountCents = inv.SubtotalCents + 1
			inv.TotalCents = -1
		}},
		{"total is not subtotal less discount", func(inv *invoice.Invoice) { inv.TotalCents++ }},
		{"amount above MaxCents", func(inv *invoice.Invoice) {
			inv.Lines = []invoice.Line{{Name: "x", Quantity: 1, UnitPriceCents: invoice.MaxCents + 1, TotalCents: invoice.MaxCents + 1}}
			inv.SubtotalCents, inv.DiscountCents, inv.TotalCents = invoice.MaxCents+1, 0, invoice.MaxCents+1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := sample()
			inv.Customer = "Jane Private"
			tt.change(&inv)
			var buf bytes.Buffer
			err := invoice.Render(&buf, inv)
			if !errors.Is(err, invoice.ErrInvalid) {
				t.Fatalf("Render: %v; want ErrInvalid", err)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written for an invalid invoice", buf.Len())
			}
			if strings.Contains(err.Error(), "Jane") {
				t.Errorf("the error names the customer: %v", err)
			}
		})
	}
}

// Requests render invoices in parallel: each has its own document (run under -race).
func TestRenderConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	out := make([]bytes.Buffer, 4)
	for g := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inv := sample()
			inv.Number = fmt.Sprintf("TV-%06d", g)
			if err := invoice.Render(&out[g], inv); err != nil {
				t.Errorf("Render %s: %v", inv.Number, err)
			}
		}()
	}
	wg.Wait()
	for g := range out {
		want := fmt.Sprintf("TV-%06d", g)
		if got := lines(strings.Join(readText(t, out[g].Bytes()), "\n")); !slices.Contains(got, want) {
			t.Errorf("invoice %s: number not in its text", want)
		}
	}
}

// A free line, no discount and no customer name are valid; the discount row is left out.
func TestRenderMinimal(t *testing.T) {
	inv := invoice.Invoice{
		Number:   "TV-000001",
		OrderID:  1,
		Date:     time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		Lines:    []invoice.Line{{Name: "Sticker", Quantity: 3, UnitPriceCents: 0, TotalCents: 0}},
		Currency: "EUR",
	}
	_, pages := render(t, inv)
	got := lines(pages[0])
	for _, want := range []string{"TV-000001", "#1", "2026-01-02", "Sticker", "0.00 EUR"} {
		if !slices.Contains(got, want) {
			t.Errorf("%q is not in the PDF's text:\n%s", want, strings.Join(got, "\n"))
		}
	}
	for _, l := range got {
		if strings.HasPrefix(l, "Discount") {
			t.Errorf("a discount row without a discount: %q", l)
		}
	}
}
