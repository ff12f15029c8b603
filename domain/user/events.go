// Package user is the customers' domain: accounts, their emails, phones, addresses and image,
// roles, sign-in sessions and notification read marks, with their events and rules.
//
// Personal data never enters an event readable: names, addresses, phone numbers, email
// addresses, image URLs and password hashes arrive here already sealed with the user's own key
// (type Sealed; the commands seal them, package pii holds the keys), and the domain compares
// them only through keyed lookups. Erasing the account destroys the key (crypto-shredding).
package user

import (
	"fmt"

	"github.com/techvault/techvault/domain"
)

// Stream types of the customers' aggregates.
const (
	// StreamType is one account: profile, emails, phones, addresses, image, role, password.
	StreamType = "user"
	// EmailStreamType reserves one email address (by its keyed lookup) for one account.
	EmailStreamType = "email_reservation"
	// GoogleStreamType reserves one Google account (by its subject's keyed lookup) for one account.
	GoogleStreamType = "google_identity"
	// SessionStreamType is one sign-in session: a family of rotating refresh tokens.
	SessionStreamType = "session"
	// NotificationsStreamType records which of a user's notifications they have read.
	NotificationsStreamType = "user_notifications"
)

// StreamID is the event stream of one account.
func StreamID(id int64) string { return fmt.Sprintf("user-%d", id) }

// EmailStreamID is the reservation stream of the address whose keyed lookup is lookup.
func EmailStreamID(lookup string) string { return "email-" + lookup }

// GoogleStreamID is the reservation stream of the Google subject whose keyed lookup is lookup.
func GoogleStreamID(lookup string) string { return "google-" + lookup }

// SessionStreamID is the stream of one session (refresh-token family).
func SessionStreamID(family string) string { return "session-" + family }

// NotificationsStreamID is the stream of a user's notification read marks.
func NotificationsStreamID(userID int64) string { return fmt.Sprintf("notifications-%d", userID) }

// Sealed is personal data sealed with its user's key (base64). The domain stores and compares
// nothing inside it; only the user's key opens it, and erasure destroys that key.
type Sealed string

// Sign-in methods of a session or an account.
const (
	MethodPassword = "password"
	MethodGoogle   = "google"
)

// UserRegistered.v1: an account was opened. PasswordHash is empty for an account opened with
// Google. The account's first email follows as EmailAdded in the same append; Email repeats it,
// as the address the welcome mail goes to.
type UserRegistered struct {
	UserID       int64  `json:"user_id"`
	Email        Sealed `json:"email"`
	FirstName    Sealed `json:"first_name"`
	LastName     Sealed `json:"last_name"`
	PasswordHash Sealed `json:"password_hash,omitempty"`
	Role         Role   `json:"role"`
	Method       string `json:"method"`
}

// ProfileUpdated.v1: the account's names are now these.
type ProfileUpdated struct {
	UserID    int64  `json:"user_id"`
	FirstName Sealed `json:"first_name"`
	LastName  Sealed `json:"last_name"`
}

// EmailAdded.v1: an address was added to the account. Lookup is its keyed digest (the key of
// its reservation stream). Verified is true when its owner was proven (by Google).
type EmailAdded struct {
	UserID   int64  `json:"user_id"`
	EmailID  int64  `json:"email_id"`
	Email    Sealed `json:"email"`
	Lookup   string `json:"lookup"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// EmailVerified.v1: the owner of an address followed its verification link.
type EmailVerified struct {
	UserID  int64 `json:"user_id"`
	EmailID int64 `json:"email_id"`
}

// EmailRemoved.v1: an address was removed from the account (its reservation is released in the
// same append).
type EmailRemoved struct {
	UserID  int64  `json:"user_id"`
	EmailID int64  `json:"email_id"`
	Lookup  string `json:"lookup"`
}

// PrimaryEmailChanged.v1: this address is now the account's primary one.
type PrimaryEmailChanged struct {
	UserID  int64 `json:"user_id"`
	EmailID int64 `json:"email_id"`
}

// PhoneAdded.v1: a phone number was added.
type PhoneAdded struct {
	UserID  int64  `json:"user_id"`
	PhoneID int64  `json:"phone_id"`
	Number  Sealed `json:"number"`
	Primary bool   `json:"primary"`
}

// PhoneRemoved.v1: a phone number was removed.
type PhoneRemoved struct {
	UserID  int64 `json:"user_id"`
	PhoneID int64 `json:"phone_id"`
}

// PrimaryPhoneChanged.v1: this phone number is now the primary one.
type PrimaryPhoneChanged struct {
	UserID  int64 `json:"user_id"`
	PhoneID int64 `json:"phone_id"`
}

// AddressAdded.v1: a postal address was added.
type AddressAdded struct {
	UserID    int64  `json:"user_id"`
	AddressID int64  `json:"address_id"`
	City      Sealed `json:"city"`
	PostCode  Sealed `json:"post_code"`
	Country   Sealed `json:"country"`
	Primary   bool   `json:"primary"`
}

// AddressUpdated.v1: an address is now this (its whole new state).
type AddressUpdated struct {
	UserID    int64  `json:"user_id"`
	AddressID int64  `json:"address_id"`
	City      Sealed `json:"city"`
	PostCode  Sealed `json:"post_code"`
	Country   Sealed `json:"country"`
}

// AddressRemoved.v1: an address was removed.
type AddressRemoved struct {
	UserID    int64 `json:"user_id"`
	AddressID int64 `json:"address_id"`
}

// PrimaryAddressChanged.v1: this address is now the primary one.
type PrimaryAddressChanged struct {
	UserID    int64 `json:"user_id"`
	AddressID int64 `json:"address_id"`
}

// PasswordResetRequested.v1: a reset link was asked for; RequestID is what the link redeems.
// Email is the (primary) address the link is mailed to.
type PasswordResetRequested struct {
	UserID    int64  `json:"user_id"`
	RequestID string `json:"request_id"`
	Email     Sealed `json:"email"`
}

// Reasons of PasswordChanged.
const (
	PasswordReset   = "reset"
	PasswordChange  = "change"
	PasswordCreated = "created" // a Google-only account set its first password
)

// PasswordChanged.v1: the password is now this one (sealed hash). It ends every session and
// voids every outstanding reset link. RequestID names the reset link redeemed, when one was.
// Email is the (primary) address told of the change.
type PasswordChanged struct {
	UserID       int64  `json:"user_id"`
	Email        Sealed `json:"email"`
	PasswordHash Sealed `json:"password_hash"`
	Reason       string `json:"reason"`
	RequestID    string `json:"request_id,omitempty"`
}

// RoleChanged.v1: the account's role is now this.
type RoleChanged struct {
	UserID int64 `json:"user_id"`
	Role   Role  `json:"role"`
}

// ImageSet.v1: the account's picture is now this upload. Replaced names the upload it replaces
// (destroyed after the fact), if any.
type ImageSet struct {
	UserID   int64  `json:"user_id"`
	PublicID string `json:"public_id"`
	URL      Sealed `json:"url"`
	Replaced string `json:"replaced,omitempty"`
}

// ImageRemoved.v1: the account's picture was removed (the upload is destroyed after the fact).
type ImageRemoved struct {
	UserID   int64  `json:"user_id"`
	PublicID string `json:"public_id"`
}

// GoogleLinked.v1: the account signs in with the Google account whose subject's keyed digest is
// Lookup (reserved in the same append).
type GoogleLinked struct {
	UserID int64  `json:"user_id"`
	Lookup string `json:"lookup"`
}

// UserErased.v1: the account was erased at its owner's request. Its key is destroyed, so every
// sealed value of its events is unreadable from now on; its reservations are released. Image
// names the picture upload to destroy after the fact, if there was one.
type UserErased struct {
	UserID int64  `json:"user_id"`
	Image  string `json:"image,omitempty"`
}

// EmailReserved.v1 (reservation stream): the address belongs to this account.
type EmailReserved struct {
	UserID  int64 `json:"user_id"`
	EmailID int64 `json:"email_id"`
}

// EmailReleased.v1 (reservation stream): the address is free again.
type EmailReleased struct {
	UserID  int64 `json:"user_id"`
	EmailID int64 `json:"email_id"`
}

// GoogleReserved.v1 (Google identity stream): the Google account signs in to this account.
type GoogleReserved struct {
	UserID int64 `json:"user_id"`
}

// GoogleReleased.v1 (Google identity stream): the Google account is linked to none.
type GoogleReleased struct {
	UserID int64 `json:"user_id"`
}

// SessionStarted.v1 (session stream): a user signed in; Epoch is the account's session epoch
// then (a later password change ends the session).
type SessionStarted struct {
	UserID int64  `json:"user_id"`
	Family string `json:"family"`
	Method string `json:"method"`
	Epoch  int64  `json:"epoch"`
}

// SessionRefreshed.v1 (session stream): the refresh token of Generation-1 was exchanged for
// generation Generation.
type SessionRefreshed struct {
	UserID     int64 `json:"user_id"`
	Generation int64 `json:"generation"`
}

// Reasons a session ends.
const (
	EndSignedOut = "signed_out"
	EndReused    = "refresh_token_reused"
	EndRevoked   = "revoked" // the password changed or the account was erased
)

// SessionEnded.v1 (session stream): the session is over; no refresh token of it works again.
type SessionEnded struct {
	UserID int64  `json:"user_id"`
	Reason string `json:"reason"`
}

// NotificationsRead.v1 (notifications stream): the user read these notifications.
type NotificationsRead struct {
	UserID int64   `json:"user_id"`
	IDs    []int64 `json:"ids"`
}

// AllNotificationsRead.v1 (notifications stream): the user read every notification up to
// position UpTo of the log.
type AllNotificationsRead struct {
	UserID int64 `json:"user_id"`
	UpTo   int64 `json:"up_to"`
}

// registry is every event type of the package: name → a new value to decode into. One table,
// so Decode, EventType and SchemaVersion cannot drift.
var registry = domain.Registry{
	"UserRegistered":         func() domain.Event { return &UserRegistered{} },
	"ProfileUpdated":         func() domain.Event { return &ProfileUpdated{} },
	"EmailAdded":             func() domain.Event { return &EmailAdded{} },
	"EmailVerified":          func() domain.Event { return &EmailVerified{} },
	"EmailRemoved":           func() domain.Event { return &EmailRemoved{} },
	"PrimaryEmailChanged":    func() domain.Event { return &PrimaryEmailChanged{} },
	"PhoneAdded":             func() domain.Event { return &PhoneAdded{} },
	"PhoneRemoved":           func() domain.Event { return &PhoneRemoved{} },
	"PrimaryPhoneChanged":    func() domain.Event { return &PrimaryPhoneChanged{} },
	"AddressAdded":           func() domain.Event { return &AddressAdded{} },
	"AddressUpdated":         func() domain.Event { return &AddressUpdated{} },
	"AddressRemoved":         func() domain.Event { return &AddressRemoved{} },
	"PrimaryAddressChanged":  func() domain.Event { return &PrimaryAddressChanged{} },
	"PasswordResetRequested": func() domain.Event { return &PasswordResetRequested{} },
	"PasswordChanged":        func() domain.Event { return &PasswordChanged{} },
	"RoleChanged":            func() domain.Event { return &RoleChanged{} },
	"ImageSet":               func() domain.Event { return &ImageSet{} },
	"ImageRemoved":           func() domain.Event { return &ImageRemoved{} },
	"GoogleLinked":           func() domain.Event { return &GoogleLinked{} },
	"UserErased":             func() domain.Event { return &UserErased{} },
	"EmailReserved":          func() domain.Event { return &EmailReserved{} },
	"EmailReleased":          func() domain.Event { return &EmailReleased{} },
	"GoogleReserved":         func() domain.Event { return &GoogleReserved{} },
	"GoogleReleased":         func() domain.Event { return &GoogleReleased{} },
	"SessionStarted":         func() domain.Event { return &SessionStarted{} },
	"SessionRefreshed":       func() domain.Event { return &SessionRefreshed{} },
	"SessionEnded":           func() domain.Event { return &SessionEnded{} },
	"NotificationsRead":      func() domain.Event { return &NotificationsRead{} },
	"AllNotificationsRead":   func() domain.Event { return &AllNotificationsRead{} },
}

func (UserRegistered) EventType() string         { return "UserRegistered" }
func (ProfileUpdated) EventType() string         { return "ProfileUpdated" }
func (EmailAdded) EventType() string             { return "EmailAdded" }
func (EmailVerified) EventType() string          { return "EmailVerified" }
func (EmailRemoved) EventType() string           { return "EmailRemoved" }
func (PrimaryEmailChanged) EventType() string    { return "PrimaryEmailChanged" }
func (PhoneAdded) EventType() string             { return "PhoneAdded" }
func (PhoneRemoved) EventType() string           { return "PhoneRemoved" }
func (PrimaryPhoneChanged) EventType() string    { return "PrimaryPhoneChanged" }
func (AddressAdded) EventType() string           { return "AddressAdded" }
func (AddressUpdated) EventType() string         { return "AddressUpdated" }
func (AddressRemoved) EventType() string         { return "AddressRemoved" }
func (PrimaryAddressChanged) EventType() string  { return "PrimaryAddressChanged" }
func (PasswordResetRequested) EventType() string { return "PasswordResetRequested" }
func (PasswordChanged) EventType() string        { return "PasswordChanged" }
func (RoleChanged) EventType() string            { return "RoleChanged" }
func (ImageSet) EventType() string               { return "ImageSet" }
func (ImageRemoved) EventType() string           { return "ImageRemoved" }
func (GoogleLinked) EventType() string           { return "GoogleLinked" }
func (UserErased) EventType() string             { return "UserErased" }
func (EmailReserved) EventType() string          { return "EmailReserved" }
func (EmailReleased) EventType() string          { return "EmailReleased" }
func (GoogleReserved) EventType() string         { return "GoogleReserved" }
func (GoogleReleased) EventType() string         { return "GoogleReleased" }
func (SessionStarted) EventType() string         { return "SessionStarted" }
func (SessionRefreshed) EventType() string       { return "SessionRefreshed" }
func (SessionEnded) EventType() string           { return "SessionEnded" }
func (NotificationsRead) EventType() string      { return "NotificationsRead" }
func (AllNotificationsRead) EventType() string   { return "AllNotificationsRead" }

// Every event of the package is at schema version 1.
func (UserRegistered) SchemaVersion() int         { return 1 }
func (ProfileUpdated) SchemaVersion() int         { return 1 }
func (EmailAdded) SchemaVersion() int             { return 1 }
func (EmailVerified) SchemaVersion() int          { return 1 }
func (EmailRemoved) SchemaVersion() int           { return 1 }
func (PrimaryEmailChanged) SchemaVersion() int    { return 1 }
func (PhoneAdded) SchemaVersion() int             { return 1 }
func (PhoneRemoved) SchemaVersion() int           { return 1 }
func (PrimaryPhoneChanged) SchemaVersion() int    { return 1 }
func (AddressAdded) SchemaVersion() int           { return 1 }
func (AddressUpdated) SchemaVersion() int         { return 1 }
func (AddressRemoved) SchemaVersion() int         { return 1 }
func (PrimaryAddressChanged) SchemaVersion() int  { return 1 }
func (PasswordResetRequested) SchemaVersion() int { return 1 }
func (PasswordChanged) SchemaVersion() int        { return 1 }
func (RoleChanged) SchemaVersion() int            { return 1 }
func (ImageSet) SchemaVersion() int               { return 1 }
func (ImageRemoved) SchemaVersion() int           { return 1 }
func (GoogleLinked) SchemaVersion() int           { return 1 }
func (UserErased) SchemaVersion() int             { return 1 }
func (EmailReserved) SchemaVersion() int          { return 1 }
func (EmailReleased) SchemaVersion() int          { return 1 }
func (GoogleReserved) SchemaVersion() int         { return 1 }
func (GoogleReleased) SchemaVersion() int         { return 1 }
func (SessionStarted) SchemaVersion() int         { return 1 }
func (SessionRefreshed) SchemaVersion() int       { return 1 }
func (SessionEnded) SchemaVersion() int           { return 1 }
func (NotificationsRead) SchemaVersion() int      { return 1 }
func (AllNotificationsRead) SchemaVersion() int   { return 1 }

// Decode turns a stored event of this package into its struct (by value).
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return registry.Decode(eventType, schemaVersion, data)
}
