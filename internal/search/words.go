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
// Latin Extended-A and -B, IPA, the spacing modifier letters, Greek, Cyrillic and Latin Extended
// Additional): a letter's compatibility decomposition without its combining diacritical marks
// (U+0300–U+036F), and the letters that have none (æ, ø, ß, ł, đ, þ, œ, ɓ, …) spelled as
// unaccent spells them. Cyrillic letters keep theirs (й is not и), but for ё. The modifier
// letters that unaccent turns into quotes (quoteLetters: ʼ ʻ ˈ ː) separate words. Beyond the
// tested blocks, a letter with a decomposition loses its accents and any other stays itself
// (unaccent spells out a few more, Latin Extended-C and -D's among them).
//
// It folds a little more than unaccent, on purpose: every compatibility form (ª is a, µ is μ, ϑ
// is θ, ™ is tm; unaccent keeps some), the accented forms of æ and ø (ǽ is ae, ǿ is o), and case
// rune by rune before anything else, so that a capital gives the words of its small letter (ẞ is
// ss as ß is; unaccent spells out some capitals and not their small letters, or the other way
// round) and a final sigma matches a medial one. Text is read in NFC first, so a
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
		if r < utf8.RuneSelf {
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		if r = fold(r); unaccented[r] != "" || strings.ContainsRune(quoteLetters, r) {
			writeUnaccented(&b, r)
			continue
		}
		d := norm.NFKD.AppendString(buf[:0], string(r))
		if base, _ := utf8.DecodeRune(d); unicode.Is(unicode.Cyrillic, base) {
			b.WriteRune(r) // й, ї, ў are letters of their own
			continue
		}
		for _, m := range string(d) {
			if m < 0x300 || m > 0x36f {
				writeUnaccented(&b, fold(m)) // ǽ is æ with an acute: ae
			}
		}
	}
	return dropLong(strings.FieldsFunc(norm.NFC.String(b.String()), notWordRune))
}

// writeUnaccented writes the folded rune r as the search spells it: a quote letter separates
// words, a letter of unaccented is spelled out, any other is itself.
func writeUnaccented(b *strings.Builder, r rune) {
	switch {
	case strings.ContainsRune(quoteLetters, r):
		b.WriteByte(' ')
	case unaccented[r] != "":
		b.WriteString(unaccented[r])
	default:
		b.WriteRune(r)
	}
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

// unaccented spells the letters whose compatibility decomposition keeps their accent, stroke or
// hook (it is part of the letter) as unaccent's default rules do, lower-cased; Words looks a
// letter up once folded, so the capitals (Æ, ẞ, Ɓ) are spelled as their small letters.
var unaccented = map[rune]string{
	// Latin-1 and Latin Extended-A
	'æ': "ae", 'ð': "d", 'ø': "o", 'þ': "th", 'ß': "ss", 'đ': "d", 'ħ': "h", 'ı': "i", 'ĸ': "q",
	'ŀ': "l", 'ł': "l", 'ŉ': "'n", 'ŋ': "n", 'œ': "oe", 'ŧ': "t",
	// Latin Extended-B
	'ƀ': "b", 'ƃ': "b", 'ƈ': "c", 'ƌ': "d", 'ƒ': "f", 'ƕ': "hv", 'ƙ': "k", 'ƚ': "l", 'ƞ': "n",
	'ƣ': "oi", 'ƥ': "p", 'ƫ': "t", 'ƭ': "t", 'ƴ': "y", 'ƶ': "z", 'ǥ': "g", 'ȡ': "d", 'ȥ': "z",
	'ȴ': "l", 'ȵ': "n", 'ȶ': "t", 'ȷ': "j", 'ȸ': "db", 'ȹ': "qp", 'ȼ': "c", 'ȿ': "s", 'ɀ': "z",
	'ɇ': "e", 'ɉ': "j", 'ɍ': "r", 'ɏ': "y", 'ⱥ': "a", 'ⱦ': "t",
	// IPA letters with a hook, a stroke or a tail, and small capitals
	'ɓ': "b", 'ɕ': "c", 'ɖ': "d", 'ɗ': "d", 'ɛ': "e", 'ɟ': "j", 'ɠ': "g", 'ɡ': "g", 'ɢ': "g",
	'ɦ': "h", 'ɧ': "h", 'ɨ': "i", 'ɪ': "i", 'ɫ': "l", 'ɬ': "l", 'ɭ': "l", 'ɱ': "m",
	'ɲ': "n", 'ɳ': "n", 'ɴ': "n", 'ɶ': "oe", 'ɼ': "r", 'ɽ': "r", 'ɾ': "r", 'ʀ': "r", 'ʂ': "s",
	'ʈ': "t", 'ʉ': "u", 'ʋ': "v", 'ʏ': "y", 'ʐ': "z", 'ʑ': "z", 'ʙ': "b", 'ʛ': "g", 'ʜ': "h",
	'ʝ': "j", 'ʟ': "l", 'ʠ': "q", 'ʣ': "dz", 'ʥ': "dz", 'ʦ': "ts", 'ʪ': "ls", 'ʫ': "lz",
	// Latin Extended Additional
	'ẜ': "s", 'ẝ': "s", 'ỻ': "ll", 'ỽ': "v", 'ỿ': "y",
	// Cyrillic
	'ё': "е",
}
