package http

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/ratelimit"
)

// limitKind names the abuse limits of one route.
type limitKind int

const (
	limitLogin limitKind = iota
	// limitGoogle is Google's callback: it names no account, so only the client's address is
	// limited (a per-account rule keyed on no address would be one budget for every user).
	limitGoogle
	limitRegister
	limitReset
	limitResetConfirm
)

// errRateLimited is the 429 answer.
var errRateLimited = &domain.Error{Kind: errTooManyRequests, Message: "too many attempts; try again later"}

// limit applies the route's abuse limits (per client address, and per account where the request
// names one) and answers 429 with Retry-After when one is exhausted. It reports whether the
// request may go on. With Redis down, the rules' fallbacks decide (ratelimit.DefaultPolicy:
// a small per-process allowance, then refusal).
func (s *Server) limit(c *gin.Context, kind limitKind, email string) bool {
	l := s.cfg.Limiter
	if l == nil {
		return true
	}
	p := s.cfg.LimitPolicy
	type check struct {
		rule ratelimit.Rule
		key  string
	}
	ip := s.limitKey(clientSubject(c))
	var checks []check
	switch kind {
	case limitLogin:
		checks = []check{{p.SignInIP, ip}, {p.SignInAccount, s.accountKey(email)}}
	case limitGoogle:
		checks = []check{{p.SignInIP, ip}}
	case limitRegister:
		checks = []check{{p.RegisterIP, ip}}
	case limitReset:
		checks = []check{{p.ResetIP, ip}, {p.ResetAccount, s.accountKey(email)}}
	case limitResetConfirm:
		checks = []check{{p.ResetConfirmIP, ip}}
	}
	for _, ch := range checks {
		d, err := l.Allow(c, ch.rule, ch.key)
		if err != nil {
			writeError(c, err)
			return false
		}
		if !d.Allowed {
			c.Header("Retry-After", strconv.Itoa(d.RetryAfterSeconds()))
			writeError(c, errRateLimited)
			return false
		}
	}
	return true
}

// limitReset clears the per-account sign-in count after a successful sign-in.
func (s *Server) limitReset(c *gin.Context, kind limitKind, email string) {
	if s.cfg.Limiter == nil || kind != limitLogin {
		return
	}
	if err := s.cfg.Limiter.Reset(c, s.cfg.LimitPolicy.SignInAccount, s.accountKey(email)); err != nil {
		logger(c).WarnContext(c, "clearing the sign-in limit", "err", err)
	}
}

func (s *Server) limitKey(v string) string { return ratelimit.HashKey(s.cfg.LimitKey, v) }

// accountKey is the limit key of the account an email names (hashed: Redis holds no address).
func (s *Server) accountKey(email string) string {
	return s.limitKey("account:" + strings.ToLower(strings.TrimSpace(email)))
}

// clientSubject is what the client's address is limited as.
func clientSubject(c *gin.Context) string {
	addr, err := netip.ParseAddr(c.ClientIP())
	if err != nil {
		return "ip:" + c.ClientIP()
	}
	return "ip:" + ratelimit.IPSubject(addr)
}
