package http_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/auth/oidc"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/ratelimit"
)

// badCase is one bad request: the 4xx it gets, its JSON error, and no event appended.
type badCase struct {
	name, method, path, body string
	headers                  []string
	status                   int
	code, field              string
	// message, when set, must appear in the error's message (which rule was broken).
	message string
}

// runBadCases runs cases as subtests, each checking its answer and that the log did not grow.
func runBadCases(t *testing.T, h *harness, cases []badCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.head()
			r := h.do(tc.method, tc.path, tc.body, tc.headers...)
			checkBad(t, r, tc.status, tc.code, tc.field, tc.message)
			if after := h.head(); after != before {
				t.Errorf("the log grew from %d to %d", before, after)
			}
		})
	}
}

func checkBad(t *testing.T, r response, status int, code, field, message string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	var b errorBody
	r.json(t, &b)
	if b.Error.Code != code || b.Error.Field != field || b.Error.Message == "" {
		t.Errorf("error %+v, want code %q field %q", b.Error, code, field)
	}
	if message != "" && !strings.Contains(b.Error.Message, message) {
		t.Errorf("message %q does not say %q", b.Error.Message, message)
	}
}

// Every malformed account request, weak password, over-long field, duplicate address and bad
// link token gets a clear 4xx JSON error and appends nothing.
func TestAccountBadInput(t *testing.T) {
	h, _ := newImageHarness(t, generousLimits())
	e := &matrixEnv{t: t, h: h, png: pngImage(t)}
	a, b := e.signUp("customer", true), e.signUp("customer", true)
	bearerA := []string{"Authorization", "Bearer " + a.token}

	// A verification link, used once already.
	aEmail := e.emailIDs(a)[0]
	used := e.verifyToken(a.id, aEmail)
	if r := h.do("POST", "/api/v1/auth/verify-email", fmt.Sprintf(`{"token":%q}`, used)); r.status != 200 {
		t.Fatalf("first verification: %d %s", r.status, r.body)
	}
	// A reset link, redeemed once already, and an open one.
	r1 := e.signUp("customer", false)
	usedReset := e.resetToken(r1)
	if r := h.do("POST", "/api/v1/auth/password-reset/confirm", fmt.Sprintf(`{"token":%q,"password":"Brand-new-pass-1"}`, usedReset)); r.status != 200 {
		t.Fatalf("first reset: %d %s", r.status, r.body)
	}
	openReset := e.resetToken(r1)

	stranger := strangerTokens(t)
	bVerify := e.verifyToken(b.id, e.emailIDs(b)[0])
	expiredVerify, err := testTokens.IssueAction(auth.ActionClaims{Purpose: auth.PurposeVerifyEmail, UserID: b.id,
		Ref: strconv.FormatInt(e.emailIDs(b)[0], 10), IssuedAt: time.Now().Add(-2 * time.Hour), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	foreignVerify, err := stranger.IssueAction(auth.ActionClaims{Purpose: auth.PurposeVerifyEmail, UserID: b.id,
		Ref: strconv.FormatInt(e.emailIDs(b)[0], 10), IssuedAt: time.Now(), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	foreignReset, err := stranger.IssueAction(auth.ActionClaims{Purpose: auth.PurposePasswordReset, UserID: r1.id,
		Ref: "0192d4e0-0000-7000-8000-000000000000", IssuedAt: time.Now(), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tokenBody := func(tok string) string { return fmt.Sprintf(`{"token":%q}`, tok) }
	confirmBody := func(tok string) string { return fmt.Sprintf(`{"token":%q,"password":"Yet-another-pass-2"}`, tok) }

	// register builds a registration body with one field replaced.
	register := func(field, value string) string {
		m := map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": e.freshEmail(), "password": matrixPassword}
		m[field] = value
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	reg := func(name, field, value string, status int, code, wantField, message string) badCase {
		return badCase{name: name, method: "POST", path: "/api/v1/auth/register", body: register(field, value),
			status: status, code: code, field: wantField, message: message}
	}
	badEmail := func(name, value string) badCase {
		return reg("register: email "+name, "email", value, 422, "invalid", "email", "email")
	}
	weak := func(name, value, rule string) badCase {
		return reg("register: password "+name, "password", value, 422, "invalid", "password", rule)
	}
	n51 := strings.Repeat("n", 51)

	// The duplicate: an address already registered, in another case.
	taken := e.signUp("customer", false)

	cases := []badCase{
		badEmail("empty", ""),
		badEmail("without @", "ada.example.com"),
		badEmail("without local part", "@example.com"),
		badEmail("without domain", "ada@"),
		badEmail("domain without dot", "ada@localhost"),
		badEmail("with a display name", "Ada <ada@example.com>"),
		badEmail("with a space", "ada lovelace@example.com"),
		badEmail("with two dots in the domain", "ada@example..com"),
		badEmail("domain starting with a dot", "ada@.example.com"),
		badEmail("not ASCII", "adä@example.com"),
		badEmail("quoted local part", `"ada"@example.com`),
		badEmail("IP literal", "ada@[127.0.0.1]"),
		badEmail("local part over 64", strings.Repeat("a", 65)+"@example.com"),
		badEmail("over 254", "ada@"+strings.Repeat("d", 250)+".com"),
		badEmail("two addresses", "ada@example.com,bob@example.com"),

		weak("too short", "Sh0rt-pw", "at least 10 characters"),
		weak("too long", strings.Repeat("Abc-123-", 17), "at most 128 characters"),
		weak("common", "password123", "too common"),
		weak("common, other case", "QWERTYUIOP", "too common"),
		weak("three distinct characters", "abcabcabcabc", "at least 4 different characters"),
		weak("with a control character", "Tr0ub4dor\u0007horse", "control characters"),
		{name: "register: password contains the email's name", method: "POST", path: "/api/v1/auth/register",
			body:   `{"first_name":"Ada","last_name":"Lovelace","email":"lovelace@example.com","password":"xLoveLace-1815"}`,
			status: 422, code: "invalid", field: "password", message: "must not contain your email's name"},

		reg("register: first_name of 51 characters", "first_name", n51, 422, "invalid", "first_name", "50"),
		reg("register: last_name of 51 characters", "last_name", n51, 422, "invalid", "last_name", "50"),
		reg("register: blank first_name", "first_name", "   ", 422, "invalid", "first_name", ""),
		reg("register: phone over 25 characters", "phone", "+44 20 7946 0958 0958 0958 0958", 422, "invalid", "phone", "international number"),
		reg("register: phone with letters", "phone", "+44 20 ABCD 0958", 422, "invalid", "phone", "international number"),
		reg("register: phone too long in digits", "phone", "+1234567890123456", 422, "invalid", "phone", "international number"),
		{name: "register: unknown field", method: "POST", path: "/api/v1/auth/register",
			body:   `{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com","password":"Tr0ub4dor&3-horse","nickname":"ada"}`,
			status: 400, code: "invalid", field: "nickname", message: "unknown field"},
		{name: "register: email not a string", method: "POST", path: "/api/v1/auth/register",
			body: `{"first_name":"Ada","last_name":"Lovelace","email":5,"password":"Tr0ub4dor&3-horse"}`, status: 400, code: "invalid", field: "email"},
		{name: "register: not JSON", method: "POST", path: "/api/v1/auth/register", body: `{"email":`, status: 400, code: "invalid"},
		{name: "register: duplicate email in another case", method: "POST", path: "/api/v1/auth/register",
			body:   registerBody(strings.ToUpper(taken.email)),
			status: 409, code: "conflict", message: "already registered"},

		// The caller's own data.
		{name: "profile: first_name of 51 characters", method: "PATCH", path: "/api/v1/users/me", headers: bearerA,
			body: fmt.Sprintf(`{"first_name":%q}`, n51), status: 422, code: "invalid", field: "first_name"},
		{name: "profile: last_name of 51 characters", method: "PATCH", path: "/api/v1/users/me", headers: bearerA,
			body: fmt.Sprintf(`{"last_name":%q}`, n51), status: 422, code: "invalid", field: "last_name"},
		{name: "profile: weak new password", method: "PATCH", path: "/api/v1/users/me", headers: bearerA,
			body:   fmt.Sprintf(`{"password":"password123","current_password":%q}`, matrixPassword),
			status: 422, code: "invalid", field: "password", message: "too common"},
		{name: "profile: wrong current password", method: "PATCH", path: "/api/v1/users/me", headers: bearerA,
			body:   `{"password":"An0ther-long-pass","current_password":"not-my-password"}`,
			status: 422, code: "invalid", field: "current_password"},
		{name: "profile: role is not a field", method: "PATCH", path: "/api/v1/users/me", headers: bearerA,
			body: `{"role":"admin"}`, status: 400, code: "invalid", field: "role"},
		{name: "emails: malformed", method: "POST", path: "/api/v1/users/me/emails", headers: bearerA,
			body: `{"email":"not an address"}`, status: 422, code: "invalid", field: "email"},
		{name: "emails: already on the account", method: "POST", path: "/api/v1/users/me/emails", headers: bearerA,
			body: fmt.Sprintf(`{"email":%q}`, a.email), status: 409, code: "conflict"},
		{name: "emails: another account's", method: "POST", path: "/api/v1/users/me/emails", headers: bearerA,
			body: fmt.Sprintf(`{"email":%q}`, b.email), status: 409, code: "conflict"},
		{name: "emails: the primary one cannot go", method: "DELETE", path: fmt.Sprintf("/api/v1/users/me/emails/%d", aEmail),
			headers: bearerA, status: 409, code: "conflict"},
		{name: "emails: id not canonical", method: "DELETE", path: "/api/v1/users/me/emails/007", headers: bearerA,
			status: 400, code: "invalid", field: "id"},
		{name: "phones: over 25 characters", method: "POST", path: "/api/v1/users/me/phones", headers: bearerA,
			body: `{"phone":"+44 20 7946 0958 0958 0958 0958"}`, status: 422, code: "invalid", field: "phone"},
		{name: "addresses: city of 101 characters", method: "POST", path: "/api/v1/users/me/addresses", headers: bearerA,
			body:   fmt.Sprintf(`{"city":%q,"post_code":"10115","country":"DE"}`, strings.Repeat("c", 101)),
			status: 422, code: "invalid", field: "city"},
		{name: "addresses: post code of 21 characters", method: "POST", path: "/api/v1/users/me/addresses", headers: bearerA,
			body:   fmt.Sprintf(`{"city":"Berlin","post_code":%q,"country":"DE"}`, strings.Repeat("1", 21)),
			status: 422, code: "invalid", field: "post_code"},
		{name: "addresses: unknown country", method: "POST", path: "/api/v1/users/me/addresses", headers: bearerA,
			body: `{"city":"Berlin","post_code":"10115","country":"XX"}`, status: 422, code: "invalid", field: "country"},
		{name: "notifications: another account's event", method: "POST",
			path: fmt.Sprintf("/api/v1/notifications/%d/read", b.position), headers: bearerA, status: 404, code: "not_found"},

		// Verification links.
		{name: "verify: expired", method: "POST", path: "/api/v1/auth/verify-email", body: tokenBody(expiredVerify),
			status: 422, code: "invalid", field: "token", message: "expired"},
		{name: "verify: used twice", method: "POST", path: "/api/v1/auth/verify-email", body: tokenBody(used),
			status: 422, code: "invalid", field: "token", message: "already used"},
		{name: "verify: a reset link", method: "POST", path: "/api/v1/auth/verify-email", body: tokenBody(openReset),
			status: 422, code: "invalid", field: "token", message: "not valid"},
		{name: "verify: signed by another server", method: "POST", path: "/api/v1/auth/verify-email", body: tokenBody(foreignVerify),
			status: 422, code: "invalid", field: "token", message: "not valid"},
		{name: "verify: an access token", method: "POST", path: "/api/v1/auth/verify-email", body: tokenBody(a.token),
			status: 422, code: "invalid", field: "token", message: "not valid"},
		{name: "verify: tampered", method: "POST", path: "/api/v1/auth/verify-email", body: tokenBody(tamper(t, bVerify, "sub", strconv.FormatInt(a.id, 10))),
			status: 422, code: "invalid", field: "token", message: "not valid"},
		{name: "verify: garbage", method: "POST", path: "/api/v1/auth/verify-email", body: tokenBody("not-a-token"),
			status: 422, code: "invalid", field: "token"},
		{name: "verify: empty", method: "POST", path: "/api/v1/auth/verify-email", body: `{}`,
			status: 422, code: "invalid", field: "token"},
		{name: "verify: another account's address", method: "POST", path: "/api/v1/auth/verify-email",
			body: tokenBody(e.verifyToken(a.id, e.emailIDs(b)[0])), status: 422, code: "invalid", field: "token", message: "no longer valid"},

		// Reset links.
		{name: "reset: used twice", method: "POST", path: "/api/v1/auth/password-reset/confirm", body: confirmBody(usedReset),
			status: 422, code: "invalid", field: "token", message: "no longer valid"},
		{name: "reset: expired", method: "POST", path: "/api/v1/auth/password-reset/confirm",
			body:   confirmBody(issueResetToken(t, h, r1.id, time.Now().Add(-2*time.Hour))),
			status: 422, code: "invalid", field: "token", message: "expired"},
		{name: "reset: signed by another server", method: "POST", path: "/api/v1/auth/password-reset/confirm", body: confirmBody(foreignReset),
			status: 422, code: "invalid", field: "token", message: "not valid"},
		{name: "reset: a verification link", method: "POST", path: "/api/v1/auth/password-reset/confirm", body: confirmBody(bVerify),
			status: 422, code: "invalid", field: "token", message: "not valid"},
		{name: "reset: garbage", method: "POST", path: "/api/v1/auth/password-reset/confirm", body: confirmBody("x.y.z"),
			status: 422, code: "invalid", field: "token"},
		{name: "reset: weak new password", method: "POST", path: "/api/v1/auth/password-reset/confirm",
			body:   fmt.Sprintf(`{"token":%q,"password":"short"}`, openReset),
			status: 422, code: "invalid", field: "password", message: "at least 10 characters"},
		{name: "reset request: malformed email", method: "POST", path: "/api/v1/auth/password-reset/request",
			body: `{"email":"nobody"}`, status: 422, code: "invalid", field: "email"},
	}
	runBadCases(t, h, cases)

	// The open reset link still works after the refusals above.
	if r := h.do("POST", "/api/v1/auth/password-reset/confirm", confirmBody(openReset)); r.status != 200 {
		t.Errorf("open reset link after refusals: %d %s", r.status, r.body)
	}
}

// strangerTokens issues tokens under a key that is not the server's.
func strangerTokens(t *testing.T) *auth.Tokens {
	t.Helper()
	tok, err := auth.NewTokens(auth.TokenConfig{Seed: auth.GenerateSeed()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// pastTokens issues tokens under the server's key on a clock two hours behind, so that access
// and refresh tokens (one hour) are expired.
func pastTokens(t *testing.T) *auth.Tokens {
	t.Helper()
	tok, err := auth.NewTokens(auth.TokenConfig{Seed: app.DeriveKey(testSecret, app.KeyTokens),
		AccessTTL: time.Minute, RefreshTTL: time.Hour, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var b64 = base64.RawURLEncoding

// tamper sets a claim of a token's payload and keeps the signature.
func tamper(t *testing.T, tok, claim string, value any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload := map[string]any{}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	payload[claim] = value
	parts[1] = b64.EncodeToString(mustJSON(t, payload))
	return strings.Join(parts, ".")
}

// flipPayload changes one character in the middle of a token's payload.
func flipPayload(tok string) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[1])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}

// forge builds a token with header alg and the payload of tok, signed by sign (nil: no
// signature).
func forge(t *testing.T, tok string, header map[string]any, sign func(signingInput string) []byte) string {
	t.Helper()
	payload := strings.Split(tok, ".")[1]
	input := b64.EncodeToString(mustJSON(t, header)) + "." + payload
	var sig []byte
	if sign != nil {
		sig = sign(input)
	}
	return input + "." + b64.EncodeToString(sig)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Bad access and refresh tokens: tampered, unsigned, signed with the wrong algorithm or key,
// expired, or of another kind. Each is a 401 and appends nothing.
func TestBadTokens(t *testing.T) {
	h := newHarness(t, harnessOpts{limits: generousLimits()})
	e := &matrixEnv{t: t, h: h}
	a := e.signUp("customer", true)
	s := e.login(a)
	claims, err := testTokens.ParseAccess(s.AccessToken)
	if err != nil {
		t.Fatal(err)
	}

	// The server's public key and its kid: what an attacker who has a token knows.
	pub := ed25519.NewKeyFromSeed(app.DeriveKey(testSecret, app.KeyTokens)).Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	kid := hex.EncodeToString(sum[:8])
	hs256 := func(key []byte) func(string) []byte {
		return func(input string) []byte {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(input))
			return m.Sum(nil)
		}
	}
	raised := tamper(t, s.AccessToken, "role", "admin")
	past, stranger := pastTokens(t), strangerTokens(t)
	expiredAccess, _, err := past.IssueAccess(auth.AccessClaims{UserID: a.id, Role: "customer", Session: claims.Session})
	if err != nil {
		t.Fatal(err)
	}
	foreignAccess, _, err := stranger.IssueAccess(auth.AccessClaims{UserID: a.id, Role: "admin", Session: claims.Session})
	if err != nil {
		t.Fatal(err)
	}
	verify := e.verifyToken(a.id, e.emailIDs(a)[0])
	refreshClaims, err := testTokens.ParseRefresh(s.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	expiredRefresh, _, err := past.IssueRefresh(auth.RefreshClaims{UserID: a.id, Family: refreshClaims.Family, Generation: refreshClaims.Generation})
	if err != nil {
		t.Fatal(err)
	}
	foreignRefresh, _, err := stranger.IssueRefresh(auth.RefreshClaims{UserID: a.id, Family: refreshClaims.Family, Generation: refreshClaims.Generation})
	if err != nil {
		t.Fatal(err)
	}

	access := func(name, header string) badCase {
		return badCase{name: "access: " + name, method: "PATCH", path: "/api/v1/users/me", body: `{"first_name":"Mallory"}`,
			headers: []string{"Authorization", header}, status: 401, code: "unauthenticated"}
	}
	refresh := func(name, tok string) badCase {
		return badCase{name: "refresh: " + name, method: "POST", path: "/api/v1/auth/refresh",
			body: fmt.Sprintf(`{"refresh_token":%q}`, tok), status: 401, code: "unauthenticated"}
	}
	cases := []badCase{
		access("role raised in the payload", "Bearer "+raised),
		access("a character of the payload flipped", "Bearer "+flipPayload(s.AccessToken)),
		access("signature cut off", "Bearer "+s.AccessToken[:strings.LastIndex(s.AccessToken, ".")+1]),
		access("alg none", "Bearer "+forge(t, raised, map[string]any{"alg": "none", "typ": "JWT"}, nil)),
		access("alg none with the kid", "Bearer "+forge(t, raised, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, nil)),
		access("HS256 keyed with the public key", "Bearer "+forge(t, raised, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, hs256(pub))),
		access("HS256 keyed with the public key in base64", "Bearer "+forge(t, raised, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid},
			hs256([]byte(base64.StdEncoding.EncodeToString(pub))))),
		access("RS256 header", "Bearer "+forge(t, raised, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, hs256(pub))),
		access("signed by another server", "Bearer "+foreignAccess),
		access("expired", "Bearer "+expiredAccess),
		access("a refresh token", "Bearer "+s.RefreshToken),
		access("a verification link", "Bearer "+verify),
		access("garbage", "Bearer not.a.token"),
		access("not a bearer", "Basic "+base64.StdEncoding.EncodeToString([]byte("ada:pw"))),
		access("an empty bearer", "Bearer "),
		access("over-long", "Bearer "+strings.Repeat("a", 5000)),

		refresh("an access token", s.AccessToken),
		refresh("a verification link", verify),
		refresh("expired", expiredRefresh),
		refresh("signed by another server", foreignRefresh),
		refresh("generation raised in the payload", tamper(t, s.RefreshToken, "gen", refreshClaims.Generation+1)),
		refresh("alg none", forge(t, s.RefreshToken, map[string]any{"alg": "none", "typ": "JWT"}, nil)),
		refresh("HS256 keyed with the public key", forge(t, s.RefreshToken, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, hs256(pub))),
		refresh("garbage", "garbage"),
		refresh("empty", ""),
		{name: "refresh: unknown field", method: "POST", path: "/api/v1/auth/refresh", body: `{"token":"x"}`,
			status: 400, code: "invalid", field: "token"},
		{name: "login: wrong password", method: "POST", path: "/api/v1/auth/login",
			body: fmt.Sprintf(`{"email":%q,"password":"not-the-password"}`, a.email), status: 401, code: "unauthenticated"},
		{name: "login: unknown account", method: "POST", path: "/api/v1/auth/login",
			body: `{"email":"nobody@example.com","password":"not-the-password"}`, status: 401, code: "unauthenticated"},
	}
	runBadCases(t, h, cases)
	for _, tc := range cases {
		if !strings.HasPrefix(tc.name, "access: ") {
			continue
		}
		if r := h.do(tc.method, tc.path, tc.body, tc.headers...); r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}

	// The genuine tokens still work, and the name was never changed.
	if r := h.do("GET", "/api/v1/users/me", "", "Authorization", "Bearer "+s.AccessToken); r.status != 200 || strings.Contains(string(r.body), "Mallory") {
		t.Fatalf("the genuine access token: %d %s", r.status, r.body)
	}

	// A refresh token used twice: refused, and (by design, so recorded in the log) its whole
	// session ends: the token it was exchanged for stops working too.
	r := h.do("POST", "/api/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, s.RefreshToken))
	if r.status != 200 {
		t.Fatalf("first refresh: %d %s", r.status, r.body)
	}
	var next tokenPair
	r.json(t, &next)
	checkBad(t, h.do("POST", "/api/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, s.RefreshToken)), 401, "unauthenticated", "", "session has ended")
	checkBad(t, h.do("POST", "/api/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, next.RefreshToken)), 401, "unauthenticated", "", "session has ended")
}

// Bad picture uploads: a text file named .png, a damaged PNG, an empty file, too big (2 MB and
// a byte; 50 MB declared, or streamed without a length), not multipart, no image field. Each
// is a 4xx JSON error, appends nothing and stores nothing.
func TestImageBadInput(t *testing.T) {
	h, cloud := newImageHarness(t, generousLimits())
	e := &matrixEnv{t: t, h: h, png: pngImage(t)}
	a := e.signUp("customer", true)
	bearer := []string{"Authorization", "Bearer " + a.token}
	form := func(field, name string, data []byte) (string, []string) {
		body, ct := imageForm(t, field, name, data)
		return body, append([]string{"Content-Type", ct}, bearer...)
	}
	upload := func(name, field, filename string, data []byte, status int, wantField, message string) badCase {
		body, headers := form(field, filename, data)
		return badCase{name: name, method: "PUT", path: "/api/v1/users/me/image", body: body, headers: headers,
			status: status, code: "invalid", field: wantField, message: message}
	}
	bigPNG := append(append([]byte{}, e.png...), make([]byte, images.MaxBytes+1-len(e.png))...)

	cases := []badCase{
		upload("a text file named x.png", "image", "x.png", []byte("hello, I am not a picture at all\n"), 422, "image", "JPEG, PNG or WebP"),
		upload("a cut-off PNG", "image", "x.png", e.png[:40], 422, "image", "not a readable PNG"),
		upload("an empty file", "image", "x.png", nil, 422, "image", "empty"),
		upload("2 MB and a byte", "image", "x.png", bigPNG, 413, "image", "at most 2 MB"),
		upload("no image field", "avatar", "x.png", e.png, 400, "image", "no field named image"),
		{name: "JSON instead of a form", method: "PUT", path: "/api/v1/users/me/image", body: `{"image":"aGVsbG8="}`,
			headers: bearer, status: 415, code: "invalid", field: "image", message: "multipart/form-data"},
		{name: "raw PNG bytes", method: "PUT", path: "/api/v1/users/me/image", body: string(e.png),
			headers: append([]string{"Content-Type", "image/png"}, bearer...), status: 415, code: "invalid", field: "image"},
		{name: "a form without a boundary", method: "PUT", path: "/api/v1/users/me/image", body: "garbage",
			headers: append([]string{"Content-Type", "multipart/form-data"}, bearer...), status: 400, code: "invalid", field: "image"},
	}
	runBadCases(t, h, cases)

	// 50 MB: refused without being read to its end, with a declared length or streamed.
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("50 MB, length declared %v", declared), func(t *testing.T) {
			before := h.head()
			r, read := bigUpload(t, h, a.token, 50<<20, declared)
			checkBad(t, r, 413, "invalid", "image", "at most 2 MB")
			t.Logf("the client got to send %d KB", read>>10)
			if read > 20<<20 {
				t.Errorf("the server let the client send %d MB before refusing", read>>20)
			}
			if after := h.head(); after != before {
				t.Errorf("the log grew from %d to %d", before, after)
			}
		})
	}
	if n := len(cloud.Assets()); n != 0 {
		t.Errorf("%d pictures were stored", n)
	}
}

// countingZeros is n zero bytes, counting how many were read.
type countingZeros struct {
	n    int64
	read atomic.Int64
}

func (z *countingZeros) Read(p []byte) (int, error) {
	left := z.n - z.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	clear(p)
	z.read.Add(int64(len(p)))
	return len(p), nil
}

// bigUpload sends a multipart upload of size bytes (with a declared Content-Length, or chunked)
// and returns the answer and how many bytes the client got to send.
func bigUpload(t *testing.T, h *harness, token string, size int64, declared bool) (response, int64) {
	t.Helper()
	const boundary = "techvault-boundary"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n" +
		"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n"
	tail := "\r\n--" + boundary + "--\r\n"
	zeros := &countingZeros{n: size}
	body := io.MultiReader(strings.NewReader(head), zeros, strings.NewReader(tail))
	req, err := nethttp.NewRequestWithContext(t.Context(), "PUT", h.srv.URL+"/api/v1/users/me/image", body)
	if err != nil {
		t.Fatal(err)
	}
	if declared {
		req.ContentLength = int64(len(head)) + size + int64(len(tail))
	}
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, zeros.read.Load()
}

// setLimit lowers a rule's limit (and its allowance while Redis is down, which may not exceed it).
func setLimit(r *ratelimit.Rule, n int) {
	r.Limit, r.LocalAllowance = n, min(r.LocalAllowance, n)
}

// The fourth failed sign-in for one address within the window is refused with 429, Retry-After
// and the code rate_limited, even with the right password; another address is not affected.
func TestSignInRateLimit(t *testing.T) {
	p := ratelimit.DefaultPolicy()
	setLimit(&p.SignInAccount, 3)
	h := newHarness(t, harnessOpts{limits: &p})
	e := &matrixEnv{t: t, h: h}
	a := e.signUp("customer", false)
	wrong := fmt.Sprintf(`{"email":%q,"password":"not-the-password"}`, a.email)

	before := h.head()
	for i := range 3 {
		if r := h.do("POST", "/api/v1/auth/login", wrong); r.status != 401 {
			t.Fatalf("failed sign-in %d: %d %s", i+1, r.status, r.body)
		}
	}
	for _, body := range []string{wrong, fmt.Sprintf(`{"email":%q,"password":%q}`, strings.ToUpper(a.email), a.password)} {
		r := h.do("POST", "/api/v1/auth/login", body)
		checkBad(t, r, 429, "rate_limited", "", "")
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After %q, want a whole number of seconds >= 1", r.header.Get("Retry-After"))
		}
	}
	if after := h.head(); after != before {
		t.Errorf("the log grew from %d to %d", before, after)
	}
	r := h.do("POST", "/api/v1/auth/login", `{"email":"someone-else@example.com","password":"not-the-password"}`)
	checkBad(t, r, 401, "unauthenticated", "", "")
}

// Redeeming reset links is limited per client address by its own rule: it neither spends nor
// is refused by the budget of the reset requests (ResetIP, and ResetAccount, which has no
// address to key on here).
func TestResetConfirmRateLimit(t *testing.T) {
	p := ratelimit.DefaultPolicy()
	setLimit(&p.ResetAccount, 1)
	setLimit(&p.ResetIP, 2)
	setLimit(&p.ResetConfirmIP, 3)
	h := newHarness(t, harnessOpts{limits: &p})
	bad := `{"token":"not-a-token","password":"Tr0ub4dor&3-horse"}`
	for i := range 3 {
		if r := h.do("POST", "/api/v1/auth/password-reset/confirm", bad); r.status != 422 {
			t.Fatalf("confirm %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := h.do("POST", "/api/v1/auth/password-reset/confirm", bad)
	checkBad(t, r, 429, "rate_limited", "", "")
	if r := h.do("POST", "/api/v1/auth/password-reset/request", `{"email":"someone@example.com"}`); r.status != 202 {
		t.Fatalf("a reset request after the confirms: %d %s", r.status, r.body)
	}
}

// Google's callback is limited per client address only: it names no account, so it must not
// share one per-account budget among every Google sign-in of every user.
func TestGoogleCallbackRateLimit(t *testing.T) {
	p := ratelimit.DefaultPolicy()
	setLimit(&p.SignInAccount, 2)
	setLimit(&p.SignInIP, 5)
	h := newHarness(t, harnessOpts{limits: &p, configure: func(c *app.Config) {
		// The issuer is never contacted: each callback lacks its state cookie.
		c.Google = oidc.Config{IssuerURL: "http://127.0.0.1:9", ClientID: "client", ClientSecret: "secret",
			RedirectURL: "http://shop.test/api/v1/auth/google/callback"}
	}})
	for i := range 5 {
		r := h.do("GET", "/api/v1/auth/google/callback?state=s&code=c", "")
		if r.status == 429 || r.status < 400 {
			t.Fatalf("callback %d: %d %s", i+1, r.status, r.body)
		}
	}
	checkBad(t, h.do("GET", "/api/v1/auth/google/callback?state=s&code=c", ""), 429, "rate_limited", "", "")
}
