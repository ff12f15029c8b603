// Package oidc signs users in with Google (or any OpenID Connect provider): the authorization
// code flow with state, nonce and PKCE, the ID token verified against the provider's keys.
//
// The HTTP layer serves two routes with it: GET /api/v1/auth/google calls Start and redirects
// to the URL it returns; GET /api/v1/auth/google/callback calls Finish and turns the Identity
// into an account (a new user, or a link to the account holding the same verified email).
//
// Nothing is kept on the server between the two requests: state, nonce and PKCE verifier travel
// in one short-lived cookie, HMAC-signed with Config.StateKey, scoped to the callback path.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/techvault/techvault/domain"
)

// GoogleIssuer is Google's OpenID Connect issuer, the default Config.IssuerURL.
const GoogleIssuer = "https://accounts.google.com"

const (
	// stateTTL is how long a sign-in may take between Start and Finish.
	stateTTL = 10 * time.Minute
	// discoveryRetryDelay is how long a failed discovery is not retried: requests in the
	// meantime fail at once with ErrUnavailable instead of each waiting on the network.
	discoveryRetryDelay = 5 * time.Second
	// defaultHTTPTimeout bounds each request to the provider when Config.HTTPClient is nil.
	defaultHTTPTimeout = 10 * time.Second
	// maxParamLen bounds the code and state query parameters; longer ones are refused unread.
	maxParamLen = 4096
)

// The scopes asked for: the ID token then carries email, email_verified and the names.
var scopes = []string{gooidc.ScopeOpenID, "email", "profile"}

// kindError is an error kind of this package that also matches a kind of the domain's error
// vocabulary, so the HTTP layer's one error table maps it without knowing this package.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }

// Is reports whether target is the domain kind e stands for.
func (e *kindError) Is(target error) bool { return target == e.kind }

// The error kinds of Start and Finish.
var (
	// ErrInvalid: the sign-in request is at fault (missing, expired or tampered state cookie,
	// state or nonce mismatch, an error reported by the provider, a bad or reused code). Its
	// errors are *domain.Error values whose message is fit for clients and holds no token; it
	// also matches domain.ErrUnauthenticated (401).
	ErrInvalid error = &kindError{msg: "invalid sign-in", kind: domain.ErrUnauthenticated}
	// ErrUnavailable: the provider could not be reached or failed (discovery, token endpoint);
	// the request may be repeated. It also matches domain.ErrUnavailable (503).
	ErrUnavailable error = &kindError{msg: "identity provider unavailable", kind: domain.ErrUnavailable}
)

// invalid is an ErrInvalid error with a message for the client.
func invalid(format string, args ...any) error {
	return &domain.Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

// Config configures a Provider.
type Config struct {
	// IssuerURL is the provider's issuer; its discovery document is read from
	// IssuerURL/.well-known/openid-configuration. Default GoogleIssuer.
	IssuerURL string
	// ClientID and ClientSecret are the OAuth client's credentials (Google Cloud console).
	ClientID     string
	ClientSecret string
	// RedirectURL is the absolute URL of the callback route, as registered with the provider.
	// The state cookie is scoped to its path.
	RedirectURL string
	// StateKey is the HMAC key signing the state cookie: at least 32 random bytes, secret.
	StateKey []byte
	// CookieSecure marks the state cookie Secure. It is set anyway when RedirectURL is https.
	CookieSecure bool
	// HTTPClient makes the requests to the provider. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// withDefaults returns c with its defaults filled in.
func (c Config) withDefaults() Config {
	if c.IssuerURL == "" {
		c.IssuerURL = GoogleIssuer
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	return c
}

// Validate reports the first missing or malformed setting (after defaults). Its errors name
// the setting, never its value.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := absoluteURL(c.IssuerURL); err != nil {
		return fmt.Errorf("oidc config: issuer URL: %w", err)
	}
	if c.ClientID == "" {
		return errors.New("oidc config: client ID is required")
	}
	if c.ClientSecret == "" {
		return errors.New("oidc config: client secret is required")
	}
	if _, err := absoluteURL(c.RedirectURL); err != nil {
		return fmt.Errorf("oidc config: redirect URL: %w", err)
	}
	if len(c.StateKey) < 32 {
		return fmt.Errorf("oidc config: state key has %d bytes, at least 32 are required", len(c.StateKey))
	}
	return nil
}

// absoluteURL parses s as an absolute http(s) URL.
func absoluteURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("not an absolute http(s) URL")
	}
	return u, nil
}

// Identity is who signed in, as the verified ID token says. Link or create an account by
// email only when EmailVerified is true; Subject is the provider's stable id for the user.
type Identity struct {
	Subject       string
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
}

// Provider runs the sign-in flow against one OpenID Connect provider. It is safe for
// concurrent use.
type Provider struct {
	cfg        Config
	cookiePath string
	secure     bool
	stateKey   []byte
	now        func() time.Time

	// endpoints is set once discovery has succeeded.
	endpoints atomic.Pointer[endpoints]
	// discovering is a one-slot semaphore: one discovery at a time, waiters keep their ctx.
	discovering chan struct{}
	// failedAt is when discovery last failed (guarded by discovering).
	failedAt time.Time
}

// endpoints is what discovery yields.
type endpoints struct {
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

// New returns a Provider for cfg. It does no I/O: the provider's discovery document is read on
// first use (and again on later uses while it fails), so the server starts while the provider is
// unreachable. Call Discover at startup to warm it up.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	redirect, err := absoluteURL(cfg.RedirectURL)
	if err != nil {
		return nil, fmt.Errorf("oidc config: redirect URL: %w", err)
	}
	path := redirect.EscapedPath()
	if path == "" {
		path = "/"
	}
	return &Provider{
		cfg:         cfg,
		cookiePath:  path,
		secure:      cfg.CookieSecure || redirect.Scheme == "https",
		stateKey:    slices.Clone(cfg.StateKey),
		now:         time.Now,
		discovering: make(chan struct{}, 1),
	}, nil
}

// Discover reads the provider's discovery document unless that is done. Start and Finish call
// it; call it at startup to fail early in the log. Its errors match ErrUnavailable.
func (p *Provider) Discover(ctx context.Context) error {
	_, err := p.discover(ctx)
	return err
}

func (p *Provider) discover(ctx context.Context) (*endpoints, error) {
	if e := p.endpoints.Load(); e != nil {
		return e, nil
	}
	select {
	case p.discovering <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the identity provider's discovery: %w: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-p.discovering }()
	if e := p.endpoints.Load(); e != nil {
		return e, nil
	}
	if !p.failedAt.IsZero() && p.now().Sub(p.failedAt) < discoveryRetryDelay {
		return nil, fmt.Errorf("the identity provider's discovery failed moments ago: %w", ErrUnavailable)
	}

	op, err := gooidc.NewProvider(gooidc.ClientContext(ctx, p.cfg.HTTPClient), p.cfg.IssuerURL)
	if err != nil {
		if ctx.Err() == nil {
			p.failedAt = p.now()
		}
		return nil, fmt.Errorf("discovering identity provider %s: %w: %w", p.cfg.IssuerURL, ErrUnavailable, err)
	}
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("reading identity provider %s metadata: %w: %w", p.cfg.IssuerURL, ErrUnavailable, err)
	}
	endpoint := op.Endpoint()
	if slices.Contains(meta.AuthMethods, "client_secret_post") {
		// One request per exchange, where auto-detection may spend two (a code is single-use).
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	e := &endpoints{
		oauth: oauth2.Config{
			ClientID:     p.cfg.ClientID,
			ClientSecret: p.cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  p.cfg.RedirectURL,
			Scopes:       scopes,
		},
		verifier: op.Verifier(&gooidc.Config{ClientID: p.cfg.ClientID, Now: p.now}),
	}
	p.endpoints.Store(e)
	p.failedAt = time.Time{}
	return e, nil
}

// Start begins a sign-in: it sets the state cookie on w and returns the provider's
// authorization URL to redirect the browser to. Its errors match ErrUnavailable when the
// provider's discovery fails.
func (p *Provider) Start(ctx context.Context, w http.ResponseWriter) (string, error) {
	e, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	st := flowState{
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: oauth2.GenerateVerifier(),
		Expires:  p.now().Add(stateTTL).Unix(),
	}
	value, err := sealState(p.stateKey, st)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     stateCookie,
		Value:    value,
		Path:     p.cookiePath,
		MaxAge:   int(stateTTL / time.Second),
		Secure:   p.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	return e.oauth.AuthCodeURL(st.State,
		gooidc.Nonce(st.Nonce),
		oauth2.S256ChallengeOption(st.Verifier),
	), nil
}

// Finish completes a sign-in on the callback request r: it checks the state cookie and the
// state parameter, exchanges the code (with the PKCE verifier), verifies the ID token (issuer,
// audience, expiry, signature, nonce) and returns who signed in. It clears the state cookie on
// w whatever the outcome.
//
// Errors: ErrInvalid when the request is at fault (see ErrInvalid), ErrUnavailable when the
// provider failed transiently; anything else (a token that fails verification, a rejected
// client) is a server-side fault. No error holds a code or token.
func (p *Provider) Finish(ctx context.Context, r *http.Request, w http.ResponseWriter) (Identity, error) {
	cookie, cookieErr := r.Cookie(stateCookie)
	p.clearCookie(w)

	q := r.URL.Query()
	if code := q.Get("error"); code != "" {
		return Identity{}, invalid("the identity provider refused the sign-in (%s)", oauthErrorCode(code))
	}
	if cookieErr != nil {
		return Identity{}, invalid("the sign-in state cookie is missing; start the sign-in again")
	}
	st, err := openState(p.stateKey, cookie.Value)
	if err != nil {
		return Identity{}, invalid("the sign-in state cookie is invalid; start the sign-in again")
	}
	if p.now().Unix() >= st.Expires {
		return Identity{}, invalid("the sign-in took too long; start it again")
	}
	state := q.Get("state")
	if state == "" || len(state) > maxParamLen || subtle.ConstantTimeCompare([]byte(state), []byte(st.State)) != 1 {
		return Identity{}, invalid("the sign-in state does not match; start the sign-in again")
	}
	code := q.Get("code")
	if code == "" || len(code) > maxParamLen {
		return Identity{}, invalid("the sign-in callback has no valid code")
	}

	e, err := p.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	tok, err := e.oauth.Exchange(gooidc.ClientContext(ctx, p.cfg.HTTPClient), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return Identity{}, exchangeError(err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return Identity{}, errors.New("the identity provider's token response has no id_token")
	}
	idt, err := e.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("verifying the ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return Identity{}, invalid("the ID token was not issued for this sign-in; start the sign-in again")
	}
	return identityOf(idt)
}

// clearCookie expires the state cookie: it serves one sign-in attempt.
func (p *Provider) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     stateCookie,
		Value:    "",
		Path:     p.cookiePath,
		MaxAge:   -1,
		Secure:   p.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// identityOf reads the Identity from a verified ID token.
func identityOf(idt *gooidc.IDToken) (Identity, error) {
	var c struct {
		Email         string   `json:"email"`
		EmailVerified flexBool `json:"email_verified"`
		GivenName     string   `json:"given_name"`
		FamilyName    string   `json:"family_name"`
	}
	if err := idt.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("reading the ID token's claims: %w", err)
	}
	if idt.Subject == "" {
		return Identity{}, errors.New("the ID token has no subject")
	}
	return Identity{
		Subject:       idt.Subject,
		Email:         c.Email,
		EmailVerified: bool(c.EmailVerified),
		GivenName:     c.GivenName,
		FamilyName:    c.FamilyName,
	}, nil
}

// flexBool reads a JSON boolean that some providers send as a string ("true").
type flexBool bool

// UnmarshalJSON accepts true, false, "true" and "false"; anything else is false.
func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	default:
		*b = false
	}
	return nil
}

// exchangeError classifies a failed code exchange without echoing the provider's answer
// (its description may quote the code).
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		switch {
		case re.ErrorCode == "invalid_grant":
			return invalid("the sign-in code is invalid, expired or already used; start the sign-in again")
		case status >= 500 || status == http.StatusTooManyRequests:
			return fmt.Errorf("exchanging the code: the provider answered %d: %w", status, ErrUnavailable)
		default:
			return fmt.Errorf("exchanging the code: the provider answered %d (%s)", status, oauthErrorCode(re.ErrorCode))
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// The URL is the token endpoint's; the request body (code, secret) is not in it.
		return fmt.Errorf("exchanging the code: %w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("exchanging the code: unreadable token response: %w", err)
}

// oauthErrorCode returns code when it is one of the error codes of RFC 6749 and OpenID Connect,
// and "unknown error" otherwise, so that a forged callback cannot put text in a response.
func oauthErrorCode(code string) string {
	switch code {
	case "access_denied", "invalid_request", "unauthorized_client", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable", "interaction_required",
		"login_required", "account_selection_required", "consent_required", "invalid_request_uri",
		"invalid_request_object", "request_not_supported", "request_uri_not_supported",
		"registration_not_supported", "invalid_client", "invalid_grant", "unsupported_grant_type":
		return code
	}
	return "unknown error"
}
