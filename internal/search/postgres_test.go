package search_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/techvault/techvault/internal/search"
	"github.com/techvault/techvault/internal/testdb"
)

// products.search is computed in Go; migration 0021's SQL functions (unaccent with its default
// rules, ICU lower case, a regular expression and to_tsvector) computed it before and are the
// reference: the words of every letter and digit of Latin-1, Latin Extended-A and -B, IPA, the
// spacing modifier letters, Greek, Cyrillic and Latin Extended Additional, and the vectors of names and descriptions, must be the same.
func TestSearchVectorMatchesPostgres(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()

	var texts []string
	for _, block := range [][2]rune{{0xa0, 0x24f}, {0x250, 0x2af}, {0x2b0, 0x2ff}, {0x370, 0x3ff}, {0x400, 0x4ff}, {0x1e00, 0x1eff}} {
		for r := block[0]; r <= block[1]; r++ {
			// Where search.Words folds more than unaccent, on purpose (besides reading capitals
			// as small letters, below, which makes ς σ): compatibility forms (ª, µ, ϑ: unaccent
			// keeps some), the accented forms of the letters unaccent spells out (ǽ is ae, as æ
			// is; unaccent keeps ǽ), and the letters that are another one in NFC (U+0374 is
			// U+02B9).
			if strings.ContainsRune("ǢǣǼǽǾǿǮǯ", r) || norm.NFKD.String(string(r)) != norm.NFD.String(string(r)) ||
				norm.NFC.String(string(r)) != string(r) ||
				!unicode.IsLetter(r) && !unicode.IsDigit(r) {
				continue
			}
			texts = append(texts, "x"+string(r)+"y "+string(r))
		}
	}
	if len(texts) < 500 {
		t.Fatalf("only %d letters to compare", len(texts))
	}
	pairs := [][2]string{
		{"Crème BRÛLÉE, RTX-4090", "Café-tested, naïve-proof set-up in five minutes."},
		{"Ærø Straße Œuvre", "Łódź, Đorđe, Þór — ½ price"},
		{"NVIDIA GeForce RTX 4090 Founders Edition", "24 GB GDDR6X; 2.52 GHz boost; x86_64 drivers; the the the"},
		{"", "only a description"},
		{"only a name", ""},
		{"Ελληνικό πληκτρολόγιο Άλφα", "Клавиатура с русской раскладкой, ёж"},
	}
	for _, p := range pairs {
		texts = append(texts, p[0], p[1])
	}

	// search.Words reads a capital as its small letter (Postgres' unaccent spells out some
	// capitals and not their small letters, or the other way round: Ɩ is i, ɩ stays): the
	// reference for a text is Postgres' words of its small letters.
	small := make([]string, len(texts))
	for i, text := range texts {
		small[i] = strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, text)
	}
	rows, err := db.Pool.Query(ctx, `SELECT string_to_array(techvault_search_text(t), ' ') FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i`, small)
	if err != nil {
		t.Fatal(err)
	}
	var i int
	for rows.Next() {
		var want []string
		if err := rows.Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := search.Words(texts[i]); !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Errorf("SearchWords(%q) = %q, Postgres %q", texts[i], got, want)
		}
		i++
	}
	if err := rows.Err(); err != nil || i != len(texts) {
		t.Fatalf("%d of %d texts: %v", i, len(texts), err)
	}

	// Vectors at the limits of a tsvector: a word repeated more often than a word keeps
	// positions, in the name, in the description and in both; more words than a tsvector has
	// positions, the name's words among the last.
	var many strings.Builder
	for i := range 17000 {
		fmt.Fprintf(&many, "w%d ", i%5000)
	}
	many.WriteString("kestrel monitor")
	pairs = append(pairs,
		[2]string{strings.Repeat("echo ", 300), "echo"},
		[2]string{"echo", strings.Repeat("echo ", 300)},
		[2]string{strings.Repeat("echo ", 200), strings.Repeat("echo ", 200)},
		[2]string{"Kestrel Monitor", many.String()},
		[2]string{strings.Repeat("w1 ", 17000), "w1 w2"})
	for _, p := range pairs {
		var same bool
		var got, want string
		if err := db.Pool.QueryRow(ctx, `SELECT $1::tsvector = techvault_search_vector($2, $3), $1::tsvector::text, techvault_search_vector($2, $3)::text`,
			search.Vector(p[0], p[1]), p[0], p[1]).Scan(&same, &got, &want); err != nil {
			t.Fatal(err)
		}
		if !same {
			t.Errorf("search.Vector(%.40q, %.40q) = %.300s, Postgres %.300s", p[0], p[1], got, want)
		}
	}

	// And the query side: what a customer types reads as the tsquery migration 0021's function
	// made of it.
	for _, q := range []string{"gefor", "GEFORCE rt", "créme BRÛL", "Straße", "'\\:* & | ! (x) <-> y", "ŉ ʼ' ˈa", "Клав"} {
		var same bool
		var got, want string
		if err := db.Pool.QueryRow(ctx, `SELECT $1::tsquery = techvault_search_query($2), $1::tsquery::text, techvault_search_query($2)::text`,
			search.Query(q), q).Scan(&same, &got, &want); err != nil {
			t.Fatal(err)
		}
		if !same {
			t.Errorf("search.Query(%q) = %s, Postgres %s", q, got, want)
		}
	}
}
