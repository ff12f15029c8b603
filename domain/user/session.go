package user

import (
	"errors"

	"github.com/techvault/techvault/domain"
)

// Session is one sign-in: a family of refresh tokens, each exchangeable once for the next
// generation. Presenting a generation that was already exchanged means the token was copied:
// the whole family ends.
type Session struct {
	family     string
	userID     int64
	epoch      int64
	generation int64
	ended      bool
	version    int64
	changes    []domain.Event
}

// StartSession opens a session for an account at its current session epoch.
func StartSession(family string, u *User, method string) (*Session, error) {
	if !u.Exists() {
		return nil, domain.NotFound("account not found")
	}
	s := &Session{}
	s.record(SessionStarted{UserID: u.ID(), Family: family, Method: method, Epoch: u.SessionEpoch()})
	return s, nil
}

// RehydrateSession rebuilds a session from its stream; nil when the stream is empty.
func RehydrateSession(history []domain.Event) *Session {
	if len(history) == 0 {
		return nil
	}
	s := &Session{}
	for _, e := range history {
		s.apply(e)
		s.version++
	}
	return s
}

// ErrSessionOver is why a refresh or sign-out is refused: the session has ended (now or before).
var ErrSessionOver = &domain.Error{Kind: domain.ErrUnauthenticated, Message: "the session has ended; sign in again"}

// Refresh exchanges the refresh token of generation for the next one. The account is loaded to
// check that its password did not change (nor the account close) since the session started.
//
// A generation already exchanged is a reused token: the session ends (recorded) and
// ErrSessionOver is returned; the caller appends the recorded end before answering.
func (s *Session) Refresh(generation int64, u *User) error {
	switch {
	case s == nil || s.ended:
		return ErrSessionOver
	case generation < s.generation:
		s.record(SessionEnded{UserID: s.userID, Reason: EndReused})
		return ErrSessionOver
	case generation > s.generation || u == nil || u.ID() != s.userID:
		return ErrSessionOver
	case !u.Exists() || u.SessionEpoch() != s.epoch:
		s.record(SessionEnded{UserID: s.userID, Reason: EndRevoked})
		return ErrSessionOver
	}
	s.record(SessionRefreshed{UserID: s.userID, Generation: s.generation + 1})
	return nil
}

// End signs the session out.
func (s *Session) End(userID int64) error {
	if s == nil || s.userID != userID {
		return domain.NotFound("session not found")
	}
	if !s.ended {
		s.record(SessionEnded{UserID: s.userID, Reason: EndSignedOut})
	}
	return nil
}

// IsOver reports whether err is ErrSessionOver.
func IsOver(err error) bool { return errors.Is(err, ErrSessionOver) }

// Accessors.
func (s *Session) Family() string          { return s.family }
func (s *Session) UserID() int64           { return s.userID }
func (s *Session) Generation() int64       { return s.generation }
func (s *Session) Version() int64          { return s.version }
func (s *Session) Changes() []domain.Event { return s.changes }

func (s *Session) record(e domain.Event) {
	s.apply(e)
	s.changes = append(s.changes, e)
}

func (s *Session) apply(e domain.Event) {
	switch e := e.(type) {
	case SessionStarted:
		s.family, s.userID, s.epoch, s.generation = e.Family, e.UserID, e.Epoch, 1
	case SessionRefreshed:
		s.generation = e.Generation
	case SessionEnded:
		s.ended = true
	}
}

// Reservation is who holds a unique value (an email address, a Google account): a stream per
// value, appended to in the same append as the account that takes or frees it, so two accounts
// can never hold one value.
type Reservation struct {
	holder  int64 // 0: free
	emailID int64
	version int64
	changes []domain.Event
}

// RehydrateReservation rebuilds a reservation from its stream (free when empty).
func RehydrateReservation(history []domain.Event) *Reservation {
	r := &Reservation{}
	for _, e := range history {
		r.apply(e)
		r.version++
	}
	return r
}

// Holder is the account holding the value (0 when free).
func (r *Reservation) Holder() int64 { return r.holder }

// Reserve takes an email address for an account.
func (r *Reservation) Reserve(userID, emailID int64) error {
	if r.holder != 0 {
		return domain.Conflict("this email is already registered")
	}
	r.record(EmailReserved{UserID: userID, EmailID: emailID})
	return nil
}

// Release frees an email address held by userID.
func (r *Reservation) Release(userID int64) {
	if r.holder == userID && userID != 0 {
		r.record(EmailReleased{UserID: userID, EmailID: r.emailID})
	}
}

// ReserveGoogle takes a Google account for an account.
func (r *Reservation) ReserveGoogle(userID int64) error {
	if r.holder != 0 && r.holder != userID {
		return domain.Conflict("this Google account is linked to another account")
	}
	if r.holder == 0 {
		r.record(GoogleReserved{UserID: userID})
	}
	return nil
}

// ReleaseGoogle frees a Google account held by userID.
func (r *Reservation) ReleaseGoogle(userID int64) {
	if r.holder == userID && userID != 0 {
		r.record(GoogleReleased{UserID: userID})
	}
}

// Version and Changes.
func (r *Reservation) Version() int64          { return r.version }
func (r *Reservation) Changes() []domain.Event { return r.changes }

func (r *Reservation) record(e domain.Event) {
	r.apply(e)
	r.changes = append(r.changes, e)
}

func (r *Reservation) apply(e domain.Event) {
	switch e := e.(type) {
	case EmailReserved:
		r.holder, r.emailID = e.UserID, e.EmailID
	case EmailReleased, GoogleReleased:
		r.holder, r.emailID = 0, 0
	case GoogleReserved:
		r.holder = e.UserID
	}
}

// Notification kinds, and the account events that raise them.
const (
	NotifyWelcome         = "welcome"
	NotifyEmailVerified   = "email_verified"
	NotifyPasswordChanged = "password_changed"
)

// Notification says whether an event of an account's stream raises a notification, and its
// kind and message (no personal data: messages are stored readable).
func Notification(e domain.Event) (kind, message string, ok bool) {
	switch e.(type) {
	case UserRegistered:
		return NotifyWelcome, "Welcome to Tech Vault! Your account is ready.", true
	case EmailVerified:
		return NotifyEmailVerified, "Your email address is verified.", true
	case PasswordChanged:
		return NotifyPasswordChanged, "Your password was changed. If this was not you, reset it now.", true
	}
	return "", "", false
}

// ReadMarksSnapshotSchemaVersion is the version of ReadMarksState in snapshots.
const ReadMarksSnapshotSchemaVersion = 1

// ReadMarksState is the read marks' state in a snapshot: their events decide nothing, so only
// whose they are.
type ReadMarksState struct {
	UserID int64 `json:"user_id"`
}

// ReadMarks are a user's notification read marks.
type ReadMarks struct {
	userID  int64
	version int64
	changes []domain.Event
}

// NewReadMarks returns the marks of a user who has read nothing yet.
func NewReadMarks(userID int64) *ReadMarks { return &ReadMarks{userID: userID} }

// RehydrateReadMarks rebuilds read marks from their stream; nil when it is empty.
func RehydrateReadMarks(history []domain.Event) *ReadMarks {
	if len(history) == 0 {
		return nil
	}
	m := &ReadMarks{version: int64(len(history))}
	switch e := history[0].(type) {
	case NotificationsRead:
		m.userID = e.UserID
	case AllNotificationsRead:
		m.userID = e.UserID
	}
	return m
}

// RehydrateReadMarksFrom rebuilds read marks from a snapshot at version and the events after it.
func RehydrateReadMarksFrom(state ReadMarksState, version int64, tail []domain.Event) (*ReadMarks, error) {
	if state.UserID <= 0 || version <= 0 {
		return nil, domain.Invalid("snapshot", "impossible read marks snapshot")
	}
	return &ReadMarks{userID: state.UserID, version: version + int64(len(tail))}, nil
}

// Snapshot returns the marks' state.
func (m *ReadMarks) Snapshot() ReadMarksState { return ReadMarksState{UserID: m.userID} }

// Read marks notifications read; ids must be notifications of this user (the caller checks
// them against the log).
func (m *ReadMarks) Read(ids []int64) {
	m.changes = append(m.changes, NotificationsRead{UserID: m.userID, IDs: ids})
}

// ReadAll marks every notification up to a log position read.
func (m *ReadMarks) ReadAll(upTo int64) {
	m.changes = append(m.changes, AllNotificationsRead{UserID: m.userID, UpTo: upTo})
}

// Version and Changes.
func (m *ReadMarks) Version() int64          { return m.version }
func (m *ReadMarks) Changes() []domain.Event { return m.changes }
