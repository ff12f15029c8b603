package http_test

import (
	"encoding/json"
	"fmt"
	"net"
	nethttp "net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/auth/oidc"
	"github.com/techvault/techvault/internal/app"
)

// googleUser is a mock Google account: its ID token carries Google's claims.
type googleUser struct {
	sub, email, given, family string
	verified                  bool
}

func (u *googleUser) ID() string { return u.sub }

func (u *googleUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.sub, "email": u.email})
}

func (u *googleUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &googleClaims{IDTokenClaims: base, Email: u.email, EmailVerified: u.verified, GivenName: u.given, FamilyName: u.family}, nil
}

type googleClaims struct {
	*mockoidc.IDTokenClaims
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	GivenName     string `json:"given_name"`
	FamilyName    string `json:"family_name"`
}

// googleHarness is the API with sign-in with Google pointed at a local mock provider.
func googleHarness(t *testing.T) (*harness, *mockoidc.MockOIDC) {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	cfg := m.Config()
	h := newHarness(t, harnessOpts{configure: func(c *app.Config) {
		// The callback's host is rewritten to the test server's by googleSignIn.
		c.Google = oidc.Config{IssuerURL: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			RedirectURL: "http://shop.test/api/v1/auth/google/callback"}
	}})
	return h, m
}

// googleSignIn runs the browser's side of the flow and returns the callback's answer.
func googleSignIn(t *testing.T, h *harness, m *mockoidc.MockOIDC, u *googleUser) response {
	t.Helper()
	m.QueueUser(u)
	jar, _ := cookiejar.New(nil)
	browser := &nethttp.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse }}
	hop := func(u string) *url.URL {
		t.Helper()
		res, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != nethttp.StatusFound {
			t.Fatalf("GET %s: %d, want a redirect", u, res.StatusCode)
		}
		loc, err := url.Parse(res.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	consent := hop(h.srv.URL + "/api/v1/auth/google")
	back := hop(consent.String())
	callback, _ := url.Parse(h.srv.URL)
	callback.Path, callback.RawQuery = back.Path, back.RawQuery
	res, err := browser.Get(callback.String())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body json.RawMessage
	_ = json.NewDecoder(res.Body).Decode(&body)
	return response{status: res.StatusCode, header: res.Header, body: body}
}

func TestGoogleSignIn(t *testing.T) {
	h, m := googleHarness(t)

	// A new Google user gets an account with a verified email.
	grace := &googleUser{sub: "google-grace", email: "grace@example.com", given: "Grace", family: "Hopper", verified: true}
	r := googleSignIn(t, h, m, grace)
	var s session
	r.json(t, &s)
	var created struct {
		User struct {
			Created bool `json:"created"`
		} `json:"user"`
	}
	r.json(t, &created)
	if r.status != 200 || s.AccessToken == "" || !created.User.Created {
		t.Fatalf("first Google sign-in: %d %s", r.status, r.body)
	}
	c := &customer{h: h, access: s.AccessToken, lastPosition: s.Position}
	if m := c.me(); m.FirstName != "Grace" || !m.EmailVerified || len(m.Emails) != 1 || m.Emails[0].Email != "grace@example.com" {
		t.Fatalf("the Google account: %+v", m)
	}
	// The same Google user signs in to the same account.
	r = googleSignIn(t, h, m, grace)
	var again session
	r.json(t, &again)
	if r.status != 200 || again.User.ID != s.User.ID {
		t.Fatalf("second Google sign-in: %d %s", r.status, r.body)
	}

	// An account whose address is verified here is linked.
	linda := &customer{h: h}
	linda.call("POST", "/api/v1/auth/register", `{"first_name":"Linda","last_name":"Linked","email":"linda@example.com","password":"linked passphrase 1"}`, 201)
	// An unverified one is not: whoever registered it has not proven they own it.
	r = googleSignIn(t, h, m, &googleUser{sub: "google-linda", email: "linda@example.com", given: "Linda", verified: true})
	if r.status != 409 {
		t.Fatalf("linking an unverified address: %d %s", r.status, r.body)
	}
	// Google must vouch for the address too.
	r = googleSignIn(t, h, m, &googleUser{sub: "google-unverified", email: "new.person@example.com", verified: false})
	if r.status != 422 {
		t.Fatalf("an address Google did not verify: %d %s", r.status, r.body)
	}
}

func TestGoogleSignInLinksAVerifiedAccount(t *testing.T) {
	h, m := googleHarness(t)
	owner := &customer{h: h}
	owner.call("POST", "/api/v1/auth/register", `{"first_name":"Vera","last_name":"Verified","email":"vera@example.com","password":"verified passphrase 1"}`, 201)
	s := owner.signIn("vera@example.com", "verified passphrase 1")
	// The link of the verification mail, as the mail reactor signs it.
	token, err := testTokens.IssueAction(auth.ActionClaims{Purpose: auth.PurposeVerifyEmail, UserID: s.User.ID,
		Ref: fmt.Sprint(owner.me().Emails[0].ID), IssuedAt: time.Now(), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	owner.call("POST", "/api/v1/auth/verify-email", fmt.Sprintf(`{"token":%q}`, token), 200)
	r := googleSignIn(t, h, m, &googleUser{sub: "google-vera", email: "vera@example.com", given: "Vera", verified: true})
	var g session
	r.json(t, &g)
	if r.status != 200 || g.User.ID != s.User.ID {
		t.Fatalf("Google sign-in to a verified account: %d %s (account %d)", r.status, r.body, s.User.ID)
	}
}
