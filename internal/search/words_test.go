package search_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/techvault/techvault/internal/search"
)

func TestWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  --  ", nil},
		{"NVIDIA GeForce RTX-4090", []string{"nvidia", "geforce", "rtx", "4090"}},
		{"x86_64 v1.2.3", []string{"x86", "64", "v1", "2", "3"}},
		{"Crème BRÛLÉE, RTX-4090", []string{"creme", "brulee", "rtx", "4090"}},
		{"Ærø Straße Œuvre", []string{"aero", "strasse", "oeuvre"}},
		{"Łódź, Đorđe, Þór", []string{"lodz", "dorde", "thor"}},
		{"naïve café", []string{"naive", "cafe"}},
		{"ＡＢＣ１２３ ﬁle", []string{"abc123", "file"}}, // compatibility forms
		{"ΟΔΟΣ οδος", []string{"οδοσ", "οδοσ"}},    // final sigma folds as a medial one
		{"Ὀδυσσεύς", []string{"οδυσσευσ"}},
		{"Москва ЁЛКА Йогурт", []string{"москва", "елка", "йогурт"}},
		{"한국어 키보드", []string{"한국어", "키보드"}},         // Hangul stays composed
		{"गेमिंग माउस", []string{"गेमिंग", "माउस"}}, // other scripts keep their marks, in their words
		{"İstanbul ıi", []string{"istanbul", "ii"}},
		{"Cre\u0300me \u0419\u043e\u0433\u0443\u0440\u0442 \u0418\u0306\u043e\u0433\u0443\u0440\u0442", []string{"creme", "йогурт", "йогурт"}}, // decomposed as precomposed
		{"Ǽ ǿ ª™", []string{"ae", "o", "atm"}},                                                                                                 // folds more than unaccent
		{strings.Repeat("a", search.MaxWordBytes) + " ok", []string{"ok"}},
	} {
		got := search.Words(tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Words(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Case never matters, and the words are what they read as: for every letter, its capital and its
// small letter give the same words, and reading the words again gives them back.
func TestWordsIgnoreCaseAndAreStable(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !unicode.IsLetter(r) {
			continue
		}
		want := search.Words(string(r))
		for _, v := range []rune{unicode.ToUpper(r), unicode.ToLower(r), unicode.ToTitle(r)} {
			if got := search.Words(string(v)); !slices.Equal(got, want) {
				t.Errorf("Words(%q) = %q but Words(%q) = %q", string(v), got, string(r), want)
			}
		}
		if again := search.Words(strings.Join(want, " ")); !slices.Equal(again, want) {
			t.Errorf("Words(%q) = %q, read again %q", string(r), want, again)
		}
	}
}

func BenchmarkWords(b *testing.B) {
	for _, bc := range []struct{ name, text string }{
		{"ascii", "Kestrel Laptop Pro 512 Low-latency wireless with a 40-hour battery and USB-C charging. Two-year warranty."},
		{"accents", "Crème Laptop Pro 512 Café-tested, naïve-proof set-up in five minutes. Two-year warranty."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.text)))
			for b.Loop() {
				search.Words(bc.text)
			}
		})
	}
}

func BenchmarkVector(b *testing.B) {
	for b.Loop() {
		search.Vector("Kestrel Laptop Pro 512", "Low-latency wireless with a 40-hour battery and USB-C charging. Aluminium body, matte finish. Two-year warranty.")
	}
}
