package http

import (
	nethttp "net/http"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
)

func (s *Server) googleRoutes(g *gin.RouterGroup) {
	g.GET("/auth/google", s.googleStart)
	g.GET("/auth/google/callback", s.googleCallback)
}

var errGoogleOff = &domain.Error{Kind: domain.ErrNotFound, Message: "sign-in with Google is not configured on this server"}

// googleStart redirects to Google's consent page (state and nonce in a signed cookie).
func (s *Server) googleStart(c *gin.Context) {
	if s.cfg.Google == nil {
		writeError(c, errGoogleOff)
		return
	}
	to, err := s.cfg.Google.Start(c, c.Writer)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Redirect(nethttp.StatusFound, to)
}

// googleCallback finishes the sign-in: the verified identity signs in to its account (linked,
// or created) and the answer is a session's tokens.
func (s *Server) googleCallback(c *gin.Context) {
	if s.cfg.Google == nil {
		writeError(c, errGoogleOff)
		return
	}
	if !s.limit(c, limitGoogle, "") {
		return
	}
	id, err := s.cfg.Google.Finish(c, c.Request, c.Writer)
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.Users.GoogleSignIn(c, metadata(c), commands.GoogleIdentity{Subject: id.Subject, Email: id.Email,
		EmailVerified: id.EmailVerified, GivenName: id.GivenName, FamilyName: id.FamilyName})
	if err != nil {
		writeError(c, err)
		return
	}
	s.session(c, res)
}
