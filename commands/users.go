package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/pii"
)

// Vault keeps the per-user keys that seal personal data in events (package pii).
type Vault interface {
	// CreateKey makes a new user's key and returns their box.
	CreateKey(ctx context.Context, userID int64) (pii.Box, error)
	// Box returns a user's key; pii.ErrErased when the account was erased.
	Box(ctx context.Context, userID int64) (pii.Box, error)
	// Shred destroys a user's key.
	Shred(ctx context.Context, userID int64) error
	// Lookup is the keyed digest of a normalised value (an email address, a Google subject).
	Lookup(normalised string) string
}

// Passwords hashes and checks passwords (package auth).
type Passwords interface {
	Hash(ctx context.Context, pw string) (string, error)
	// Check reports whether pw matches hash; a malformed hash is an error.
	Check(ctx context.Context, pw, hash string) (bool, error)
	// CheckUnknown takes as long as Check, for an account that does not exist (always false).
	CheckUnknown(ctx context.Context, pw string) (bool, error)
}

// LogReader reads single events of the log (a notification's id is the position of its event).
type LogReader interface {
	EventAt(ctx context.Context, position int64) (eventstore.Event, bool, error)
	Head(ctx context.Context) (int64, error)
}

// Id kinds of the accounts.
const (
	UserIDs    = "user"
	EmailIDs   = "email"
	PhoneIDs   = "phone"
	AddressIDs = "address"
)

// Users handles the customers' commands: accounts, sign-in sessions, profiles, notifications.
type Users struct {
	store EventStore
	ids   IDAllocator
	load  loader
	vault Vault
	pw    Passwords
	log   LogReader
}

// NewUsers returns the account command handlers.
func NewUsers(store EventStore, log LogReader, ids IDAllocator, vault Vault, pw Passwords, opts ...Option) *Users {
	rs := resilientStore{store}
	l := newLoader(rs, resilientSnapshots(store), opts)
	return &Users{store: l.observe(rs), ids: resilientIDs{ids}, load: l, vault: vault, pw: pw, log: log}
}

var userKind = aggregateKind[*user.User, user.State]{
	name: "user", streamID: user.StreamID, streamType: user.StreamType,
	schemaVersion: user.SnapshotSchemaVersion, decode: user.Decode,
	rehydrate: user.Rehydrate, rehydrateFrom: user.RehydrateFrom,
	snapshot: (*user.User).Snapshot, stateID: func(s user.State) int64 { return s.ID },
}

// AccountResult is what an account command did. It holds no personal data: results are stored
// with Idempotency-Keys, and the person may be erased later.
type AccountResult struct {
	UserID int64
	Role   user.Role
	// ID is the id of what the command created (an email, phone or address), if anything.
	ID       int64
	Position int64
}

func withAccountPosition(r AccountResult, pos int64) AccountResult { r.Position = pos; return r }

// SessionResult is a signed-in session: the HTTP layer turns it into tokens.
type SessionResult struct {
	UserID     int64
	Role       user.Role
	Family     string
	Generation int64
	// Created is true when a Google sign-in opened a new account.
	Created  bool
	Position int64
}

func withSessionPosition(r SessionResult, pos int64) SessionResult { r.Position = pos; return r }

func userChange(u *user.User) Change {
	return Change{StreamID: user.StreamID(u.ID()), StreamType: user.StreamType, ExpectedVersion: u.Version(),
		Events: u.Changes()}
}

func (h *Users) loadUser(ctx context.Context, id int64) (*user.User, error) {
	return loadAggregate(ctx, h.load, userKind, id)
}

// ensureAccount refuses a command on behalf of an account that does not exist: never opened, or
// erased (an access token outlives its account by the token's lifetime at most), so that no
// cart, wishlist or review of nobody is written. The account is read, not appended to (see
// RecentReads).
func ensureAccount(ctx context.Context, l loader, userID int64) error {
	u, err := loadRecent(ctx, l, userKind, userID)
	if err != nil {
		return err
	}
	if !u.Exists() {
		return accountGone()
	}
	return nil
}

// accountGone refuses a command on behalf of an account that does not exist.
func accountGone() error {
	return &domain.Error{Kind: domain.ErrUnauthenticated, Message: "the account this access token was issued for does not exist (it was erased)"}
}

// loadAccount loads an open account; a missing or erased one is not found.
func (h *Users) loadAccount(ctx context.Context, id int64) (*user.User, error) {
	u, err := h.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if !u.Exists() {
		return nil, domain.NotFound("account not found")
	}
	return u, nil
}

// reservation is a loaded reservation stream.
type reservation struct {
	streamID, streamType string
	*user.Reservation
}

func (h *Users) loadReservation(ctx context.Context, streamID, streamType string) (reservation, error) {
	history, err := loadEvents(ctx, h.store, streamID, user.Decode)
	if err != nil {
		return reservation{}, err
	}
	return reservation{streamID: streamID, streamType: streamType, Reservation: user.RehydrateReservation(history)}, nil
}

func (r reservation) change() Change {
	return Change{StreamID: r.streamID, StreamType: r.streamType, ExpectedVersion: r.Version(), Events: r.Changes()}
}

func (h *Users) emailReservation(ctx context.Context, lookup string) (reservation, error) {
	return h.loadReservation(ctx, user.EmailStreamID(lookup), user.EmailStreamType)
}

// sealAll seals values with one box, in order.
func sealAll(box pii.Box, values ...string) ([]user.Sealed, error) {
	out := make([]user.Sealed, len(values))
	for i, v := range values {
		s, err := box.Seal(v)
		if err != nil {
			return nil, fmt.Errorf("sealing personal data: %w", err)
		}
		out[i] = user.Sealed(s)
	}
	return out, nil
}

// box returns an account's key box; an erased account is not found.
func (h *Users) box(ctx context.Context, userID int64) (pii.Box, error) {
	b, err := h.vault.Box(ctx, userID)
	if errors.Is(err, pii.ErrErased) {
		return pii.Box{}, domain.NotFound("account not found")
	}
	return b, err
}

// Register is the command to open an account with a password.
type Register struct {
	FirstName, LastName, Email, Password string
	// Phone is optional.
	Phone string
}

// Register opens an account. The email is reserved in the same append as the account, so of
// any number of concurrent registrations of one address exactly one succeeds; the others get
// a conflict.
func (h *Users) Register(ctx context.Context, md domain.Metadata, cmd Register) (AccountResult, error) {
	first, last, err := user.Names(cmd.FirstName, cmd.LastName)
	if err != nil {
		return AccountResult{}, err
	}
	email, err := user.NormaliseEmail(cmd.Email)
	if err != nil {
		return AccountResult{}, err
	}
	if err := user.CheckPassword(cmd.Password, email); err != nil {
		return AccountResult{}, err
	}
	var phone string
	if cmd.Phone != "" {
		if phone, err = user.NormalisePhone(cmd.Phone); err != nil {
			return AccountResult{}, err
		}
	}
	lookup := h.vault.Lookup(email)
	// Refuse a taken address before paying for a hash; the append decides in the end.
	if res, err := h.emailReservation(ctx, lookup); err != nil {
		return AccountResult{}, err
	} else if res.Holder() != 0 {
		return AccountResult{}, domain.Conflict("this email is already registered")
	}
	hash, err := h.pw.Hash(ctx, cmd.Password)
	if err != nil {
		return AccountResult{}, fmt.Errorf("hashing the password: %w", err)
	}
	userID, err := h.ids.NextID(ctx, UserIDs)
	if err != nil {
		return AccountResult{}, err
	}
	emailID, err := h.ids.NextID(ctx, EmailIDs)
	if err != nil {
		return AccountResult{}, err
	}
	var phoneID int64
	if phone != "" {
		if phoneID, err = h.ids.NextID(ctx, PhoneIDs); err != nil {
			return AccountResult{}, err
		}
	}
	box, err := h.vault.CreateKey(ctx, userID)
	if err != nil {
		return AccountResult{}, err
	}
	sealed, err := sealAll(box, first, last, hash, email, phone)
	if err != nil {
		return AccountResult{}, err
	}
	// The new account is its own actor.
	md.ActorID = strconv.FormatInt(userID, 10)
	res, err := execute(ctx, h.store, md, "Register", redecideOnConflict, withAccountPosition,
		func(ctx context.Context) (AccountResult, []Change, error) {
			u, err := user.Register(user.RegisterInput{ID: userID, FirstName: sealed[0], LastName: sealed[1],
				PasswordHash: sealed[2], Method: user.MethodPassword, EmailID: emailID, Email: sealed[3], EmailLookup: lookup})
			if err != nil {
				return AccountResult{}, nil, err
			}
			if phone != "" {
				if err := u.AddPhone(phoneID, sealed[4]); err != nil {
					return AccountResult{}, nil, err
				}
			}
			r, err := h.emailReservation(ctx, lookup)
			if err != nil {
				return AccountResult{}, nil, err
			}
			if err := r.Reserve(userID, emailID); err != nil {
				return AccountResult{}, nil, err
			}
			return AccountResult{UserID: userID, Role: user.Customer, ID: emailID}, []Change{userChange(u), r.change()}, nil
		})
	if err != nil {
		// The account was not opened: its key protects nothing.
		if serr := h.vault.Shred(context.WithoutCancel(ctx), userID); serr != nil {
			err = errors.Join(err, serr)
		}
		return AccountResult{}, err
	}
	return res, nil
}

// VerifyEmail is the command a verification link carries.
type VerifyEmail struct {
	UserID, EmailID int64
}

// VerifyEmail marks the link's address verified; a used link is refused.
func (h *Users) VerifyEmail(ctx context.Context, md domain.Metadata, cmd VerifyEmail) (AccountResult, error) {
	return h.onAccount(ctx, md, "VerifyEmail", cmd.UserID, func(u *user.User) (int64, error) {
		return cmd.EmailID, u.VerifyEmail(cmd.EmailID)
	})
}

// onAccount runs a command that changes one account only, re-deciding on a version clash.
func (h *Users) onAccount(ctx context.Context, md domain.Metadata, name string, userID int64,
	decide func(u *user.User) (int64, error),
) (AccountResult, error) {
	return execute(ctx, h.store, md, name, redecideOnConflict, withAccountPosition,
		func(ctx context.Context) (AccountResult, []Change, error) {
			u, err := h.loadAccount(ctx, userID)
			if err != nil {
				return AccountResult{}, nil, err
			}
			id, err := decide(u)
			if err != nil {
				return AccountResult{}, nil, err
			}
			return AccountResult{UserID: u.ID(), Role: u.Role(), ID: id}, []Change{userChange(u)}, nil
		})
}

// errBadCredentials is the one answer to a failed sign-in, whatever failed.
var errBadCredentials = &domain.Error{Kind: domain.ErrUnauthenticated, Message: "email or password is incorrect"}

// Login is the command to sign in with a password.
type Login struct {
	Email, Password string
}

// Login checks the password and starts a session. An unknown address, an erased account, an
// account without a password and a wrong password all answer alike, in about the same time
// (an unknown account still pays for one hash).
func (h *Users) Login(ctx context.Context, md domain.Metadata, cmd Login) (SessionResult, error) {
	email, err := user.NormaliseEmail(cmd.Email)
	if err != nil || cmd.Password == "" || len(cmd.Password) > 4*user.MaxPasswordLen {
		_, _ = h.pw.CheckUnknown(ctx, cmd.Password)
		return SessionResult{}, errBadCredentials
	}
	r, err := h.emailReservation(ctx, h.vault.Lookup(email))
	if err != nil {
		return SessionResult{}, err
	}
	var u *user.User
	if r.Holder() != 0 {
		if u, err = h.loadUser(ctx, r.Holder()); err != nil {
			return SessionResult{}, err
		}
	}
	if !u.Exists() || u.PasswordHash() == "" {
		_, _ = h.pw.CheckUnknown(ctx, cmd.Password)
		return SessionResult{}, errBadCredentials
	}
	box, err := h.vault.Box(ctx, u.ID())
	if errors.Is(err, pii.ErrErased) {
		_, _ = h.pw.CheckUnknown(ctx, cmd.Password)
		return SessionResult{}, errBadCredentials
	}
	if err != nil {
		return SessionResult{}, err
	}
	hash, err := box.Open(string(u.PasswordHash()))
	if err != nil {
		return SessionResult{}, fmt.Errorf("opening the password hash of user %d: %w", u.ID(), err)
	}
	ok, err := h.pw.Check(ctx, cmd.Password, hash)
	if err != nil {
		return SessionResult{}, fmt.Errorf("checking the password of user %d: %w", u.ID(), err)
	}
	if !ok {
		return SessionResult{}, errBadCredentials
	}
	return h.startSession(ctx, md, u, user.MethodPassword, false)
}

// startSession opens a new session (its own new stream) for a loaded account.
func (h *Users) startSession(ctx context.Context, md domain.Metadata, u *user.User, method string, created bool) (SessionResult, error) {
	family := uuid.Must(uuid.NewV7()).String()
	s, err := user.StartSession(family, u, method)
	if err != nil {
		return SessionResult{}, err
	}
	// A sign-in is its own actor from here on.
	md.ActorID = fmt.Sprint(u.ID())
	return execute(ctx, h.store, md, "StartSession", once, withSessionPosition,
		func(context.Context) (SessionResult, []Change, error) {
			return SessionResult{UserID: u.ID(), Role: u.Role(), Family: family, Generation: s.Generation(), Created: created},
				[]Change{sessionChange(s)}, nil
		})
}

func sessionChange(s *user.Session) Change {
	return Change{StreamID: user.SessionStreamID(s.Family()), StreamType: user.SessionStreamType,
		ExpectedVersion: s.Version(), Events: s.Changes()}
}

func (h *Users) loadSession(ctx context.Context, family string) (*user.Session, error) {
	if _, err := uuid.Parse(family); err != nil {
		return nil, user.ErrSessionOver
	}
	history, err := loadEvents(ctx, h.store, user.SessionStreamID(family), user.Decode)
	if err != nil {
		return nil, err
	}
	return user.RehydrateSession(history), nil
}

// Refresh is the command a refresh token carries.
type Refresh struct {
	UserID     int64
	Family     string
	Generation int64
}

// Refresh exchanges a refresh token for the next generation of its session. A generation that
// was exchanged before ends the session (recorded in the log) and is refused, as is any token
// of a session that ended or of an account whose password changed since it began.
func (h *Users) Refresh(ctx context.Context, md domain.Metadata, cmd Refresh) (SessionResult, error) {
	var over bool
	res, err := execute(ctx, h.store, md, "Refresh", redecideOnConflict, withSessionPosition,
		func(ctx context.Context) (SessionResult, []Change, error) {
			over = false
			s, err := h.loadSession(ctx, cmd.Family)
			if err != nil {
				return SessionResult{}, nil, err
			}
			if s == nil || s.UserID() != cmd.UserID {
				return SessionResult{}, nil, user.ErrSessionOver
			}
			u, err := h.loadUser(ctx, s.UserID())
			if err != nil {
				return SessionResult{}, nil, err
			}
			if err := s.Refresh(cmd.Generation, u); err != nil {
				if !user.IsOver(err) || len(s.Changes()) == 0 {
					return SessionResult{}, nil, err
				}
				// The end of the session is recorded, then the token refused.
				over = true
				return SessionResult{UserID: s.UserID()}, []Change{sessionChange(s)}, nil
			}
			return SessionResult{UserID: u.ID(), Role: u.Role(), Family: s.Family(), Generation: s.Generation()},
				[]Change{sessionChange(s)}, nil
		})
	if err != nil {
		return SessionResult{}, err
	}
	if over {
		return SessionResult{}, user.ErrSessionOver
	}
	return res, nil
}

// Logout is the command to end the caller's session.
type Logout struct {
	UserID int64
	Family string
}

// Logout ends the session: none of its refresh tokens works again.
func (h *Users) Logout(ctx context.Context, md domain.Metadata, cmd Logout) (SessionResult, error) {
	return execute(ctx, h.store, md, "Logout", redecideOnConflict, withSessionPosition,
		func(ctx context.Context) (SessionResult, []Change, error) {
			s, err := h.loadSession(ctx, cmd.Family)
			if err != nil {
				return SessionResult{}, nil, err
			}
			if err := s.End(cmd.UserID); err != nil {
				return SessionResult{}, nil, err
			}
			return SessionResult{UserID: cmd.UserID, Family: cmd.Family}, []Change{sessionChange(s)}, nil
		})
}
