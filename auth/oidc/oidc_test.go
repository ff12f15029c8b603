package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/techvault/techvault/domain"
)

const (
	startPath    = "/api/v1/auth/google"
	callbackPath = "/api/v1/auth/google/callback"
)

// provider is a local mockoidc server with switches to make it misbehave.
type provider struct {
	mock *mockoidc.MockOIDC
	// failDiscovery makes the discovery document answer 503.
	failDiscovery atomic.Bool
	// forgeJWKS makes the key set hold a key that did not sign the tokens.
	forgeJWKS atomic.Bool
	// discoveries counts discovery requests.
	discoveries atomic.Int64
	forgedJWKS  []byte
}

// startProvider starts a mock OpenID provider on the loopback interface.
func startProvider(t *testing.T) *provider {
	t.Helper()
	m, err := mockoidc.NewServer(nil) // nil: the package's fixed key, no key generation
	if err != nil {
		t.Fatalf("mockoidc: %v", err)
	}
	p := &provider{mock: m, forgedJWKS: forgedKeySet(t, m)}
	err = m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case mockoidc.DiscoveryEndpoint:
				p.discoveries.Add(1)
				if p.failDiscovery.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
			case mockoidc.JWKSEndpoint:
				if p.forgeJWKS.Load() {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write(p.forgedJWKS)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	if err != nil {
		t.Fatalf("mockoidc middleware: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatalf("mockoidc start: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// forgedKeySet is a JWKS whose one key has the mock's key id but is another key.
func forgedKeySet(t *testing.T, m *mockoidc.MockOIDC) []byte {
	t.Helper()
	kid, err := m.Keypair.KeyID()
	if err != nil {
		t.Fatalf("key id: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating a key: %v", err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &key.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig",
	}}})
	if err != nil {
		t.Fatalf("encoding the key set: %v", err)
	}
	return set
}

// googleUser is a mock user whose ID token carries Google's claims, names included (mockoidc's
// MockUser has none).
type googleUser struct {
	sub, email, given, family string
	verified                  bool
}

func (u *googleUser) ID() string { return u.sub }

func (u *googleUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.sub, "email": u.email})
}

func (u *googleUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &googleClaims{
		IDTokenClaims: base,
		Email:         u.email,
		EmailVerified: u.verified,
		GivenName:     u.given,
		FamilyName:    u.family,
	}, nil
}

type googleClaims struct {
	*mockoidc.IDTokenClaims
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	GivenName     string `json:"given_name"`
	FamilyName    string `json:"family_name"`
}

// testClock is the Provider's clock, which tests move forward.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// site is the application: a Provider behind the two routes, and a browser (a client with a
// cookie jar that follows no redirect, so each hop is driven and may be tampered with).
type site struct {
	p       *Provider
	clock   *testClock
	app     *httptest.Server
	browser *http.Client
	key     []byte
}

func newSite(t *testing.T, op *provider) *site {
	t.Helper()
	s := &site{clock: &testClock{}, key: []byte(strings.Repeat("k", 32))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+startPath, func(w http.ResponseWriter, r *http.Request) {
		to, err := s.p.Start(r.Context(), w)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	})
	s.app = httptest.NewServer(mux)
	t.Cleanup(s.app.Close)

	cfg := op.mock.Config()
	p, err := New(Config{
		IssuerURL:    cfg.Issuer,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURL:  s.app.URL + callbackPath,
		StateKey:     s.key,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	p.now = s.clock.Now
	s.p = p

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("cookie jar: %v", err)
	}
	s.browser = &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s
}

// redirect GETs u with the browser and returns where the 302 answer points.
func (s *site) redirect(t *testing.T, u string) *url.URL {
	t.Helper()
	resp, err := s.browser.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: status %d, want 302", u, resp.StatusCode)
	}
	to, err := resp.Location()
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return to
}

// signIn runs the browser's part: the start route, then the provider's authorize endpoint
// (after tamper, if any, changed its URL). It returns the callback URL the provider sent the
// browser to.
func (s *site) signIn(t *testing.T, tamper func(authURL *url.URL)) *url.URL {
	t.Helper()
	authURL := s.redirect(t, s.app.URL+startPath)
	if tamper != nil {
		tamper(authURL)
	}
	callback := s.redirect(t, authURL.String())
	if callback.Path != callbackPath {
		t.Fatalf("provider redirected to %s, want the callback", callback.Path)
	}
	return callback
}

// callbackRequest is the browser's request to callback, with the cookies it would send.
func (s *site) callbackRequest(callback *url.URL) *http.Request {
	r := httptest.NewRequest(http.MethodGet, callback.String(), nil)
	for _, c := range s.browser.Jar.Cookies(callback) {
		r.AddCookie(c)
	}
	return r
}

// finish runs Finish on r and checks that it cleared the state cookie.
func (s *site) finish(t *testing.T, r *http.Request) (Identity, error) {
	t.Helper()
	w := httptest.NewRecorder()
	id, err := s.p.Finish(t.Context(), r, w)
	c := findCookie(w.Result().Cookies(), stateCookie)
	if c == nil || c.MaxAge >= 0 || c.Path != callbackPath {
		t.Errorf("Finish did not clear the state cookie: %+v", c)
	}
	return id, err
}

func findCookie(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func setQuery(u *url.URL, key, value string) {
	q := u.Query()
	if value == "" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	u.RawQuery = q.Encode()
}

// replaceCookie swaps the state cookie of r for value.
func replaceCookie(r *http.Request, value string) {
	r.Header.Del("Cookie")
	r.AddCookie(&http.Cookie{Name: stateCookie, Value: value})
}

func stateOf(t *testing.T, s *site, r *http.Request) flowState {
	t.Helper()
	c, err := r.Cookie(stateCookie)
	if err != nil {
		t.Fatalf("no state cookie: %v", err)
	}
	st, err := openState(s.key, c.Value)
	if err != nil {
		t.Fatalf("opening the state cookie: %v", err)
	}
	return st
}

func TestSignIn(t *testing.T) {
	op := startProvider(t)

	t.Run("new user", func(t *testing.T) {
		s := newSite(t, op)
		op.mock.QueueUser(&googleUser{sub: "g-1", email: "ada@example.com", given: "Ada", family: "Lovelace", verified: true})

		resp, err := s.browser.Get(s.app.URL + startPath)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		resp.Body.Close()
		c := findCookie(resp.Cookies(), stateCookie)
		if c == nil {
			t.Fatal("start set no state cookie")
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != callbackPath || c.MaxAge != 600 || c.Secure {
			t.Errorf("state cookie attributes: %+v", c)
		}
		authURL, err := resp.Location()
		if err != nil {
			t.Fatalf("start location: %v", err)
		}
		q := authURL.Query()
		for key, want := range map[string]string{
			"scope": "openid email profile", "code_challenge_method": "S256",
			"response_type": "code", "redirect_uri": s.app.URL + callbackPath,
		} {
			if got := q.Get(key); got != want {
				t.Errorf("auth URL %s = %q, want %q", key, got, want)
			}
		}
		for _, key := range []string{"state", "nonce", "code_challenge"} {
			if q.Get(key) == "" {
				t.Errorf("auth URL has no %s", key)
			}
		}

		callback := s.redirect(t, authURL.String())
		id, err := s.finish(t, s.callbackRequest(callback))
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		want := Identity{Subject: "g-1", Email: "ada@example.com", EmailVerified: true, GivenName: "Ada", FamilyName: "Lovelace"}
		if id != want {
			t.Errorf("identity = %+v, want %+v", id, want)
		}
	})

	t.Run("unverified email", func(t *testing.T) {
		s := newSite(t, op)
		op.mock.QueueUser(&googleUser{sub: "g-2", email: "bob@example.com", given: "Bob"})
		id, err := s.finish(t, s.callbackRequest(s.signIn(t, nil)))
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if id.EmailVerified || id.Email != "bob@example.com" || id.Subject != "g-2" {
			t.Errorf("identity = %+v, want bob's, unverified", id)
		}
	})

	t.Run("mockoidc default user", func(t *testing.T) {
		s := newSite(t, op)
		op.mock.QueueUser(mockoidc.DefaultUser())
		id, err := s.finish(t, s.callbackRequest(s.signIn(t, nil)))
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if !id.EmailVerified || id.Email != mockoidc.DefaultUser().Email {
			t.Errorf("identity = %+v", id)
		}
	})
}

func TestFinishRejects(t *testing.T) {
	op := startProvider(t)
	otherKey := []byte(strings.Repeat("x", 32))

	tests := []struct {
		name string
		// authURL tampers with the authorization URL before the browser follows it.
		authURL func(u *url.URL)
		// callback tampers with the callback request before Finish.
		callback func(t *testing.T, s *site, r *http.Request)
		// message, when set, is in the error.
		message string
	}{
		{
			name:     "state mismatch",
			callback: func(_ *testing.T, _ *site, r *http.Request) { setQuery(r.URL, "state", rand.Text()) },
			message:  "state does not match",
		},
		{
			name:     "missing state",
			callback: func(_ *testing.T, _ *site, r *http.Request) { setQuery(r.URL, "state", "") },
		},
		{
			name:     "missing cookie",
			callback: func(_ *testing.T, _ *site, r *http.Request) { r.Header.Del("Cookie") },
			message:  "cookie is missing",
		},
		{
			name: "tampered cookie",
			callback: func(t *testing.T, s *site, r *http.Request) {
				c, _ := r.Cookie(stateCookie)
				body, sig, _ := strings.Cut(c.Value, ".")
				payload, err := base64.RawURLEncoding.DecodeString(body)
				if err != nil {
					t.Fatalf("decoding the cookie: %v", err)
				}
				var st flowState
				if err := json.Unmarshal(payload, &st); err != nil {
					t.Fatalf("decoding the cookie: %v", err)
				}
				st.Expires += 3600 // a longer life, with the old signature
				payload, _ = json.Marshal(st)
				replaceCookie(r, base64.RawURLEncoding.EncodeToString(payload)+"."+sig)
			},
			message: "cookie is invalid",
		},
		{
			name: "cookie signed with another key",
			callback: func(t *testing.T, s *site, r *http.Request) {
				v, err := sealState(otherKey, stateOf(t, s, r))
				if err != nil {
					t.Fatal(err)
				}
				replaceCookie(r, v)
			},
			message: "cookie is invalid",
		},
		{
			name:     "garbage cookie",
			callback: func(_ *testing.T, _ *site, r *http.Request) { replaceCookie(r, "not-a-state") },
		},
		{
			name:     "expired cookie",
			callback: func(_ *testing.T, s *site, _ *http.Request) { s.clock.Advance(stateTTL + time.Second) },
			message:  "took too long",
		},
		{
			name:    "code issued for another nonce",
			authURL: func(u *url.URL) { setQuery(u, "nonce", rand.Text()) },
			message: "not issued for this sign-in",
		},
		{
			name: "wrong PKCE verifier",
			callback: func(t *testing.T, s *site, r *http.Request) {
				st := stateOf(t, s, r)
				st.Verifier = rand.Text() + rand.Text()
				v, err := sealState(s.key, st)
				if err != nil {
					t.Fatal(err)
				}
				replaceCookie(r, v)
			},
			message: "code is invalid",
		},
		{
			name: "provider error access_denied",
			callback: func(_ *testing.T, _ *site, r *http.Request) {
				setQuery(r.URL, "code", "")
				setQuery(r.URL, "error", "access_denied")
			},
			message: "refused the sign-in (access_denied)",
		},
		{
			name: "forged provider error",
			callback: func(_ *testing.T, _ *site, r *http.Request) {
				setQuery(r.URL, "error", "<script>alert(1)</script>")
			},
			message: "(unknown error)",
		},
		{
			name:     "missing code",
			callback: func(_ *testing.T, _ *site, r *http.Request) { setQuery(r.URL, "code", "") },
		},
		{
			name:     "unknown code",
			callback: func(_ *testing.T, _ *site, r *http.Request) { setQuery(r.URL, "code", "c0de-"+rand.Text()) },
			message:  "code is invalid",
		},
		{
			name: "oversized code",
			callback: func(_ *testing.T, _ *site, r *http.Request) {
				setQuery(r.URL, "code", strings.Repeat("c", maxParamLen+1))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, op)
			r := s.callbackRequest(s.signIn(t, tc.authURL))
			if tc.callback != nil {
				tc.callback(t, s, r)
			}
			code := r.URL.Query().Get("code")
			_, err := s.finish(t, r)
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, domain.ErrUnauthenticated) {
				t.Fatalf("Finish error = %v, want ErrInvalid", err)
			}
			if tc.message != "" && !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
			assertNoSecrets(t, err, r, code)
		})
	}
}

// assertNoSecrets checks that err quotes neither the code nor the state cookie.
func assertNoSecrets(t *testing.T, err error, r *http.Request, code string) {
	t.Helper()
	if code != "" && strings.Contains(err.Error(), code) {
		t.Errorf("error %q quotes the code", err)
	}
	if c, cerr := r.Cookie(stateCookie); cerr == nil && c.Value != "" && strings.Contains(err.Error(), c.Value) {
		t.Errorf("error %q quotes the state cookie", err)
	}
	if strings.Contains(err.Error(), "<script>") {
		t.Errorf("error %q quotes a request parameter", err)
	}
}

func TestFinishCodeReuse(t *testing.T) {
	op := startProvider(t)
	s := newSite(t, op)
	r := s.callbackRequest(s.signIn(t, nil))
	if _, err := s.finish(t, r); err != nil {
		t.Fatalf("first Finish: %v", err)
	}
	// A replay of the same callback (the cookie too) fails at the provider: codes are single-use.
	_, err := s.finish(t, r)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("second Finish error = %v, want ErrInvalid", err)
	}
	assertNoSecrets(t, err, r, r.URL.Query().Get("code"))
}

func TestFinishProviderFaults(t *testing.T) {
	op := startProvider(t)

	t.Run("token endpoint down", func(t *testing.T) {
		s := newSite(t, op)
		r := s.callbackRequest(s.signIn(t, nil))
		op.mock.QueueError(&mockoidc.ServerError{Code: http.StatusServiceUnavailable, Error: "temporarily_unavailable"})
		_, err := s.finish(t, r)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, domain.ErrUnavailable) || errors.Is(err, ErrInvalid) {
			t.Fatalf("Finish error = %v, want ErrUnavailable", err)
		}
	})

	t.Run("ID token signed by another key", func(t *testing.T) {
		op.forgeJWKS.Store(true)
		defer op.forgeJWKS.Store(false)
		s := newSite(t, op)
		r := s.callbackRequest(s.signIn(t, nil))
		_, err := s.finish(t, r)
		if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Finish error = %v, want a server-side verification error", err)
		}
		if !strings.Contains(err.Error(), "verifying the ID token") {
			t.Errorf("error %q does not say the ID token failed verification", err)
		}
		assertNoSecrets(t, err, r, r.URL.Query().Get("code"))
	})
}

func TestDiscoveryIsLazyAndRetried(t *testing.T) {
	op := startProvider(t)
	op.failDiscovery.Store(true)
	s := newSite(t, op) // New succeeds with the provider down
	if n := op.discoveries.Load(); n != 0 {
		t.Fatalf("New made %d discovery requests, want none", n)
	}

	start := func() error {
		t.Helper()
		_, err := s.p.Start(t.Context(), httptest.NewRecorder())
		return err
	}
	for i := range 2 {
		if err := start(); !errors.Is(err, ErrUnavailable) || !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("Start %d with the provider down: error = %v, want ErrUnavailable", i, err)
		}
	}
	if n := op.discoveries.Load(); n != 1 {
		t.Errorf("discovery requests = %d, want 1 (no retry within %s)", n, discoveryRetryDelay)
	}

	op.failDiscovery.Store(false)
	if err := start(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Start within the retry delay: error = %v, want ErrUnavailable", err)
	}
	s.clock.Advance(discoveryRetryDelay)
	if err := start(); err != nil {
		t.Fatalf("Start after the retry delay: %v", err)
	}
	if err := start(); err != nil {
		t.Fatalf("Start once discovered: %v", err)
	}
	if n := op.discoveries.Load(); n != 2 {
		t.Errorf("discovery requests = %d, want 2", n)
	}

	// The whole flow works on the late-discovered provider.
	if _, err := s.finish(t, s.callbackRequest(s.signIn(t, nil))); err != nil {
		t.Fatalf("Finish: %v", err)
	}
}

func TestFinishWithProviderUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	p, err := New(Config{
		IssuerURL: "http://" + addr, ClientID: "id", ClientSecret: "secret",
		RedirectURL: "https://shop.example" + callbackPath, StateKey: make([]byte, 32),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !p.secure {
		t.Error("an https redirect URL does not make the cookie Secure")
	}
	st := flowState{State: "s", Nonce: "n", Verifier: "v", Expires: time.Now().Add(time.Minute).Unix()}
	v, err := sealState(p.stateKey, st)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, callbackPath+"?state=s&code=c", nil)
	r.AddCookie(&http.Cookie{Name: stateCookie, Value: v})
	if _, err := p.Finish(context.Background(), r, httptest.NewRecorder()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Finish error = %v, want ErrUnavailable", err)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := Config{
		ClientID: "id", ClientSecret: "secret",
		RedirectURL: "https://shop.example/api/v1/auth/google/callback", StateKey: make([]byte, 32),
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{name: "valid, Google by default", change: func(*Config) {}},
		{name: "no client id", change: func(c *Config) { c.ClientID = "" }, want: "client ID"},
		{name: "no client secret", change: func(c *Config) { c.ClientSecret = "" }, want: "client secret"},
		{name: "no redirect URL", change: func(c *Config) { c.RedirectURL = "" }, want: "redirect URL"},
		{name: "relative redirect URL", change: func(c *Config) { c.RedirectURL = "/callback" }, want: "redirect URL"},
		{name: "bad issuer", change: func(c *Config) { c.IssuerURL = "accounts.google.com" }, want: "issuer URL"},
		{name: "short state key", change: func(c *Config) { c.StateKey = make([]byte, 31) }, want: "state key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.change(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate error = %v, want one about %s", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") && cfg.ClientSecret != "" && strings.Contains(err.Error(), cfg.ClientSecret) {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}
	if cfg := valid.withDefaults(); cfg.IssuerURL != GoogleIssuer || cfg.HTTPClient == nil {
		t.Errorf("defaults: issuer %q, client %v", cfg.IssuerURL, cfg.HTTPClient)
	}
}

func TestOpenStateRejectsGarbage(t *testing.T) {
	key := make([]byte, 32)
	sign := func(payload string) string {
		body := base64.RawURLEncoding.EncodeToString([]byte(payload))
		return body + "." + base64.RawURLEncoding.EncodeToString(stateMAC(key, body))
	}
	tests := map[string]string{
		"empty":                "",
		"dot":                  ".",
		"no signature":         "abc",
		"bad base64 signature": "abc.!!!",
		"bad base64 body":      "!!!." + base64.RawURLEncoding.EncodeToString(stateMAC(key, "!!!")),
		"signed non-JSON":      sign("not json"),
		"signed JSON null":     sign("null"),
		"signed empty object":  sign("{}"),
		"signed wrong types":   sign(`{"s":1,"n":[],"v":{},"e":"x"}`),
		"oversized":            strings.Repeat("a", maxCookieLen+1),
	}
	for name, value := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := openState(key, value); !errors.Is(err, errBadState) {
				t.Fatalf("openState error = %v, want errBadState", err)
			}
		})
	}
}

func FuzzOpenState(f *testing.F) {
	key := make([]byte, 32)
	good, err := sealState(key, flowState{State: "s", Nonce: "n", Verifier: "v", Expires: 1})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", ".", good, good + "x", strings.Replace(good, ".", "..", 1)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		st, err := openState(key, value)
		if err == nil && value != good {
			t.Fatalf("openState accepted a forged value %q as %+v", value, st)
		}
	})
}
