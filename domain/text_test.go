package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/techvault/techvault/domain"
)

func TestCleanText(t *testing.T) {
	name := domain.TextRule{Field: "name", Required: true, MaxLen: 10}
	desc := domain.TextRule{Field: "description", MaxLen: 20, Multiline: true}
	tests := []struct {
		name string
		in   string
		rule domain.TextRule
		want string // when ok
		ok   bool
	}{
		{"plain", "GPU", name, "GPU", true},
		{"trims spaces", "  GPU \n", name, "GPU", true},
		{"trims zero width space", "\u200bGPU\u200b", name, "GPU", true},
		{"trims BOM and word joiner", "\ufeff\u2060GPU\u2060", name, "GPU", true},
		{"keeps inner joiners", "👨\u200d👩\u200d👧", name, "👨\u200d👩\u200d👧", true},
		{"keeps a trailing variation selector", "I ❤\ufe0f", name, "I ❤\ufe0f", true},
		{"keeps a flag's tag sequence", "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", name,
			"🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", true},
		{"keeps right-to-left marks", "\u05e9\u05dc\u05d5\u05dd\u200f", desc, "\u05e9\u05dc\u05d5\u05dd", true},
		{"multi-line description", "line 1\n\tline 2", desc, "line 1\n\tline 2", true},
		{"Windows line ends", "line 1\r\nline 2\r\n", desc, "line 1\nline 2", true},
		{"old Mac line ends", "a\rb\r\rc", desc, "a\nb\n\nc", true},
		{"a carriage return in one line", "GPU\rX", name, "", false},
		{"optional may be empty", "  ", desc, "", true},
		{"length counts characters after trimming", " " + strings.Repeat("é", 10) + "\u200b", name, strings.Repeat("é", 10), true},

		{"empty", "", name, "", false},
		{"blank", " \t ", name, "", false},
		{"only zero width space", "\u200b", name, "", false},
		{"only invisible characters", "\u200b\ufeff\u2060\u00ad", name, "", false},
		{"only a variation selector", "\ufe0f", name, "", false},
		{"only a hangul filler", "\u3164", name, "", false},
		{"only a combining grapheme joiner", "\u034f", name, "", false},
		{"right-to-left override", "abc\u202eexe.pdf", name, "", false},
		{"left-to-right embedding", "\u202aabc", name, "", false},
		{"pop directional formatting", "abc\u202c", name, "", false},
		{"isolate", "a\u2066b\u2069", name, "", false},
		{"override in a description", "fine\u202etxt", desc, "", false},
		{"NUL", "a\x00b", name, "", false},
		{"bell", "a\x07b", desc, "", false},
		{"DEL", "a\x7fb", name, "", false},
		{"C1 control", "a\u0085b", desc, "", false},
		{"newline in a name", "a\nb", name, "", false},
		{"tab in a name", "a\tb", name, "", false},
		{"line separator in a name", "a\u2028b", name, "", false},
		{"too long", strings.Repeat("x", 11), name, "", false},
		{"invalid UTF-8", "a\xffb", name, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.CleanText(tc.in, tc.rule)
			if tc.ok {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			var de *domain.Error
			if !errors.As(err, &de) || !errors.Is(err, domain.ErrInvalid) || de.Field != tc.rule.Field || de.Message == "" {
				t.Fatalf("got %q, %v; want invalid %s", got, err, tc.rule.Field)
			}
		})
	}
}
