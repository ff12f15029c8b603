package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// TextRule describes a free-text field a client writes: a name, a description, a review.
// Every aggregate checks its text through CleanText, so one rule holds everywhere.
type TextRule struct {
	Field    string
	Required bool // at least one visible character
	MaxLen   int  // in characters (code points), after trimming
	// Multiline allows line feeds and tabs (descriptions, reviews); names are one line.
	Multiline bool
}

// CleanText trims s and checks it against rule. It returns the text to store.
//
//   - Leading and trailing white space and invisible format characters (U+200B zero width space,
//     U+FEFF, U+2060 word joiner, other Unicode Cf characters) are trimmed.
//   - A required field needs at least one visible character: text made only of spaces and
//     invisible characters (format characters, variation selectors, fillers) counts as empty.
//   - Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) are
//     refused anywhere: they make text display in another order than it reads ("Trojan Source").
//   - In multi-line fields, line ends are line feeds: CR LF (Windows, and what a browser form
//     sends) and a lone CR become LF.
//   - Control characters (C0, DEL, C1) are refused, except line feed and tab in multi-line
//     fields; line and paragraph separators (U+2028, U+2029) are refused in one-line fields.
//
// Every failure is an ErrInvalid about rule.Field.
func CleanText(s string, rule TextRule) (string, error) {
	field := rule.Field
	if !utf8.ValidString(s) {
		return "", Invalid(field, "%s is not valid UTF-8", field)
	}
	// Bidirectional controls are format characters too: refuse them before trimming, wherever
	// they are.
	if i := strings.IndexFunc(s, isBidiControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return "", Invalid(field, "%s contains a bidirectional control character (U+%04X)", field, r)
	}
	if rule.Multiline && strings.ContainsRune(s, '\r') {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	}
	s = strings.TrimFunc(s, trimmable)
	visible := false
	n := 0
	for _, r := range s {
		n++
		switch {
		case unicode.IsControl(r) && (!rule.Multiline || (r != '\n' && r != '\t')):
			return "", Invalid(field, "%s contains a control character (U+%04X)", field, r)
		case !rule.Multiline && (r == '\u2028' || r == '\u2029'):
			return "", Invalid(field, "%s must be one line; it contains U+%04X", field, r)
		}
		if !visible && !unicode.IsSpace(r) && !invisible(r) {
			visible = true
		}
	}
	if rule.Required && !visible {
		return "", Invalid(field, "%s must not be empty (spaces and invisible characters do not count)", field)
	}
	if n > rule.MaxLen {
		return "", Invalid(field, "%s is %d characters long; the limit is %d", field, n, rule.MaxLen)
	}
	return s, nil
}

// trimmable is what CleanText removes from both ends: white space and format characters, except
// tag characters (U+E0020–U+E007F), which end emoji tag sequences such as subdivision flags.
func trimmable(r rune) bool {
	return unicode.IsSpace(r) || (unicode.Is(unicode.Cf, r) && (r < 0xE0020 || r > 0xE007F))
}

// invisible reports code points that display nothing on their own: format characters, variation
// selectors and the other default-ignorable code points (fillers, the combining grapheme joiner).
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// isBidiControl reports the explicit bidirectional embeddings, overrides and isolates.
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}
