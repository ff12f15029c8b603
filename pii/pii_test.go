package pii_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/pii"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestSealOpenAndShred(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	v, err := pii.New(db.Pool, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	box, err := v.CreateKey(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"a", "Ada", "exactly sixteen!", "ümlaut ✓ and a longer value that spans blocks", ""} {
		t.Run(plain, func(t *testing.T) {
			sealed, err := box.Seal(plain)
			if err != nil {
				t.Fatal(err)
			}
			if len(plain) > 3 && strings.Contains(sealed, plain) {
				t.Fatalf("sealed value shows the plaintext: %q", sealed)
			}
			got, err := box.Open(sealed)
			if err != nil || got != plain {
				t.Fatalf("Open = %q, %v; want %q", got, err, plain)
			}
			// The projectors open values inside SQL with pgcrypto: it must agree.
			var inSQL *string
			if err := db.Pool.QueryRow(ctx, `SELECT pii_open($1, key) FROM user_keys WHERE user_id = 7`, sealed).Scan(&inSQL); err != nil {
				t.Fatal(err)
			}
			if inSQL == nil || *inSQL != plain {
				t.Fatalf("pii_open = %v, want %q", inSQL, plain)
			}
		})
	}
	again, err := box.Seal("Ada")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := box.Seal("Ada")
	if again == first {
		t.Fatal("two seals of one value are equal: the IV is not random")
	}

	if err := v.Shred(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Box(ctx, 7); !errors.Is(err, pii.ErrErased) {
		t.Fatalf("Box after Shred: %v, want ErrErased", err)
	}
	var opened *string
	if err := db.Pool.QueryRow(ctx, `SELECT pii_open($1, (SELECT key FROM user_keys WHERE user_id = 7))`, first).Scan(&opened); err != nil {
		t.Fatal(err)
	}
	if opened != nil {
		t.Fatalf("pii_open after Shred = %q, want NULL", *opened)
	}
}

func TestOpenRefusesMalformed(t *testing.T) {
	ctx := context.Background()
	db := testdb.New(t)
	v, err := pii.New(db.Pool, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	box, err := v.CreateKey(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := v.CreateKey(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := other.Seal("someone else's")
	for name, in := range map[string]string{"not base64": "%%%", "short": "AAAA", "odd length": "QUJDREVGR0hJSktMTU5PUFFSUw==", "another key": sealed} {
		t.Run(name, func(t *testing.T) {
			if got, err := box.Open(in); err == nil && got == "someone else's" {
				t.Fatalf("opened %q", got)
			}
		})
	}
}

func TestLookupIsKeyedAndStable(t *testing.T) {
	db := testdb.New(t)
	a, _ := pii.New(db.Pool, []byte(strings.Repeat("a", 32)))
	b, _ := pii.New(db.Pool, []byte(strings.Repeat("b", 32)))
	if first, again := a.Lookup("ada@example.com"), a.Lookup("ada@example.com"); first != again {
		t.Fatal("lookup is not stable")
	}
	if a.Lookup("ada@example.com") == b.Lookup("ada@example.com") {
		t.Fatal("lookup does not depend on the key")
	}
	if strings.Contains(a.Lookup("ada@example.com"), "ada") {
		t.Fatal("lookup shows the value")
	}
}
