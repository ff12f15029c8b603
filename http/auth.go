package http

import (
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/maypok86/otter/v2"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/domain"
)

// principal is who a request acts as, from its access token.
type principal struct {
	UserID  int64
	Role    string
	Session string
}

const principalKey = "techvault.principal"

// Role names (domain/user's, as strings for the transport).
const (
	roleCustomer = "customer"
	roleAdmin    = "admin"
	roleAuditor  = "auditor"
)

// verifiedTokens remembers access tokens whose signature was verified, until they expire: an
// access token is valid by its signature and expiry alone (nothing revokes it early), so a
// client's next requests skip the Ed25519 verification, the dearest part of a cached read.
type verifiedTokens struct {
	cache *otter.Cache[string, auth.AccessClaims]
}

func newVerifiedTokens() verifiedTokens {
	return verifiedTokens{cache: otter.Must(&otter.Options[string, auth.AccessClaims]{
		MaximumSize: 100_000,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, auth.AccessClaims]) time.Duration {
			return time.Until(e.Value.ExpiresAt)
		}),
	})}
}

func (v verifiedTokens) parse(tokens *auth.Tokens, raw string) (auth.AccessClaims, error) {
	if cl, ok := v.cache.GetIfPresent(raw); ok && time.Now().Before(cl.ExpiresAt) {
		return cl, nil
	}
	cl, err := tokens.ParseAccess(raw)
	if err == nil {
		v.cache.Set(raw, cl)
	}
	return cl, err
}

// authenticate reads the access token of a request that carries one. A request without an
// Authorization header goes on anonymous; one with a bad or expired token is refused at once
// (401), whatever the route, so a client learns its token is no good.
func authenticate(tokens *auth.Tokens) gin.HandlerFunc {
	verified := newVerifiedTokens()
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		if h == "" {
			c.Next()
			return
		}
		raw, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || raw == "" {
			c.Header("WWW-Authenticate", `Bearer realm="techvault", error="invalid_request"`)
			writeError(c, &domain.Error{Kind: domain.ErrUnauthenticated, Message: "Authorization must be \"Bearer <access token>\""})
			return
		}
		claims, err := verified.parse(tokens, raw)
		if err != nil {
			c.Header("WWW-Authenticate", `Bearer realm="techvault", error="invalid_token"`)
			logger(c).DebugContext(c, "access token refused", "reason", err.Error())
			writeError(c, err)
			return
		}
		c.Set(principalKey, principal{UserID: claims.UserID, Role: claims.Role, Session: claims.Session})
		c.Set(actorKey, strconv.FormatInt(claims.UserID, 10))
		c.Next()
	}
}

// caller is the request's principal; ok is false for an anonymous request.
func caller(c *gin.Context) (principal, bool) {
	p, ok := c.Get(principalKey)
	if !ok {
		return principal{}, false
	}
	pp, ok := p.(principal)
	return pp, ok
}

// signedIn admits requests with a valid access token.
func signedIn(c *gin.Context) {
	if _, ok := caller(c); !ok {
		c.Header("WWW-Authenticate", `Bearer realm="techvault"`)
		writeError(c, &domain.Error{Kind: domain.ErrUnauthenticated, Message: "sign in first: this route needs an access token"})
		return
	}
	c.Next()
}

// roles admits signed-in requests of one of the roles (401 anonymous, 403 another role).
func roles(allowed ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := caller(c)
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="techvault"`)
			writeError(c, &domain.Error{Kind: domain.ErrUnauthenticated, Message: "sign in first: this route needs an access token"})
			return
		}
		for _, r := range allowed {
			if p.Role == r {
				c.Next()
				return
			}
		}
		writeError(c, &domain.Error{Kind: domain.ErrForbidden, Message: "your role may not use this route"})
	}
}
