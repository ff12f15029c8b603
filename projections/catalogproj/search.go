package catalogproj

import (
	"strconv"
	"strings"

	"github.com/techvault/techvault/internal/search"
)

// maxPosition is the last position a tsvector holds (tsearch's MAXENTRYPOS - 1): to_tsvector
// gives every later word that one.
const maxPosition = 1<<14 - 1

// SearchVector is products.search for a product's name and description, as the text of a
// tsvector: the words of search.Words, the name's at weight A and the description's at
// weight D (ts_rank's defaults weigh a match in the name ten times one in the description), each
// at its position, the description's after the name's: what
// setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple', description), 'D')
// gives for the same words (but that Postgres reads a word repeated more than 255 times with one
// position more than to_tsvector keeps). The words are computed here rather than by Postgres because
// Postgres' normalisation (unaccent, ICU lower case, a regular expression and to_tsvector's
// parser) made up most of the cost of writing a product; reading the text form back is cheap.
func SearchVector(name, description string) string {
	var b strings.Builder
	pos := 0
	add := func(text, weight string) {
		for _, w := range search.Words(text) {
			pos = min(pos+1, maxPosition)
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteByte('\'')
			b.WriteString(strings.ReplaceAll(strings.ReplaceAll(w, `\`, `\\`), `'`, `''`))
			b.WriteString("':")
			b.WriteString(strconv.Itoa(pos))
			b.WriteString(weight)
		}
	}
	add(name, "A")
	add(description, "")
	return b.String()
}
