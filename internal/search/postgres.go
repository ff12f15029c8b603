package search

import (
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// A tsvector's limits (tsearch's MAXENTRYPOS - 1 and MAXNUMPOS): to_tsvector gives every word
// past the last position that one, and keeps at most maxPositions-1 positions of a word; joining
// two vectors keeps at most maxPositions.
const (
	maxPosition  = 1<<14 - 1
	maxPositions = 256
)

// Vector is products.search for a product's name and description: the words of Words, the
// name's at weight A and the description's at weight D (ts_rank's defaults weigh a match in the
// name ten times one in the description), the description's positions after the name's. It is
// exactly what setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple',
// description), 'D') gives for the same words, limits included. The words are computed here
// rather than by Postgres because Postgres' normalisation (unaccent, ICU lower case, a regular
// expression and to_tsvector's parser) made up most of the cost of writing a product; and the
// vector goes to Postgres in its binary form, sorted and merged, because parsing its text form
// was most of what remained.
func Vector(name, description string) pgtype.TSVector {
	names, descriptions := Words(name), Words(description)
	// Every word at its position in its text, grouped by word (Postgres keeps a tsvector's words
	// in byte order), the name's first, each text's in order.
	type at struct {
		word        string
		position    uint16
		description bool
	}
	all := make([]at, 0, len(names)+len(descriptions))
	for i, w := range names {
		all = append(all, at{w, uint16(min(i+1, maxPosition)), false})
	}
	for i, w := range descriptions {
		all = append(all, at{w, uint16(min(i+1, maxPosition)), true})
	}
	slices.SortStableFunc(all, func(a, b at) int { return strings.Compare(a.word, b.word) })

	// to_tsvector keeps at most maxPositions-1 positions of a word, each once.
	keep := func(ps []pgtype.TSVectorPosition, p uint16) bool {
		return len(ps) < maxPositions-1 && (len(ps) == 0 || ps[len(ps)-1].Position != p)
	}
	// The name's vector first, and its last position.
	lexemes := make([]pgtype.TSVectorLexeme, 0, len(all))
	positions := make([]pgtype.TSVectorPosition, 0, len(all)) // every word's, one after the other
	var last uint16
	for i := 0; i < len(all); {
		start := len(positions)
		j := i
		for ; j < len(all) && all[j].word == all[i].word; j++ {
			if !all[j].description && keep(positions[start:], all[j].position) {
				positions = append(positions, pgtype.TSVectorPosition{Position: all[j].position, Weight: pgtype.TSVectorWeightA})
				last = max(last, all[j].position)
			}
		}
		lexemes = append(lexemes, pgtype.TSVectorLexeme{Word: all[i].word, Positions: positions[start:len(positions):len(positions)]})
		i = j
	}
	// Then the description's: to_tsvector of its own, then joined (||) after the name's last
	// position, a word keeping at most maxPositions positions in all. Every word's positions are
	// copied once more, after the name's, so that each word's stay together.
	joined := make([]pgtype.TSVectorPosition, 0, len(all))
	k := 0
	for i := 0; i < len(all); k++ {
		start := len(joined)
		joined = append(joined, lexemes[k].Positions...)
		own := len(joined) // the description's own vector of this word starts here
		j := i
		for ; j < len(all) && all[j].word == all[i].word; j++ {
			if all[j].description && keep(joined[own:], all[j].position) {
				joined = append(joined, pgtype.TSVectorPosition{Position: all[j].position, Weight: pgtype.TSVectorWeightD})
			}
		}
		for n := own; n < len(joined); n++ {
			joined[n].Position = min(joined[n].Position+last, maxPosition)
		}
		// || stops at maxPositions positions of a word, or at the last position.
		end := own
		for end < len(joined) && end-start < maxPositions && (end == start || joined[end-1].Position != maxPosition) {
			end++
		}
		joined = joined[:end]
		lexemes[k].Positions = joined[start:end:end]
		i = j
	}
	return pgtype.TSVector{Lexemes: lexemes, Valid: true}
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
