package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/techvault/techvault/domain"
)

// The token errors. Both are domain.ErrUnauthenticated (401) with a fixed client message; the
// error a Parse returns wraps one of them with a short reason for the log. No message ever
// holds the token or its claims.
var (
	// ErrInvalidToken: the token is not one this service issued for that use (malformed,
	// badly signed, another kind, purpose, issuer or audience, missing claims).
	ErrInvalidToken error = &domain.Error{Kind: domain.ErrUnauthenticated, Message: "invalid token"}
	// ErrExpiredToken: a token this service issued for that use, past its expiry.
	ErrExpiredToken error = &domain.Error{Kind: domain.ErrUnauthenticated, Message: "expired token"}
)

// SeedSize is the length of a signing seed in bytes.
const SeedSize = ed25519.SeedSize

// maxTokenLength bounds what Parse decodes: our tokens are a few hundred bytes, and a longer
// string is refused before any base64 or JSON work.
const maxTokenLength = 4096

// maxLeeway bounds TokenConfig.Leeway.
const maxLeeway = 30 * time.Second

// TokenConfig configures Tokens.
type TokenConfig struct {
	// Seed is the 32-byte Ed25519 seed the signing key is derived from. Required: there is no
	// default (GenerateSeed makes one for development). It is a secret; String and LogValue
	// mask it.
	Seed []byte
	// PreviousSeeds are retired seeds whose tokens are still accepted (never used to sign), for
	// key rotation: sign with a new Seed, keep the old one here for RefreshTTL, then drop it.
	// Each token names its key in the kid header.
	PreviousSeeds [][]byte
	// Issuer is the iss claim of every token, and the only one accepted ("techvault").
	Issuer string
	// AccessTTL is an access token's lifetime (15m).
	AccessTTL time.Duration
	// RefreshTTL is a refresh token's lifetime (30 days).
	RefreshTTL time.Duration
	// Leeway is the clock skew tolerated on exp and iat (10s, at most 30s).
	Leeway time.Duration
	// Now is the clock (time.Now); tests inject their own.
	Now func() time.Time
}

func (c *TokenConfig) setDefaults() {
	if c.Issuer == "" {
		c.Issuer = "techvault"
	}
	if c.AccessTTL <= 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.Leeway <= 0 {
		c.Leeway = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a config Tokens cannot run with. Zero durations and issuer take their
// defaults first (NewTokens does that).
func (c TokenConfig) Validate() error {
	if err := validSeed(c.Seed); err != nil {
		return fmt.Errorf("auth: token seed: %w", err)
	}
	for i, s := range c.PreviousSeeds {
		if err := validSeed(s); err != nil {
			return fmt.Errorf("auth: previous token seed %d: %w", i, err)
		}
	}
	switch {
	case c.Issuer == "":
		return errors.New("auth: token issuer is empty")
	case c.AccessTTL <= 0 || c.RefreshTTL <= 0:
		return errors.New("auth: token lifetimes must be positive")
	case c.AccessTTL >= c.RefreshTTL:
		return fmt.Errorf("auth: access token lifetime (%s) must be shorter than the refresh token's (%s)", c.AccessTTL, c.RefreshTTL)
	case c.Leeway < 0 || c.Leeway > maxLeeway:
		return fmt.Errorf("auth: token leeway must be between 0 and %s, got %s", maxLeeway, c.Leeway)
	case c.Now == nil:
		return errors.New("auth: token clock is nil")
	}
	return nil
}

func validSeed(s []byte) error {
	if len(s) != SeedSize {
		return fmt.Errorf("must be %d bytes, got %d", SeedSize, len(s))
	}
	for _, b := range s {
		if b != 0 {
			return nil
		}
	}
	return errors.New("is all zeros")
}

// String masks the seeds, so the config can be printed.
func (c TokenConfig) String() string {
	return fmt.Sprintf("issuer=%s access_ttl=%s refresh_ttl=%s leeway=%s seed=%s previous_seeds=%d",
		c.Issuer, c.AccessTTL, c.RefreshTTL, c.Leeway, maskSeed(c.Seed), len(c.PreviousSeeds))
}

// LogValue masks the seeds, so the config can be logged.
func (c TokenConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("issuer", c.Issuer),
		slog.Duration("access_ttl", c.AccessTTL),
		slog.Duration("refresh_ttl", c.RefreshTTL),
		slog.Duration("leeway", c.Leeway),
		slog.String("seed", maskSeed(c.Seed)),
		slog.Int("previous_seeds", len(c.PreviousSeeds)),
	)
}

func maskSeed(s []byte) string {
	if len(s) == 0 {
		return "(unset)"
	}
	return "****"
}

// GenerateSeed returns a fresh random seed, for development and for making a production one
// (store it base64-encoded as a secret; ParseSeed reads it back).
func GenerateSeed() []byte {
	s := make([]byte, SeedSize)
	_, _ = rand.Read(s) // never fails (crypto/rand panics instead)
	return s
}

// ParseSeed decodes a base64 seed (standard or URL alphabet, padded or not). Its errors never
// hold the input.
func ParseSeed(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if err := validSeed(b); err != nil {
				return nil, fmt.Errorf("auth: token seed %w", err)
			}
			return b, nil
		}
	}
	return nil, errors.New("auth: token seed is not base64")
}

// The token kinds: each has its own typ claim and audience, so none is accepted as another.
const (
	typAccess  = "access"
	typRefresh = "refresh"
	typAction  = "action"
)

// Action purposes. Any purpose matching validPurpose is accepted; these are the ones in use.
const (
	PurposeVerifyEmail   = "verify_email"
	PurposePasswordReset = "password_reset"
)

var validPurpose = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func actionAudience(purpose string) string { return typAction + ":" + purpose }

// Tokens issues and parses the service's signed tokens (JWTs signed with Ed25519, alg EdDSA).
// It is safe for concurrent use.
type Tokens struct {
	cfg TokenConfig
	key ed25519.PrivateKey
	kid string
	// keys are the verification keys by kid: the current one and the previous ones.
	keys map[string]ed25519.PublicKey
}

// NewTokens returns Tokens signing with cfg.Seed.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tokens{
		cfg:  cfg,
		key:  ed25519.NewKeyFromSeed(cfg.Seed),
		keys: make(map[string]ed25519.PublicKey, 1+len(cfg.PreviousSeeds)),
	}
	pub := t.key.Public().(ed25519.PublicKey)
	t.kid = keyID(pub)
	t.keys[t.kid] = pub
	for _, s := range cfg.PreviousSeeds {
		pub := ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
		t.keys[keyID(pub)] = pub
	}
	return t, nil
}

// keyID names a public key: the first 8 bytes of its SHA-256, in hex.
func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// AccessClaims are what an access token says: who, with which role, in which session.
type AccessClaims struct {
	UserID int64
	Role   string
	// Session is the session's (refresh token family's) id, so a signed-out session's access
	// tokens can be told apart.
	Session string
	// ExpiresAt is when the token expires (set by ParseAccess; ignored by IssueAccess).
	ExpiresAt time.Time
}

// RefreshClaims are what a refresh token says. The session logic compares Generation with the
// family's current one: an older generation is a reused token.
type RefreshClaims struct {
	UserID     int64
	Family     string
	Generation int64
}

// ActionClaims are what a single-use link's token says (email verification, password reset).
// The token itself is not single-use: the caller records that Ref was answered.
type ActionClaims struct {
	// Purpose is PurposeVerifyEmail, PurposePasswordReset or another [a-z][a-z0-9_]* name.
	Purpose string
	UserID  int64
	// Ref is the id of the request (event) the link answers.
	Ref string
	// IssuedAt and TTL place the token's validity (whole seconds are kept).
	IssuedAt time.Time
	TTL      time.Duration
}

// claims is the JWT payload of every kind; the fields a kind does not use are left out.
type claims struct {
	jwt.RegisteredClaims
	Typ        string `json:"typ"`
	Role       string `json:"role,omitempty"`
	Session    string `json:"sid,omitempty"`
	Family     string `json:"fam,omitempty"`
	Generation *int64 `json:"gen,omitempty"`
	Purpose    string `json:"pur,omitempty"`
	Ref        string `json:"ref,omitempty"`
}

// IssueAccess returns a signed access token for c and when it expires.
func (t *Tokens) IssueAccess(c AccessClaims) (string, time.Time, error) {
	switch {
	case c.UserID <= 0:
		return "", time.Time{}, errors.New("auth: access token: user id must be positive")
	case c.Role == "":
		return "", time.Time{}, errors.New("auth: access token: role is empty")
	case c.Session == "":
		return "", time.Time{}, errors.New("auth: access token: session is empty")
	}
	now := t.cfg.Now()
	exp := now.Add(t.cfg.AccessTTL).Truncate(time.Second)
	tok, err := t.sign(claims{
		RegisteredClaims: t.registered(typAccess, c.UserID, now, exp),
		Typ:              typAccess,
		Role:             c.Role,
		Session:          c.Session,
	})
	return tok, exp, err
}

// ParseAccess verifies an access token and returns its claims. Errors are ErrExpiredToken or
// ErrInvalidToken (wrapped with a reason).
func (t *Tokens) ParseAccess(token string) (AccessClaims, error) {
	cl, err := t.parse(token, typAccess, typAccess)
	if err != nil {
		return AccessClaims{}, err
	}
	uid, err := userID(cl)
	if err != nil {
		return AccessClaims{}, err
	}
	if cl.Role == "" || cl.Session == "" {
		return AccessClaims{}, invalid("missing claim")
	}
	return AccessClaims{UserID: uid, Role: cl.Role, Session: cl.Session, ExpiresAt: cl.ExpiresAt.UTC()}, nil
}

// IssueRefresh returns a signed refresh token for c and when it expires.
func (t *Tokens) IssueRefresh(c RefreshClaims) (string, time.Time, error) {
	switch {
	case c.UserID <= 0:
		return "", time.Time{}, errors.New("auth: refresh token: user id must be positive")
	case c.Family == "":
		return "", time.Time{}, errors.New("auth: refresh token: family is empty")
	case c.Generation < 0:
		return "", time.Time{}, errors.New("auth: refresh token: generation is negative")
	}
	now := t.cfg.Now()
	exp := now.Add(t.cfg.RefreshTTL).Truncate(time.Second)
	gen := c.Generation
	tok, err := t.sign(claims{
		RegisteredClaims: t.registered(typRefresh, c.UserID, now, exp),
		Typ:              typRefresh,
		Family:           c.Family,
		Generation:       &gen,
	})
	return tok, exp, err
}

// ParseRefresh verifies a refresh token and returns its claims. Errors are ErrExpiredToken or
// ErrInvalidToken (wrapped with a reason). A valid signature says nothing about reuse: compare
// Generation with the family's.
func (t *Tokens) ParseRefresh(token string) (RefreshClaims, error) {
	cl, err := t.parse(token, typRefresh, typRefresh)
	if err != nil {
		return RefreshClaims{}, err
	}
	uid, err := userID(cl)
	if err != nil {
		return RefreshClaims{}, err
	}
	if cl.Family == "" || cl.Generation == nil || *cl.Generation < 0 {
		return RefreshClaims{}, invalid("missing claim")
	}
	return RefreshClaims{UserID: uid, Family: cl.Family, Generation: *cl.Generation}, nil
}

// IssueAction returns a signed, URL-safe token for a single-use link, valid from c.IssuedAt for
// c.TTL. The same claims give the same token (Ed25519 signatures are deterministic).
func (t *Tokens) IssueAction(c ActionClaims) (string, error) {
	switch {
	case !validPurpose.MatchString(c.Purpose):
		return "", errors.New("auth: action token: purpose must match [a-z][a-z0-9_]{0,63}")
	case c.UserID <= 0:
		return "", errors.New("auth: action token: user id must be positive")
	case c.Ref == "":
		return "", errors.New("auth: action token: ref is empty")
	case c.IssuedAt.IsZero():
		return "", errors.New("auth: action token: issued-at is zero")
	case c.TTL < time.Second:
		return "", errors.New("auth: action token: TTL must be at least a second")
	}
	return t.sign(claims{
		RegisteredClaims: t.registered(actionAudience(c.Purpose), c.UserID, c.IssuedAt, c.IssuedAt.Add(c.TTL)),
		Typ:              typAction,
		Purpose:          c.Purpose,
		Ref:              c.Ref,
	})
}

// ParseAction verifies an action token issued for purpose and returns its claims. Errors are
// ErrExpiredToken or ErrInvalidToken (wrapped with a reason); a token of another purpose is
// invalid.
func (t *Tokens) ParseAction(purpose, token string) (ActionClaims, error) {
	if !validPurpose.MatchString(purpose) {
		return ActionClaims{}, invalid("unknown purpose")
	}
	cl, err := t.parse(token, typAction, actionAudience(purpose))
	if err != nil {
		return ActionClaims{}, err
	}
	uid, err := userID(cl)
	if err != nil {
		return ActionClaims{}, err
	}
	if cl.Purpose != purpose {
		return ActionClaims{}, invalid("wrong purpose")
	}
	if cl.Ref == "" {
		return ActionClaims{}, invalid("missing claim")
	}
	iat, exp := cl.IssuedAt.UTC(), cl.ExpiresAt.UTC()
	return ActionClaims{Purpose: cl.Purpose, UserID: uid, Ref: cl.Ref, IssuedAt: iat, TTL: exp.Sub(iat)}, nil
}

// registered fills the standard claims (times are kept in whole seconds).
func (t *Tokens) registered(aud string, uid int64, iat, exp time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer:    t.cfg.Issuer,
		Subject:   strconv.FormatInt(uid, 10),
		Audience:  jwt.ClaimStrings{aud},
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
}

func (t *Tokens) sign(c claims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = t.kid
	s, err := tok.SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("auth: signing a %s token: %w", c.Typ, err)
	}
	return s, nil
}

// parse verifies token strictly: EdDSA with one of our keys (named by kid), our issuer, the
// audience aud, the typ claim typ, exp and iat present and in range (within the leeway).
func (t *Tokens) parse(token, typ, aud string) (*claims, error) {
	if token == "" || len(token) > maxTokenLength {
		return nil, invalid("malformed")
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(t.cfg.Issuer),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(t.cfg.Leeway),
		jwt.WithTimeFunc(t.cfg.Now),
		jwt.WithStrictDecoding(),
	)
	var cl claims
	_, err := p.ParseWithClaims(token, &cl, t.verificationKey)
	switch {
	case err == nil:
	case expiredOnly(err) && cl.Typ == typ:
		return nil, fmt.Errorf("auth: %s token: %w", typ, ErrExpiredToken)
	default:
		return nil, invalid(reason(err))
	}
	if cl.Typ != typ {
		return nil, invalid("wrong token type")
	}
	if cl.IssuedAt == nil {
		return nil, invalid("missing claim")
	}
	return &cl, nil
}

// verificationKey is the jwt.Keyfunc: the public key the kid header names, for EdDSA only.
func (t *Tokens) verificationKey(tok *jwt.Token) (any, error) {
	if _, ok := tok.Method.(*jwt.SigningMethodEd25519); !ok {
		return nil, errors.New("unexpected signing method")
	}
	kid, _ := tok.Header["kid"].(string)
	key, ok := t.keys[kid]
	if !ok {
		return nil, errors.New("unknown key")
	}
	return key, nil
}

// expiredOnly reports whether the only fault jwt found is the expiry (a signature or another
// claim's fault makes the token invalid, not merely expired).
func expiredOnly(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidAudience, jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenNotValidYet,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

// reason names what is wrong with a token in a few fixed words, for the log: jwt's own messages
// can quote the header (the alg), which is the client's text.
func reason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{jwt.ErrTokenMalformed, "malformed"},
		{jwt.ErrTokenUnverifiable, "unverifiable"},
		{jwt.ErrTokenSignatureInvalid, "bad signature or algorithm"},
		{jwt.ErrTokenRequiredClaimMissing, "missing claim"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{jwt.ErrTokenNotValidYet, "not valid yet"},
		{jwt.ErrTokenExpired, "expired, and of another type"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "invalid claims"
}

func invalid(reason string) error {
	return fmt.Errorf("auth: %w (%s)", ErrInvalidToken, reason)
}

func userID(cl *claims) (int64, error) {
	uid, err := strconv.ParseInt(cl.Subject, 10, 64)
	if err != nil || uid <= 0 {
		return 0, invalid("bad subject")
	}
	return uid, nil
}
