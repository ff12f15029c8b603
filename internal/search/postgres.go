package search

import (
	"strconv"
	"strings"
)

// maxPosition is the last position a tsvector holds (tsearch's MAXENTRYPOS - 1): to_tsvector
// gives every later word that one.
const maxPosition = 1<<14 - 1

// Vector is products.search for a product's name and description, as the text of a
// tsvector: the words of Words, the name's at weight A and the description's at
// weight D (ts_rank's defaults weigh a match in the name ten times one in the description), each
// at its position, the description's after the name's: what
// setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple', description), 'D')
// gives for the same words (but that Postgres reads a word repeated more than 255 times with one
// position more than to_tsvector keeps). The words are computed here rather than by Postgres because
// Postgres' normalisation (unaccent, ICU lower case, a regular expression and to_tsvector's
// parser) made up most of the cost of writing a product; reading the text form back is cheap.
func Vector(name, description string) string {
	var b strings.Builder
	pos := 0
	add := func(text, weight string) {
		for _, w := range Words(text) {
			pos = min(pos+1, maxPosition)
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			writeLexeme(&b, w)
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(pos))
			b.WriteString(weight)
		}
	}
	add(name, "A")
	add(description, "")
	return b.String()
}

// Query is the text of the tsquery that q searches for: every word of q (Words, as Vector holds
// them) must be a word of the product, the last one as a prefix (search as you type: "gefor"
// finds GeForce). Each word is a quoted lexeme, so nothing typed is read as tsquery syntax. Text
// without a word gives an empty query, which matches nothing.
func Query(q string) string {
	var b strings.Builder
	for _, w := range Words(q) {
		if b.Len() > 0 {
			b.WriteString(" & ")
		}
		writeLexeme(&b, w)
	}
	if b.Len() > 0 {
		b.WriteString(":*")
	}
	return b.String()
}

// writeLexeme writes w quoted as a tsvector or tsquery lexeme.
func writeLexeme(b *strings.Builder, w string) {
	b.WriteByte('\'')
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(w, `\`, `\\`), `'`, `''`))
	b.WriteByte('\'')
}
