package auth_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/domain"
)

// t0 is the tests' clock start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func seed(b byte) []byte { return bytes.Repeat([]byte{b}, auth.SeedSize) }

// clock is an injectable clock the test moves by hand.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTokens(t *testing.T, cfg auth.TokenConfig) *auth.Tokens {
	t.Helper()
	tk, err := auth.NewTokens(cfg)
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	return tk
}

// fixture is a Tokens over seed 1 at a hand-moved clock.
func fixture(t *testing.T) (*auth.Tokens, *clock) {
	t.Helper()
	c := &clock{now: t0}
	return newTokens(t, auth.TokenConfig{Seed: seed(1), Now: c.Now}), c
}

func issueAccess(t *testing.T, tk *auth.Tokens, c auth.AccessClaims) string {
	t.Helper()
	tok, _, err := tk.IssueAccess(c)
	if err != nil {
		t.Fatalf("IssueAccess: %v", err)
	}
	return tok
}

func issueRefresh(t *testing.T, tk *auth.Tokens, c auth.RefreshClaims) string {
	t.Helper()
	tok, _, err := tk.IssueRefresh(c)
	if err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	return tok
}

func issueAction(t *testing.T, tk *auth.Tokens, c auth.ActionClaims) string {
	t.Helper()
	tok, err := tk.IssueAction(c)
	if err != nil {
		t.Fatalf("IssueAction: %v", err)
	}
	return tok
}

var (
	alice   = auth.AccessClaims{UserID: 42, Role: "customer", Session: "fam-1"}
	aliceRT = auth.RefreshClaims{UserID: 42, Family: "fam-1", Generation: 3}
	reset   = auth.ActionClaims{Purpose: auth.PurposePasswordReset, UserID: 42, Ref: "evt-9", IssuedAt: t0, TTL: time.Hour}
)

// accessPayload is the payload of a valid access token at t0, to forge variants of.
func accessPayload() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "techvault", "sub": "42", "aud": []string{"access"},
		"iat": t0.Unix(), "exp": t0.Add(15 * time.Minute).Unix(),
		"typ": "access", "role": "customer", "sid": "fam-1",
	}
}

// with returns a copy of m with the changes applied (a nil value deletes the key).
func with(m jwt.MapClaims, changes jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// forge signs claims with method and key, with a kid header when kid is not empty.
func forge(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("forging a token: %v", err)
	}
	return s
}

// ours signs claims with seed 1's key, as the service would if it issued them.
func ours(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	return forge(t, jwt.SigningMethodEdDSA, ed25519.NewKeyFromSeed(seed(1)), auth.KeyID(seed(1)), claims)
}

func segment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// rewrite replaces a token's header or payload segment (decoded, changed by f, re-encoded) and
// keeps its signature.
func rewrite(t *testing.T, tok string, part int, f func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	parts[part] = segment(m)
	return strings.Join(parts, ".")
}

// checkErr fails unless err is want (a domain.ErrUnauthenticated) and quotes none of tok.
func checkErr(t *testing.T, err, want error, tok string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	t.Log(err)
	if !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("err = %v is not domain.ErrUnauthenticated", err)
	}
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Fatalf("err %q quotes the token", err)
		}
	}
}

func TestTokensRoundTrip(t *testing.T) {
	tk, _ := fixture(t)

	tok, exp, err := tk.IssueAccess(alice)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(15 * time.Minute)) {
		t.Fatalf("access expires %v, want %v", exp, t0.Add(15*time.Minute))
	}
	want := alice
	want.ExpiresAt = exp.UTC()
	if got, err := tk.ParseAccess(tok); err != nil || got != want {
		t.Fatalf("ParseAccess = %+v, %v; want %+v", got, err, want)
	}

	rt, rexp, err := tk.IssueRefresh(aliceRT)
	if err != nil {
		t.Fatal(err)
	}
	if !rexp.Equal(t0.Add(30 * 24 * time.Hour)) {
		t.Fatalf("refresh expires %v", rexp)
	}
	if got, err := tk.ParseRefresh(rt); err != nil || got != aliceRT {
		t.Fatalf("ParseRefresh = %+v, %v; want %+v", got, err, aliceRT)
	}
	gen0 := auth.RefreshClaims{UserID: 42, Family: "fam-1", Generation: 0}
	if got, err := tk.ParseRefresh(issueRefresh(t, tk, gen0)); err != nil || got != gen0 {
		t.Fatalf("ParseRefresh(generation 0) = %+v, %v", got, err)
	}

	at := issueAction(t, tk, reset)
	if got, err := tk.ParseAction(auth.PurposePasswordReset, at); err != nil || got != reset {
		t.Fatalf("ParseAction = %+v, %v; want %+v", got, err, reset)
	}
	if again := issueAction(t, tk, reset); again != at {
		t.Fatal("the same action claims gave two tokens")
	}
	if strings.Trim(at, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		t.Fatalf("action token %q is not URL-safe", at)
	}
}

// Every attack on an access token fails with ErrInvalidToken (or, for an expired token that is
// otherwise good, ErrExpiredToken), without a panic and without quoting the token.
func TestParseAccessAttacks(t *testing.T) {
	tk, _ := fixture(t)
	good := issueAccess(t, tk, alice)
	pub := ed25519.NewKeyFromSeed(seed(1)).Public().(ed25519.PublicKey)
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024) // small: only its algorithm matters
	if err != nil {
		t.Fatal(err)
	}
	kid := auth.KeyID(seed(1))
	parts := strings.Split(good, ".")
	noneHeader := func(alg string) string { return segment(map[string]string{"alg": alg, "typ": "JWT", "kid": kid}) }

	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  error
	}{
		{"empty", func(*testing.T) string { return "" }, auth.ErrInvalidToken},
		{"garbage", func(*testing.T) string { return "not a token" }, auth.ErrInvalidToken},
		{"two dots", func(*testing.T) string { return ".." }, auth.ErrInvalidToken},
		{"three dots", func(*testing.T) string { return "..." }, auth.ErrInvalidToken},
		{"four parts", func(*testing.T) string { return good + ".x" }, auth.ErrInvalidToken},
		{"huge", func(*testing.T) string { return strings.Repeat("a", 1<<20) }, auth.ErrInvalidToken},
		{"huge, JWT-shaped", func(*testing.T) string {
			return parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2]
		}, auth.ErrInvalidToken},
		{"binary", func(*testing.T) string { return "\x00\xff.\xfe.\x01" }, auth.ErrInvalidToken},
		{"JSON, not base64", func(*testing.T) string { return `{"alg":"none"}.{}.` }, auth.ErrInvalidToken},
		{"padded base64", func(*testing.T) string { return parts[0] + "==." + parts[1] + "." + parts[2] }, auth.ErrInvalidToken},

		{"alg none, no signature", func(*testing.T) string { return noneHeader("none") + "." + parts[1] + "." }, auth.ErrInvalidToken},
		{"alg none, kept signature", func(*testing.T) string { return noneHeader("none") + "." + parts[1] + "." + parts[2] }, auth.ErrInvalidToken},
		{"alg None", func(*testing.T) string { return noneHeader("None") + "." + parts[1] + "." }, auth.ErrInvalidToken},
		{"alg NONE", func(*testing.T) string { return noneHeader("NONE") + "." + parts[1] + "." }, auth.ErrInvalidToken},
		{"alg none via the library", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, accessPayload())
		}, auth.ErrInvalidToken},
		{"alg missing", func(*testing.T) string {
			return segment(map[string]string{"typ": "JWT", "kid": kid}) + "." + parts[1] + "." + parts[2]
		}, auth.ErrInvalidToken},

		{"HS256 keyed with the public key bytes", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodHS256, []byte(pub), kid, accessPayload())
		}, auth.ErrInvalidToken},
		{"HS256 keyed with the public key PEM", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodHS256, pubPEM, kid, accessPayload())
		}, auth.ErrInvalidToken},
		{"HS512 keyed with the public key bytes", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodHS512, []byte(pub), kid, accessPayload())
		}, auth.ErrInvalidToken},
		{"RS256 from another key", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodRS256, rsaKey, kid, accessPayload())
		}, auth.ErrInvalidToken},
		{"EdDSA from another seed, our kid", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodEdDSA, ed25519.NewKeyFromSeed(seed(2)), kid, accessPayload())
		}, auth.ErrInvalidToken},
		{"EdDSA from another seed, its kid", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodEdDSA, ed25519.NewKeyFromSeed(seed(2)), auth.KeyID(seed(2)), accessPayload())
		}, auth.ErrInvalidToken},
		{"another service's token", func(t *testing.T) string {
			other := newTokens(t, auth.TokenConfig{Seed: seed(2), Now: func() time.Time { return t0 }})
			return issueAccess(t, other, alice)
		}, auth.ErrInvalidToken},
		{"our key, no kid", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodEdDSA, ed25519.NewKeyFromSeed(seed(1)), "", accessPayload())
		}, auth.ErrInvalidToken},

		{"payload tampered: role", func(t *testing.T) string {
			return rewrite(t, good, 1, func(m map[string]any) { m["role"] = "admin" })
		}, auth.ErrInvalidToken},
		{"payload tampered: user", func(t *testing.T) string {
			return rewrite(t, good, 1, func(m map[string]any) { m["sub"] = "1" })
		}, auth.ErrInvalidToken},
		{"payload tampered: expiry", func(t *testing.T) string {
			return rewrite(t, good, 1, func(m map[string]any) { m["exp"] = t0.Add(24 * time.Hour).Unix() })
		}, auth.ErrInvalidToken},
		{"header tampered: extra field", func(t *testing.T) string {
			return rewrite(t, good, 0, func(m map[string]any) { m["x"] = 1 })
		}, auth.ErrInvalidToken},
		{"header tampered: other kid", func(t *testing.T) string {
			return rewrite(t, good, 0, func(m map[string]any) { m["kid"] = auth.KeyID(seed(2)) })
		}, auth.ErrInvalidToken},
		{"header tampered: alg HS256", func(t *testing.T) string {
			return rewrite(t, good, 0, func(m map[string]any) { m["alg"] = "HS256" })
		}, auth.ErrInvalidToken},
		{"signature flipped", func(*testing.T) string {
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			sig[0] ^= 1
			return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
		}, auth.ErrInvalidToken},
		{"signature removed", func(*testing.T) string { return parts[0] + "." + parts[1] + "." }, auth.ErrInvalidToken},
		{"signature truncated", func(*testing.T) string { return good[:len(good)-4] }, auth.ErrInvalidToken},

		{"signed by us: wrong issuer", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"iss": "evil"}))
		}, auth.ErrInvalidToken},
		{"signed by us: no issuer", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"iss": nil}))
		}, auth.ErrInvalidToken},
		{"signed by us: wrong audience", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"aud": []string{"refresh"}}))
		}, auth.ErrInvalidToken},
		{"signed by us: no audience", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"aud": nil}))
		}, auth.ErrInvalidToken},
		{"signed by us: no expiry", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"exp": nil}))
		}, auth.ErrInvalidToken},
		{"signed by us: no issued-at", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"iat": nil}))
		}, auth.ErrInvalidToken},
		{"signed by us: issued in the future", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"iat": t0.Add(time.Minute).Unix()}))
		}, auth.ErrInvalidToken},
		{"signed by us: not valid yet", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"nbf": t0.Add(time.Minute).Unix()}))
		}, auth.ErrInvalidToken},
		{"signed by us: no typ", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"typ": nil}))
		}, auth.ErrInvalidToken},
		{"signed by us: typ refresh", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"typ": "refresh"}))
		}, auth.ErrInvalidToken},
		{"signed by us: subject not a number", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"sub": "alice"}))
		}, auth.ErrInvalidToken},
		{"signed by us: subject zero", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"sub": "0"}))
		}, auth.ErrInvalidToken},
		{"signed by us: no role", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"role": nil}))
		}, auth.ErrInvalidToken},
		{"signed by us: no session", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"sid": nil}))
		}, auth.ErrInvalidToken},
		{"signed by us: expiry a string", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"exp": "tomorrow"}))
		}, auth.ErrInvalidToken},
		{"signed by us: expired", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"exp": t0.Add(-time.Minute).Unix(), "iat": t0.Add(-time.Hour).Unix()}))
		}, auth.ErrExpiredToken},
		{"expired and from another seed", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodEdDSA, ed25519.NewKeyFromSeed(seed(2)), kid,
				with(accessPayload(), jwt.MapClaims{"exp": t0.Add(-time.Minute).Unix()}))
		}, auth.ErrInvalidToken},
		{"expired and wrong audience", func(t *testing.T) string {
			return ours(t, with(accessPayload(), jwt.MapClaims{"exp": t0.Add(-time.Minute).Unix(), "aud": "refresh"}))
		}, auth.ErrInvalidToken},

		{"a refresh token", func(t *testing.T) string { return issueRefresh(t, tk, aliceRT) }, auth.ErrInvalidToken},
		{"an action token", func(t *testing.T) string { return issueAction(t, tk, reset) }, auth.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			got, err := tk.ParseAccess(tok)
			checkErr(t, err, tt.want, tok)
			if got != (auth.AccessClaims{}) {
				t.Fatalf("claims %+v returned with an error", got)
			}
		})
	}
}

func TestParseRefreshAttacks(t *testing.T) {
	tk, c := fixture(t)
	good := issueRefresh(t, tk, aliceRT)
	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  error
	}{
		{"an access token", func(t *testing.T) string { return issueAccess(t, tk, alice) }, auth.ErrInvalidToken},
		{"an action token", func(t *testing.T) string { return issueAction(t, tk, reset) }, auth.ErrInvalidToken},
		{"another service's token", func(t *testing.T) string {
			other := newTokens(t, auth.TokenConfig{Seed: seed(2), Now: c.Now})
			return issueRefresh(t, other, aliceRT)
		}, auth.ErrInvalidToken},
		{"payload tampered: generation", func(t *testing.T) string {
			return rewrite(t, good, 1, func(m map[string]any) { m["gen"] = 4 })
		}, auth.ErrInvalidToken},
		{"payload tampered: family", func(t *testing.T) string {
			return rewrite(t, good, 1, func(m map[string]any) { m["fam"] = "fam-2" })
		}, auth.ErrInvalidToken},
		{"signed by us: no generation", func(t *testing.T) string {
			return ours(t, jwt.MapClaims{"iss": "techvault", "sub": "42", "aud": "refresh", "iat": t0.Unix(),
				"exp": t0.Add(time.Hour).Unix(), "typ": "refresh", "fam": "fam-1"})
		}, auth.ErrInvalidToken},
		{"signed by us: access audience", func(t *testing.T) string {
			return ours(t, jwt.MapClaims{"iss": "techvault", "sub": "42", "aud": "access", "iat": t0.Unix(),
				"exp": t0.Add(time.Hour).Unix(), "typ": "refresh", "fam": "fam-1", "gen": 1})
		}, auth.ErrInvalidToken},
		{"garbage", func(*testing.T) string { return "x.y.z" }, auth.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			_, err := tk.ParseRefresh(tok)
			checkErr(t, err, tt.want, tok)
		})
	}
}

func TestParseActionAttacks(t *testing.T) {
	tk, _ := fixture(t)
	good := issueAction(t, tk, reset)
	tests := []struct {
		name    string
		purpose string
		token   func(t *testing.T) string
		want    error
	}{
		{"another purpose", auth.PurposeVerifyEmail, func(*testing.T) string { return good }, auth.ErrInvalidToken},
		{"a purpose that cannot exist", "Password Reset", func(*testing.T) string { return good }, auth.ErrInvalidToken},
		{"no purpose", "", func(*testing.T) string { return good }, auth.ErrInvalidToken},
		{"purpose tampered", auth.PurposeVerifyEmail, func(t *testing.T) string {
			return rewrite(t, good, 1, func(m map[string]any) { m["pur"] = auth.PurposeVerifyEmail; m["aud"] = "action:verify_email" })
		}, auth.ErrInvalidToken},
		{"ref tampered", auth.PurposePasswordReset, func(t *testing.T) string {
			return rewrite(t, good, 1, func(m map[string]any) { m["ref"] = "evt-10" })
		}, auth.ErrInvalidToken},
		{"signed by us: audience of one purpose, claim of another", auth.PurposeVerifyEmail, func(t *testing.T) string {
			return ours(t, jwt.MapClaims{"iss": "techvault", "sub": "42", "aud": "action:verify_email", "iat": t0.Unix(),
				"exp": t0.Add(time.Hour).Unix(), "typ": "action", "pur": "password_reset", "ref": "evt-9"})
		}, auth.ErrInvalidToken},
		{"signed by us: no ref", auth.PurposePasswordReset, func(t *testing.T) string {
			return ours(t, jwt.MapClaims{"iss": "techvault", "sub": "42", "aud": "action:password_reset", "iat": t0.Unix(),
				"exp": t0.Add(time.Hour).Unix(), "typ": "action", "pur": "password_reset"})
		}, auth.ErrInvalidToken},
		{"an access token", auth.PurposePasswordReset, func(t *testing.T) string { return issueAccess(t, tk, alice) }, auth.ErrInvalidToken},
		{"a refresh token", auth.PurposePasswordReset, func(t *testing.T) string { return issueRefresh(t, tk, aliceRT) }, auth.ErrInvalidToken},
		{"expired", auth.PurposePasswordReset, func(t *testing.T) string {
			return issueAction(t, tk, auth.ActionClaims{Purpose: auth.PurposePasswordReset, UserID: 42, Ref: "evt-1",
				IssuedAt: t0.Add(-2 * time.Hour), TTL: time.Hour})
		}, auth.ErrExpiredToken},
		{"expired, another purpose", auth.PurposeVerifyEmail, func(t *testing.T) string {
			return issueAction(t, tk, auth.ActionClaims{Purpose: auth.PurposePasswordReset, UserID: 42, Ref: "evt-1",
				IssuedAt: t0.Add(-2 * time.Hour), TTL: time.Hour})
		}, auth.ErrInvalidToken},
		{"issued in the future", auth.PurposePasswordReset, func(t *testing.T) string {
			return issueAction(t, tk, auth.ActionClaims{Purpose: auth.PurposePasswordReset, UserID: 42, Ref: "evt-1",
				IssuedAt: t0.Add(time.Hour), TTL: time.Hour})
		}, auth.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			_, err := tk.ParseAction(tt.purpose, tok)
			checkErr(t, err, tt.want, tok)
		})
	}
}

// Expiry follows the injected clock: a token is good up to its expiry plus the leeway, then
// ErrExpiredToken.
func TestTokensExpire(t *testing.T) {
	tk, c := fixture(t)
	at := issueAccess(t, tk, alice)
	rt := issueRefresh(t, tk, aliceRT)
	act := issueAction(t, tk, reset)
	parse := map[string]func() error{
		"access":  func() error { _, err := tk.ParseAccess(at); return err },
		"refresh": func() error { _, err := tk.ParseRefresh(rt); return err },
		"action":  func() error { _, err := tk.ParseAction(auth.PurposePasswordReset, act); return err },
	}
	ttl := map[string]time.Duration{"access": 15 * time.Minute, "refresh": 30 * 24 * time.Hour, "action": time.Hour}
	for kind, p := range parse {
		t.Run(kind, func(t *testing.T) {
			for _, step := range []struct {
				at   time.Duration
				want error
			}{
				{0, nil},
				{ttl[kind] - time.Second, nil},
				{ttl[kind] + 5*time.Second, nil}, // within the 10s leeway
				{ttl[kind] + 11*time.Second, auth.ErrExpiredToken},
				{ttl[kind] + 365*24*time.Hour, auth.ErrExpiredToken},
			} {
				c.now = t0.Add(step.at)
				if err := p(); !errors.Is(err, step.want) {
					t.Fatalf("at +%s: err = %v, want %v", step.at, err, step.want)
				}
			}
		})
	}
}

// Tokens signed with a retired seed stay good while it is listed in PreviousSeeds; new tokens
// are signed with the current seed only.
func TestTokensKeyRotation(t *testing.T) {
	now := func() time.Time { return t0 }
	old := newTokens(t, auth.TokenConfig{Seed: seed(1), Now: now})
	rotated := newTokens(t, auth.TokenConfig{Seed: seed(2), PreviousSeeds: [][]byte{seed(1)}, Now: now})
	dropped := newTokens(t, auth.TokenConfig{Seed: seed(2), Now: now})

	tok := issueRefresh(t, old, aliceRT)
	if _, err := rotated.ParseRefresh(tok); err != nil {
		t.Fatalf("a token of the previous seed: %v", err)
	}
	if _, err := dropped.ParseRefresh(tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a token of a dropped seed: %v, want ErrInvalidToken", err)
	}
	fresh := issueRefresh(t, rotated, aliceRT)
	if _, err := old.ParseRefresh(fresh); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("the new seed's token accepted by the old config: %v", err)
	}
	if _, err := dropped.ParseRefresh(fresh); err != nil {
		t.Fatalf("the new seed's token: %v", err)
	}
}

func TestIssueRefusesBadClaims(t *testing.T) {
	tk, _ := fixture(t)
	tests := []struct {
		name  string
		issue func() error
	}{
		{"access: no user", func() error {
			_, _, err := tk.IssueAccess(auth.AccessClaims{Role: "customer", Session: "s"})
			return err
		}},
		{"access: no role", func() error { _, _, err := tk.IssueAccess(auth.AccessClaims{UserID: 1, Session: "s"}); return err }},
		{"access: no session", func() error { _, _, err := tk.IssueAccess(auth.AccessClaims{UserID: 1, Role: "customer"}); return err }},
		{"refresh: no user", func() error { _, _, err := tk.IssueRefresh(auth.RefreshClaims{Family: "f"}); return err }},
		{"refresh: no family", func() error { _, _, err := tk.IssueRefresh(auth.RefreshClaims{UserID: 1}); return err }},
		{"refresh: negative generation", func() error {
			_, _, err := tk.IssueRefresh(auth.RefreshClaims{UserID: 1, Family: "f", Generation: -1})
			return err
		}},
		{"action: bad purpose", func() error {
			_, err := tk.IssueAction(actionWith(reset, func(c *auth.ActionClaims) { c.Purpose = "Reset!" }))
			return err
		}},
		{"action: no user", func() error {
			_, err := tk.IssueAction(actionWith(reset, func(c *auth.ActionClaims) { c.UserID = 0 }))
			return err
		}},
		{"action: no ref", func() error {
			_, err := tk.IssueAction(actionWith(reset, func(c *auth.ActionClaims) { c.Ref = "" }))
			return err
		}},
		{"action: no time", func() error {
			_, err := tk.IssueAction(actionWith(reset, func(c *auth.ActionClaims) { c.IssuedAt = time.Time{} }))
			return err
		}},
		{"action: no TTL", func() error {
			_, err := tk.IssueAction(actionWith(reset, func(c *auth.ActionClaims) { c.TTL = 0 }))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.issue(); err == nil {
				t.Fatal("issued")
			}
		})
	}
}

func actionWith(c auth.ActionClaims, f func(*auth.ActionClaims)) auth.ActionClaims {
	f(&c)
	return c
}

func TestTokenConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  auth.TokenConfig
		ok   bool
	}{
		{"seed only", auth.TokenConfig{Seed: seed(1)}, true},
		{"generated seed", auth.TokenConfig{Seed: auth.GenerateSeed()}, true},
		{"no seed", auth.TokenConfig{}, false},
		{"short seed", auth.TokenConfig{Seed: seed(1)[:31]}, false},
		{"long seed", auth.TokenConfig{Seed: append(seed(1), 1)}, false},
		{"zero seed", auth.TokenConfig{Seed: seed(0)}, false},
		{"bad previous seed", auth.TokenConfig{Seed: seed(1), PreviousSeeds: [][]byte{seed(2)[:16]}}, false},
		{"access as long as refresh", auth.TokenConfig{Seed: seed(1), AccessTTL: time.Hour, RefreshTTL: time.Hour}, false},
		{"leeway over 30s", auth.TokenConfig{Seed: seed(1), Leeway: time.Minute}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewTokens(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewTokens = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// The seed never shows in the config's printed or logged form.
func TestTokenConfigMasksSeed(t *testing.T) {
	s := auth.GenerateSeed()
	cfg := auth.TokenConfig{Seed: s, PreviousSeeds: [][]byte{auth.GenerateSeed()}, Issuer: "techvault"}
	var log bytes.Buffer
	slog.New(slog.NewJSONHandler(&log, nil)).Info("config", "tokens", cfg)
	for _, out := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%v", &cfg), log.String()} {
		for _, enc := range []string{base64.StdEncoding.EncodeToString(s), string(s), fmt.Sprintf("%x", s)} {
			if strings.Contains(out, enc) {
				t.Fatalf("the seed shows in %q", out)
			}
		}
		if !strings.Contains(out, "****") {
			t.Fatalf("no masked seed in %q", out)
		}
	}
}

func TestParseSeed(t *testing.T) {
	s := auth.GenerateSeed()
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(s),
		base64.RawStdEncoding.EncodeToString(s),
		base64.URLEncoding.EncodeToString(s),
		" " + base64.RawURLEncoding.EncodeToString(s) + "\n",
	} {
		got, err := auth.ParseSeed(enc)
		if err != nil || !bytes.Equal(got, s) {
			t.Fatalf("ParseSeed(%q) = %x, %v", enc, got, err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(s[:16]), base64.StdEncoding.EncodeToString(seed(0))} {
		if _, err := auth.ParseSeed(bad); err == nil {
			t.Fatalf("ParseSeed(%q) accepted", bad)
		}
		if bad != "" && strings.Contains(fmt.Sprint(auth.ParseSeed(bad)), bad) {
			t.Fatalf("the error quotes the input %q", bad)
		}
	}
}
