package invoice

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/go-pdf/fpdf"
)

// The layout, in millimetres on an A4 page (210 × 297).
const (
	storeName = "Tech Vault"

	marginX      = 15.0
	marginTop    = 15.0
	marginBottom = 20.0 // the footer lives here
	contentW     = 210 - 2*marginX

	textH        = 5.0 // the height of one line of table text
	rowPad       = 1.0 // space above and below a table row's text
	maxNameLines = 3   // a longer product name is cut with "…"

	font     = "Helvetica"
	fontSize = 9.0
)

// The table's columns: name, quantity, unit price, line total. The money columns are wide
// enough for MaxCents with its currency code.
var colW = [4]float64{contentW - 14 - 2*37, 14, 37, 37}

// ellipsis is "…" in code page 1252.
const ellipsis = "\x85"

// renderer lays out one invoice on one fpdf document. Every string it draws has gone through
// enc: fpdf's core fonts take code page 1252 bytes, not UTF-8.
type renderer struct {
	pdf *fpdf.Fpdf
	enc func(string) string
	inv Invoice
}

func newRenderer(inv Invoice) *renderer {
	pdf := fpdf.New("P", "mm", "A4", "")
	r := &renderer{pdf: pdf, inv: inv, enc: cp1252(pdf)}
	pdf.SetMargins(marginX, marginTop, marginX)
	pdf.SetAutoPageBreak(true, marginBottom) // a safety net: rows check the space they need first
	pdf.SetTitle("Invoice "+inv.Number, true)
	pdf.SetAuthor(storeName, true)
	pdf.SetCreator(storeName, true)
	pdf.AliasNbPages("")
	pdf.SetFooterFunc(r.footer)
	return r
}

// cp1252 returns a function that translates UTF-8 text to code page 1252 bytes with fpdf's
// translator, writing "?" for a character the code page lacks (fpdf's translator writes "."
// for those, which would read as punctuation) and a space for a control character.
func cp1252(pdf *fpdf.Fpdf) func(string) string {
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	return func(s string) string {
		var b strings.Builder
		b.Grow(len(s))
		for _, c := range s {
			switch {
			case c < 0x20 || c == 0x7f:
				b.WriteByte(' ')
			case c < 0x80:
				b.WriteByte(byte(c))
			case c == utf8.RuneError:
				b.WriteByte('?')
			default:
				// Non-ASCII runes the code page has become one byte of 0x80 or above; the
				// translator gives "." for the rest.
				if t := tr(string(c)); len(t) == 1 && t[0] >= 0x80 {
					b.WriteString(t)
				} else {
					b.WriteByte('?')
				}
			}
		}
		return b.String()
	}
}

func (r *renderer) build() {
	r.pdf.AddPage()
	r.header()
	r.tableHeader()
	for _, l := range r.inv.Lines {
		r.line(l)
	}
	r.totals()
}

// header draws the store's name, the invoice's facts on the right and the address on the left.
func (r *renderer) header() {
	pdf := r.pdf
	pdf.SetFont(font, "B", 22)
	pdf.CellFormat(contentW/2, 10, storeName, "", 0, "L", false, 0, "")
	pdf.SetFont(font, "B", 16)
	pdf.CellFormat(contentW/2, 10, "INVOICE", "", 1, "R", false, 0, "")
	pdf.Ln(6)

	top := pdf.GetY()
	const labelW, valueW = 28.0, 52.0
	facts := [][2]string{
		{"Invoice no.", r.inv.Number},
		{"Order", "#" + qty(r.inv.OrderID)},
		{"Date", r.inv.Date.UTC().Format("2006-01-02")},
	}
	if r.inv.Status != "" {
		facts = append(facts, [2]string{"Status", r.inv.Status})
	}
	for _, f := range facts {
		pdf.SetX(marginX + contentW - labelW - valueW)
		pdf.SetFont(font, "B", 10)
		pdf.CellFormat(labelW, 6, f[0], "", 0, "L", false, 0, "")
		pdf.SetFont(font, "", 10)
		pdf.CellFormat(valueW, 6, r.fit(r.enc(f[1]), valueW), "", 1, "R", false, 0, "")
	}
	bottom := pdf.GetY()

	pdf.SetXY(marginX, top)
	const addrW = 90.0
	pdf.SetFont(font, "B", 10)
	pdf.CellFormat(addrW, 6, "Bill to / Ship to", "", 1, "L", false, 0, "")
	pdf.SetFont(font, "", 10)
	a := r.inv.Address
	for _, s := range []string{r.inv.Customer, join(a.PostCode, a.City), a.Country} {
		if s != "" {
			pdf.CellFormat(addrW, 6, r.fit(r.enc(s), addrW), "", 1, "L", false, 0, "")
		}
	}
	pdf.SetY(max(bottom, pdf.GetY()) + 8)
}

// join joins the non-empty parts with a space.
func join(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, " ")
}

// tableHeader draws the table's header row; it is repeated at the top of every page the table
// runs onto.
func (r *renderer) tableHeader() {
	pdf := r.pdf
	pdf.SetFont(font, "B", fontSize)
	pdf.SetFillColor(235, 235, 235)
	for i, title := range [4]string{"Item", "Qty", "Unit price", "Line total"} {
		align := "R"
		if i == 0 {
			align = "L"
		}
		pdf.CellFormat(colW[i], textH+2*rowPad, title, "", 0, align, true, 0, "")
	}
	pdf.Ln(-1)
	pdf.SetFont(font, "", fontSize)
}

// line draws one product line, starting a page (with the header row) when it does not fit.
func (r *renderer) line(l Line) {
	pdf := r.pdf
	pdf.SetFont(font, "", fontSize)
	names := r.wrap(r.enc(l.Name), colW[0], maxNameLines)
	h := float64(len(names))*textH + 2*rowPad
	if !r.fits(h) {
		pdf.AddPage()
		r.tableHeader()
	}
	x, y := marginX, pdf.GetY()
	for i, s := range names {
		pdf.SetXY(x, y+rowPad+float64(i)*textH)
		pdf.CellFormat(colW[0], textH, s, "", 0, "L", false, 0, "")
	}
	pdf.SetXY(x+colW[0], y+rowPad)
	pdf.CellFormat(colW[1], textH, qty(l.Quantity), "", 0, "R", false, 0, "")
	pdf.CellFormat(colW[2], textH, r.enc(r.money(l.UnitPriceCents)), "", 0, "R", false, 0, "")
	pdf.CellFormat(colW[3], textH, r.enc(r.money(l.TotalCents)), "", 0, "R", false, 0, "")
	pdf.SetDrawColor(210, 210, 210)
	pdf.Line(x, y+h, x+contentW, y+h)
	pdf.SetXY(x, y+h)
}

// totals draws the subtotal, the discount and the total under the table, on a new page when
// they do not fit.
func (r *renderer) totals() {
	pdf := r.pdf
	type row struct {
		label, value string
		bold         bool
	}
	rows := []row{{"Subtotal", r.money(r.inv.SubtotalCents), false}}
	if r.inv.DiscountCents != 0 || r.inv.PromoCode != "" {
		label := "Discount"
		if r.inv.PromoCode != "" {
			label += " (" + r.inv.PromoCode + ")"
		}
		rows = append(rows, row{label, "-" + r.money(r.inv.DiscountCents), false})
	}
	rows = append(rows, row{"Total", r.money(r.inv.TotalCents), true})

	const rowH = 7.0
	if !r.fits(2 + float64(len(rows))*rowH) {
		pdf.AddPage()
	}
	pdf.Ln(2)
	labelW := contentW - colW[3]
	for _, t := range rows {
		style := ""
		if t.bold {
			style = "B"
		}
		pdf.SetFont(font, style, 10)
		pdf.CellFormat(labelW, rowH, r.fit(r.enc(t.label), labelW), "", 0, "R", false, 0, "")
		pdf.CellFormat(colW[3], rowH, r.enc(t.value), "", 1, "R", false, 0, "")
	}
}

// footer draws the store's name, the invoice number and the page number on every page.
func (r *renderer) footer() {
	pdf := r.pdf
	pdf.SetY(-12)
	pdf.SetFont(font, "", 8)
	pdf.SetTextColor(110, 110, 110)
	left := r.fit(r.enc(storeName+" \u00b7 Invoice "+r.inv.Number), contentW/2)
	pdf.CellFormat(contentW/2, 5, left, "", 0, "L", false, 0, "")
	pdf.CellFormat(contentW/2, 5, "Page "+qty(int64(pdf.PageNo()))+"/{nb}", "", 0, "R", false, 0, "")
	pdf.SetTextColor(0, 0, 0)
}

// fits reports whether h millimetres fit above the bottom margin of the current page.
func (r *renderer) fits(h float64) bool {
	_, pageH := r.pdf.GetPageSize()
	return r.pdf.GetY()+h <= pageH-marginBottom
}

// wrap splits encoded text into the lines that fit a cell of width w in the current font, at
// most maxLines of them; the last is cut with "…" when text is longer.
func (r *renderer) wrap(s string, w float64, maxLines int) []string {
	raw := r.pdf.SplitLines([]byte(s), w)
	lines := make([]string, 0, min(len(raw), maxLines))
	for _, l := range raw[:min(len(raw), maxLines)] {
		lines = append(lines, strings.TrimSpace(string(l)))
	}
	if len(lines) == 0 {
		return []string{""}
	}
	if len(raw) > maxLines {
		last := len(lines) - 1
		lines[last] = r.cut(lines[last], w)
	}
	return lines
}

// fit returns encoded text that fits a cell of width w in the current font, cut with "…" when it
// is too long.
func (r *renderer) fit(s string, w float64) string {
	if r.pdf.GetStringWidth(s) <= w-2*r.pdf.GetCellMargin() {
		return s
	}
	return r.cut(s, w)
}

// cut keeps the longest start of encoded text (one byte a character) that fits a cell of width
// w with "…" after it, and appends "…".
func (r *renderer) cut(s string, w float64) string {
	avail := w - 2*r.pdf.GetCellMargin() - r.pdf.GetStringWidth(ellipsis)
	used, n := 0.0, 0
	for ; n < len(s); n++ {
		cw := r.pdf.GetStringWidth(s[n : n+1])
		if used+cw > avail {
			break
		}
		used += cw
	}
	return strings.TrimRight(s[:n], " ") + ellipsis
}

// money formats an amount Validate has checked (never negative) in the invoice's currency.
func (r *renderer) money(cents int64) string {
	s, err := FormatCents(cents, r.inv.Currency)
	if err != nil {
		r.pdf.SetError(fmt.Errorf("formatting %d cents: %w", cents, err))
	}
	return s
}
