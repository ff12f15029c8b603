// Package search is how the storefront reads text to search it: the words of a product's name and
// description, and of what a customer types.
package search

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Words is text as the storefront's search reads it, the same for a product's name and
// description and for what a customer types: accents removed, case folded, split into words of
// letters and digits (every other character separates words; the marks of scripts other than
// Latin, Greek and Cyrillic belong to their words). "Crème BRÛLÉE, RTX-4090" is
// [creme brulee rtx 4090]; "Ærø" is [aero]; "Straße" is [strasse].
//
// Accents are removed as Postgres' unaccent does with its default rules (migration 0021's
// techvault_search_text, which this is tested against for every letter and digit of Latin-1,
// Latin Extended-A and -B, the spacing modifier letters, Greek and Cyrillic): a letter's
// compatibility decomposition without its combining diacritical marks (U+0300–U+036F), and the
// letters that have none (æ, ø, ß, ł, đ, þ, œ, …) spelled as unaccent spells them. Cyrillic
// letters keep theirs (й is not и), but for ё. The modifier letters that unaccent turns into
// quotes (quoteLetters: ʼ ʻ ˈ ː) separate words.
//
// It folds a little more than unaccent, on purpose: every compatibility form (ª is a, µ is μ, ϑ
// is θ, ™ is tm; unaccent keeps some), the accented forms of æ and ø (ǽ is ae, ǿ is o), and case
// rune by rune, so that a final sigma matches a medial one. Text is read in NFC first, so a
// decomposed "и" + breve is "й" as the precomposed letter is. A word of MaxWordBytes or more is
// left out.
func Words(s string) []string {
	if isASCII(s) {
		return dropLong(asciiWords(s))
	}
	s = norm.NFC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	var buf [32]byte
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(unicode.ToLower(r))
		case unaccented[r] != "":
			b.WriteString(unaccented[r])
		case strings.ContainsRune(quoteLetters, r):
			b.WriteByte(' ')
		default:
			d := norm.NFKD.AppendString(buf[:0], string(r))
			if base, _ := utf8.DecodeRune(d); unicode.Is(unicode.Cyrillic, base) {
				b.WriteRune(fold(r)) // й, ї, ў are letters of their own
				continue
			}
			for _, m := range string(d) {
				switch {
				case m >= 0x300 && m <= 0x36f:
				case unaccented[m] != "":
					b.WriteString(unaccented[m]) // ǽ is æ with an acute: ae
				default:
					b.WriteRune(fold(m))
				}
			}
		}
	}
	return dropLong(strings.FieldsFunc(norm.NFC.String(b.String()), notWordRune))
}

// MaxWordBytes bounds a word of Words: Postgres' full-text search holds no word of
// 2,047 bytes or more (to_tsvector skips it, a tsvector or tsquery refuses it).
const MaxWordBytes = 2047

func dropLong(words []string) []string {
	return slices.DeleteFunc(words, func(w string) bool { return len(w) >= MaxWordBytes })
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// asciiWords is Words of ASCII text.
func asciiWords(s string) []string {
	var words []string
	for i := 0; i < len(s); {
		for i < len(s) && !asciiAlnum(s[i]) {
			i++
		}
		start, upper := i, false
		for ; i < len(s) && asciiAlnum(s[i]); i++ {
			upper = upper || s[i] >= 'A' && s[i] <= 'Z'
		}
		if w := s[start:i]; w != "" {
			if upper {
				w = strings.ToLower(w)
			}
			words = append(words, w)
		}
	}
	return words
}

func asciiAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z'
}

// notWordRune separates words: a word is letters, digits and the marks that go with them (other
// scripts' vowel signs, say; the Latin, Greek and Cyrillic accents are gone by then).
func notWordRune(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
}

// fold is r's simple case folding (the lower case of its upper case: ς and σ are both σ).
func fold(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }

// quoteLetters are the modifier letters that are quotes, primes, a circumflex and a length mark:
// ʹ ʺ ʻ ʼ ʽ ˆ ˈ ˋ ː.
const quoteLetters = "\u02b9\u02ba\u02bb\u02bc\u02bd\u02c6\u02c8\u02cb\u02d0"

// unaccented spells the letters whose compatibility decomposition keeps their accent or stroke
// (it is part of the letter) as unaccent's default rules do, lower-cased.
var unaccented = map[rune]string{
	'Æ': "ae", 'æ': "ae", 'Ð': "d", 'ð': "d", 'Ø': "o", 'ø': "o", 'Þ': "th", 'þ': "th", 'ß': "ss",
	'Đ': "d", 'đ': "d", 'Ħ': "h", 'ħ': "h", 'ı': "i", 'ĸ': "q", 'Ŀ': "l", 'ŀ': "l", 'Ł': "l", 'ł': "l",
	'ŉ': "'n", 'Ŋ': "n", 'ŋ': "n", 'Œ': "oe", 'œ': "oe", 'Ŧ': "t", 'ŧ': "t",
	'ƀ': "b", 'Ɓ': "b", 'Ƃ': "b", 'ƃ': "b", 'Ƈ': "c", 'ƈ': "c", 'Ɖ': "d", 'Ɗ': "d", 'Ƌ': "d", 'ƌ': "d",
	'Ɛ': "e", 'Ƒ': "f", 'ƒ': "f", 'Ɠ': "g", 'ƕ': "hv", 'Ɩ': "i", 'Ɨ': "i", 'Ƙ': "k", 'ƙ': "k", 'ƚ': "l",
	'Ɲ': "n", 'ƞ': "n", 'Ƣ': "oi", 'ƣ': "oi", 'Ƥ': "p", 'ƥ': "p", 'ƫ': "t", 'Ƭ': "t", 'ƭ': "t", 'Ʈ': "t",
	'Ʋ': "v", 'Ƴ': "y", 'ƴ': "y", 'Ƶ': "z", 'ƶ': "z", 'Ǥ': "g", 'ǥ': "g", 'ȡ': "d", 'Ȥ': "z", 'ȥ': "z",
	'ȴ': "l", 'ȵ': "n", 'ȶ': "t", 'ȷ': "j", 'ȸ': "db", 'ȹ': "qp", 'Ⱥ': "a", 'Ȼ': "c", 'ȼ': "c", 'Ƚ': "l",
	'Ⱦ': "t", 'ȿ': "s", 'ɀ': "z", 'Ƀ': "b", 'Ʉ': "u", 'Ɇ': "e", 'ɇ': "e", 'Ɉ': "j", 'ɉ': "j", 'Ɍ': "r",
	'ɍ': "r", 'Ɏ': "y", 'ɏ': "y", 'Ё': "е", 'ё': "е",
}
