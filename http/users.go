package http

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/projections/userproj"
	"github.com/techvault/techvault/queries"
)

// Request and response bodies of accounts and sign-in. No response ever carries a password,
// a hash, or a token other than the ones a sign-in hands out.

type registerRequest struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Password  string `json:"password"`
	Phone     string `json:"phone"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenRequest struct {
	Token string `json:"token"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type resetRequest struct {
	Email string `json:"email"`
}

type resetConfirmRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

type updateMeRequest struct {
	FirstName       *string `json:"first_name"`
	LastName        *string `json:"last_name"`
	Password        *string `json:"password"`
	CurrentPassword string  `json:"current_password"`
}

type emailRequest struct {
	Email string `json:"email"`
}

type phoneRequest struct {
	Phone string `json:"phone"`
}

type addressRequest struct {
	City     string `json:"city"`
	PostCode string `json:"post_code"`
	Country  string `json:"country"`
}

// accountResponse answers an account command: what it created or changed, and where its last
// event landed.
type accountResponse struct {
	ID       int64  `json:"id,omitempty"`
	UserID   int64  `json:"user_id"`
	Role     string `json:"role,omitempty"`
	Position int64  `json:"position"`
}

type sessionResponse struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresIn        int64     `json:"expires_in"`
	ExpiresAt        time.Time `json:"expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	User             struct {
		ID      int64  `json:"id"`
		Role    string `json:"role"`
		Created bool   `json:"created,omitempty"`
	} `json:"user"`
	Position int64 `json:"position"`
}

type acceptedResponse struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type userResponse struct {
	ID            int64             `json:"id"`
	FirstName     string            `json:"first_name"`
	LastName      string            `json:"last_name"`
	Role          string            `json:"role"`
	EmailVerified bool              `json:"email_verified"`
	Emails        []emailResponse   `json:"emails"`
	Phones        []phoneResponse   `json:"phones"`
	Addresses     []addressResponse `json:"addresses"`
	ImageURL      *string           `json:"image_url"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

type emailResponse struct {
	ID       int64  `json:"id"`
	Email    string `json:"email"`
	Primary  bool   `json:"is_primary"`
	Verified bool   `json:"verified"`
}

type phoneResponse struct {
	ID      int64  `json:"id"`
	Number  string `json:"phone"`
	Primary bool   `json:"is_primary"`
}

type addressResponse struct {
	ID        int64     `json:"id"`
	City      string    `json:"city"`
	PostCode  string    `json:"post_code"`
	Country   string    `json:"country"`
	Primary   bool      `json:"is_primary"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type userSummaryResponse struct {
	ID            int64     `json:"id"`
	FirstName     string    `json:"first_name"`
	LastName      string    `json:"last_name"`
	Email         string    `json:"email"`
	Role          string    `json:"role"`
	EmailVerified bool      `json:"email_verified"`
	CreatedAt     time.Time `json:"created_at"`
}

type notificationResponse struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Message   string    `json:"message"`
	Read      bool      `json:"read"`
	CreatedAt time.Time `json:"created_at"`
}

func toAccountResponse(r commands.AccountResult) accountResponse {
	return accountResponse{ID: r.ID, UserID: r.UserID, Role: string(r.Role), Position: r.Position}
}

func toUserResponse(u queries.UserView) userResponse {
	out := userResponse{ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, Role: u.Role,
		EmailVerified: u.EmailVerified, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		Emails: []emailResponse{}, Phones: []phoneResponse{}, Addresses: []addressResponse{}}
	for _, e := range u.Emails {
		out.Emails = append(out.Emails, emailResponse{ID: e.ID, Email: e.Email, Primary: e.Primary, Verified: e.Verified})
	}
	for _, p := range u.Phones {
		out.Phones = append(out.Phones, phoneResponse{ID: p.ID, Number: p.Number, Primary: p.Primary})
	}
	out.Addresses = toAddressResponses(u.Addresses)
	if u.Image != nil {
		url := u.Image.URL
		out.ImageURL = &url
	}
	return out
}

func toAddressResponses(as []queries.AddressView) []addressResponse {
	out := make([]addressResponse, 0, len(as))
	for _, a := range as {
		out = append(out, addressResponse{ID: a.ID, City: a.City, PostCode: a.PostCode, Country: a.Country,
			Primary: a.Primary, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt})
	}
	return out
}

// session turns a started or refreshed session into its tokens.
func (s *Server) session(c *gin.Context, r commands.SessionResult) {
	access, exp, err := s.cfg.Tokens.IssueAccess(auth.AccessClaims{UserID: r.UserID, Role: string(r.Role), Session: r.Family})
	if err != nil {
		writeError(c, fmt.Errorf("issuing an access token: %w", err))
		return
	}
	refresh, rexp, err := s.cfg.Tokens.IssueRefresh(auth.RefreshClaims{UserID: r.UserID, Family: r.Family, Generation: r.Generation})
	if err != nil {
		writeError(c, fmt.Errorf("issuing a refresh token: %w", err))
		return
	}
	c.Header("Cache-Control", "no-store")
	var out sessionResponse
	out.AccessToken, out.TokenType, out.ExpiresAt = access, "Bearer", exp.UTC()
	out.ExpiresIn = int64(time.Until(exp).Round(time.Second) / time.Second)
	out.RefreshToken, out.RefreshExpiresAt = refresh, rexp.UTC()
	out.User.ID, out.User.Role, out.User.Created = r.UserID, string(r.Role), r.Created
	out.Position = r.Position
	c.JSON(nethttp.StatusOK, out)
}

// me is the signed-in caller (signedIn has run).
func me(c *gin.Context) principal {
	p, _ := caller(c)
	return p
}

// Sign-in.

func (s *Server) register(c *gin.Context) {
	var req registerRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if !s.limit(c, limitRegister, req.Email) {
		return
	}
	res, err := s.cfg.Users.Register(c, metadata(c), commands.Register{FirstName: req.FirstName, LastName: req.LastName,
		Email: req.Email, Password: req.Password, Phone: req.Phone})
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Location", "/api/v1/users/me")
	c.JSON(nethttp.StatusCreated, accountResponse{UserID: res.UserID, Role: string(res.Role), Position: res.Position})
}

func (s *Server) verifyEmail(c *gin.Context) {
	var req tokenRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	claims, err := s.cfg.Tokens.ParseAction(auth.PurposeVerifyEmail, req.Token)
	if err != nil {
		writeError(c, linkError(err, "verification"))
		return
	}
	var emailID int64
	if _, err := fmt.Sscan(claims.Ref, &emailID); err != nil || emailID <= 0 {
		writeError(c, linkError(err, "verification"))
		return
	}
	md := metadata(c)
	md.ActorID = fmt.Sprint(claims.UserID) // the link's owner acts
	res, err := s.cfg.Users.VerifyEmail(c, md, commands.VerifyEmail{UserID: claims.UserID, EmailID: emailID})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toAccountResponse(res))
}

// linkError is the client's error for a bad link token: an expired one says so.
func linkError(err error, what string) error {
	if err != nil && isExpired(err) {
		return domain.Invalid("token", "this %s link has expired; ask for a new one", what)
	}
	return domain.Invalid("token", "this %s link is not valid", what)
}

func (s *Server) login(c *gin.Context) {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if !s.limit(c, limitLogin, req.Email) {
		return
	}
	res, err := s.cfg.Users.Login(c, metadata(c), commands.Login{Email: req.Email, Password: req.Password})
	if err != nil {
		writeError(c, err)
		return
	}
	s.limitReset(c, limitLogin, req.Email)
	s.session(c, res)
}

func (s *Server) refresh(c *gin.Context) {
	var req refreshRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	claims, err := s.cfg.Tokens.ParseRefresh(req.RefreshToken)
	if err != nil {
		writeError(c, err)
		return
	}
	md := metadata(c)
	md.ActorID = fmt.Sprint(claims.UserID)
	res, err := s.cfg.Users.Refresh(c, md, commands.Refresh{UserID: claims.UserID, Family: claims.Family, Generation: claims.Generation})
	if err != nil {
		writeError(c, err)
		return
	}
	s.session(c, res)
}

func (s *Server) logout(c *gin.Context) {
	p := me(c)
	res, err := s.cfg.Users.Logout(c, metadata(c), commands.Logout{UserID: p.UserID, Family: p.Session})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, accountResponse{UserID: res.UserID, Position: res.Position})
}

// resetAccepted is the one answer to a reset request, whether or not an account has the address.
var resetAccepted = acceptedResponse{Status: "accepted",
	Message: "if an account has this email, a reset link is on its way"}

func (s *Server) requestPasswordReset(c *gin.Context) {
	var req resetRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if !s.limit(c, limitReset, req.Email) {
		return
	}
	if err := s.cfg.Users.RequestPasswordReset(c, metadata(c), commands.RequestPasswordReset{Email: req.Email}); err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusAccepted, resetAccepted)
}

func (s *Server) confirmPasswordReset(c *gin.Context) {
	var req resetConfirmRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if !s.limit(c, limitResetConfirm, "") {
		return
	}
	claims, err := s.cfg.Tokens.ParseAction(auth.PurposePasswordReset, req.Token)
	if err != nil {
		writeError(c, linkError(err, "reset"))
		return
	}
	md := metadata(c)
	md.ActorID = fmt.Sprint(claims.UserID) // the link's owner acts
	res, err := s.cfg.Users.ResetPassword(c, md, commands.ResetPassword{UserID: claims.UserID,
		RequestID: claims.Ref, Password: req.Password})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, accountResponse{UserID: res.UserID, Position: res.Position})
}

// The caller's account.

func (s *Server) getMe(c *gin.Context) {
	if _, err := s.awaitPosition(c, userproj.UsersProjector); err != nil {
		writeError(c, err)
		return
	}
	read := s.cfg.UserQueries.User
	if s.cfg.Profiles != nil && c.GetHeader(MinPositionHeader) == "" {
		read = s.cfg.Profiles.User
	}
	u, err := read(c, me(c).UserID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toUserResponse(u))
}

func (s *Server) updateMe(c *gin.Context) {
	var req updateMeRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.Users.UpdateProfile(c, metadata(c), commands.UpdateProfile{UserID: me(c).UserID,
		FirstName: req.FirstName, LastName: req.LastName, Password: req.Password, CurrentPassword: req.CurrentPassword})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toAccountResponse(res))
}

func (s *Server) deleteMe(c *gin.Context) {
	res, err := s.cfg.Users.Erase(c, metadata(c), me(c).UserID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, accountResponse{UserID: res.UserID, Position: res.Position})
}

// accountCommand is a handler running one account command on the caller and a path id.
func accountCommand(status int, run func(c *gin.Context, md domain.Metadata, userID, id int64) (commands.AccountResult, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		var id int64
		if c.Param("id") != "" {
			var err error
			if id, err = pathID(c, "id"); err != nil {
				writeError(c, err)
				return
			}
		}
		res, err := run(c, metadata(c), me(c).UserID, id)
		if err != nil {
			writeError(c, err)
			return
		}
		c.JSON(status, toAccountResponse(res))
	}
}

// byID adapts an account command on the caller and a path id to accountCommand.
func byID(f func(context.Context, domain.Metadata, int64, int64) (commands.AccountResult, error)) func(*gin.Context, domain.Metadata, int64, int64) (commands.AccountResult, error) {
	return func(c *gin.Context, md domain.Metadata, userID, id int64) (commands.AccountResult, error) {
		return f(c, md, userID, id)
	}
}

func (s *Server) addEmail(c *gin.Context, md domain.Metadata, userID, _ int64) (commands.AccountResult, error) {
	var req emailRequest
	if err := decodeJSON(c, &req); err != nil {
		return commands.AccountResult{}, err
	}
	return s.cfg.Users.AddEmail(c, md, commands.AddEmail{UserID: userID, Email: req.Email})
}

func (s *Server) addPhone(c *gin.Context, md domain.Metadata, userID, _ int64) (commands.AccountResult, error) {
	var req phoneRequest
	if err := decodeJSON(c, &req); err != nil {
		return commands.AccountResult{}, err
	}
	return s.cfg.Users.AddPhone(c, md, commands.AddPhone{UserID: userID, Phone: req.Phone})
}

func (s *Server) saveAddress(c *gin.Context, md domain.Metadata, userID, id int64) (commands.AccountResult, error) {
	var req addressRequest
	if err := decodeJSON(c, &req); err != nil {
		return commands.AccountResult{}, err
	}
	cmd := commands.SaveAddress{UserID: userID, AddressID: id}
	cmd.City, cmd.PostCode, cmd.Country = req.City, req.PostCode, req.Country
	return s.cfg.Users.SaveAddress(c, md, cmd)
}

func (s *Server) listAddresses(c *gin.Context) {
	if _, err := s.awaitPosition(c, userproj.UsersProjector); err != nil {
		writeError(c, err)
		return
	}
	as, err := s.cfg.UserQueries.Addresses(c, me(c).UserID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, gin.H{"items": toAddressResponses(as)})
}

// maxUserSearchLength bounds the users' q: the longest email address.
const maxUserSearchLength = 254

func (s *Server) listUsers(c *gin.Context) {
	limit, err := queryLimit(c)
	if err != nil {
		writeError(c, err)
		return
	}
	q, err := searchText(c, maxUserSearchLength)
	if err != nil {
		writeError(c, err)
		return
	}
	if _, err := s.awaitPosition(c, userproj.UsersProjector); err != nil {
		writeError(c, err)
		return
	}
	page, err := s.cfg.UserQueries.Users(c, queries.UserFilter{Q: q, Limit: limit, Cursor: c.Query("cursor")})
	if err != nil {
		writeError(c, err)
		return
	}
	items := make([]userSummaryResponse, 0, len(page.Items))
	for _, u := range page.Items {
		items = append(items, userSummaryResponse{ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
			Role: u.Role, EmailVerified: u.EmailVerified, CreatedAt: u.CreatedAt})
	}
	c.JSON(nethttp.StatusOK, pageView[userSummaryResponse]{Items: items, NextCursor: page.NextCursor})
}

// Notifications.

func (s *Server) listNotifications(c *gin.Context) {
	limit, err := queryLimit(c)
	if err != nil {
		writeError(c, err)
		return
	}
	if _, err := s.awaitPosition(c, userproj.NotificationsProjector); err != nil {
		writeError(c, err)
		return
	}
	page, err := s.cfg.UserQueries.Notifications(c, me(c).UserID, limit, c.Query("cursor"))
	if err != nil {
		writeError(c, err)
		return
	}
	items := make([]notificationResponse, 0, len(page.Items))
	for _, n := range page.Items {
		items = append(items, notificationResponse{ID: n.ID, Kind: n.Kind, Message: n.Message, Read: n.Read, CreatedAt: n.CreatedAt})
	}
	c.JSON(nethttp.StatusOK, pageView[notificationResponse]{Items: items, NextCursor: page.NextCursor})
}

func (s *Server) readNotification(c *gin.Context, md domain.Metadata, userID, id int64) (commands.AccountResult, error) {
	return s.cfg.Users.MarkNotificationsRead(c, md, commands.MarkNotificationsRead{UserID: userID, IDs: []int64{id}})
}

func (s *Server) readAllNotifications(c *gin.Context, md domain.Metadata, userID, _ int64) (commands.AccountResult, error) {
	return s.cfg.Users.MarkAllNotificationsRead(c, md, userID)
}

func isExpired(err error) bool { return errors.Is(err, auth.ErrExpiredToken) }
