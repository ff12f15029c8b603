// Package accountfx holds the side effects of account events: the account mails (verification,
// welcome, password reset, password changed), the destruction of replaced or removed pictures,
// and the destruction of an erased user's key. Each is an effects.Reactor: run once per event by
// the projection engine, retried with backoff while its outside service is down, never from a
// command.
package accountfx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/mail"
	"github.com/techvault/techvault/pii"
)

// Reactor names: consumer groups and checkpoint keys, fixed for ever.
const (
	MailReactor     = "account_mail"
	ImagesReactor   = "account_images"
	ShredderReactor = "account_key_shredder"
)

// Sender sends one mail (package mail).
type Sender interface {
	Send(ctx context.Context, m mail.Message) error
}

// Keys opens a user's sealed values (package pii).
type Keys interface {
	Box(ctx context.Context, userID int64) (pii.Box, error)
}

// LinkTokens signs the tokens of mailed links (package auth).
type LinkTokens interface {
	IssueAction(c auth.ActionClaims) (string, error)
}

// Link lifetimes.
const (
	VerifyLinkTTL = 48 * time.Hour
	ResetLinkTTL  = time.Hour
)

// MailConfig configures the account mails.
type MailConfig struct {
	Sender Sender
	Keys   Keys
	Tokens LinkTokens
	// LinkBase is the address of the shop's pages the links open: <LinkBase>/verify-email?token=…
	// and <LinkBase>/reset-password?token=… (the page posts the token to the API).
	LinkBase string
	// MaxAge is how old an event may be and still be mailed about (48h): a reactor started
	// late, or a long outage, does not send stale mail.
	MaxAge time.Duration
	Logger *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Mail is the reactor that sends the account mails. Each mail's Message-Id is its event's id,
// and its link token is computed from the event alone, so a retried event sends the same mail.
type Mail struct {
	cfg MailConfig
}

// NewMail returns the account mail reactor.
func NewMail(cfg MailConfig) (*Mail, error) {
	if cfg.Sender == nil || cfg.Keys == nil || cfg.Tokens == nil {
		return nil, errors.New("accountfx: sender, keys and tokens are required")
	}
	if _, err := url.ParseRequestURI(cfg.LinkBase); err != nil {
		return nil, fmt.Errorf("accountfx: link base: %w", err)
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 48 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Mail{cfg: cfg}, nil
}

func (*Mail) Name() string          { return MailReactor }
func (*Mail) StreamTypes() []string { return []string{user.StreamType} }

// React sends the mail an account event calls for, if any.
func (m *Mail) React(ctx context.Context, e eventstore.Event) error {
	d, err := user.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return err
	}
	var (
		uid      int64
		to       user.Sealed
		name     user.Sealed
		template string
		purpose  string
		ref      string
		ttl      time.Duration
		page     string
	)
	switch d := d.(type) {
	case user.UserRegistered:
		uid, to, name, template = d.UserID, d.Email, d.FirstName, mail.Welcome
	case user.EmailAdded:
		if d.Verified {
			return nil
		}
		uid, to, template = d.UserID, d.Email, mail.VerifyEmail
		purpose, ref, ttl, page = auth.PurposeVerifyEmail, strconv.FormatInt(d.EmailID, 10), VerifyLinkTTL, "/verify-email"
	case user.PasswordResetRequested:
		uid, to, template = d.UserID, d.Email, mail.PasswordReset
		purpose, ref, ttl, page = auth.PurposePasswordReset, d.RequestID, ResetLinkTTL, "/reset-password"
	case user.PasswordChanged:
		uid, to, template = d.UserID, d.Email, mail.PasswordChanged
	default:
		return nil
	}
	log := m.cfg.Logger.With("reactor", MailReactor, "event_id", e.ID, "event_type", e.Type, "user_id", uid)
	age := m.cfg.Now().Sub(e.RecordedAt)
	if age > m.cfg.MaxAge || (ttl > 0 && age > ttl) {
		log.InfoContext(ctx, "mail not sent: the event is too old", "age", age.Round(time.Second).String())
		return nil
	}
	if to == "" {
		return nil
	}
	box, err := m.cfg.Keys.Box(ctx, uid)
	if errors.Is(err, pii.ErrErased) {
		log.InfoContext(ctx, "mail not sent: the account is erased")
		return nil
	}
	if err != nil {
		return err
	}
	addr, err := box.Open(string(to))
	if err != nil {
		return fmt.Errorf("opening the address: %w", err)
	}
	first, err := box.Open(string(name))
	if err != nil {
		return fmt.Errorf("opening the name: %w", err)
	}
	msg := mail.Message{ID: e.ID.String(), To: addr, Template: template, Data: mail.NameData{Name: first}}
	if purpose != "" {
		token, err := m.cfg.Tokens.IssueAction(auth.ActionClaims{Purpose: purpose, UserID: uid, Ref: ref,
			IssuedAt: e.RecordedAt, TTL: ttl})
		if err != nil {
			return fmt.Errorf("signing the link: %w", err)
		}
		msg.Data = mail.LinkData{Name: first, Link: m.cfg.LinkBase + page + "?token=" + url.QueryEscape(token), ExpiresIn: ttl}
	}
	if err := m.cfg.Sender.Send(ctx, msg); err != nil {
		if mail.Permanent(err) {
			log.ErrorContext(ctx, "mail cannot be sent; skipped", "template", template, "err", err)
			return nil
		}
		return err
	}
	log.InfoContext(ctx, "mail sent", "template", template)
	return nil
}

// Destroyer destroys uploaded images (package images).
type Destroyer interface {
	Destroy(ctx context.Context, publicID string) error
}

// Images is the reactor that destroys pictures no account shows any more: the one a new
// picture replaced, a removed one, an erased account's.
type Images struct {
	Store Destroyer
}

func (Images) Name() string          { return ImagesReactor }
func (Images) StreamTypes() []string { return []string{user.StreamType} }

// React destroys the upload an event let go of (destroying a missing upload succeeds).
func (r Images) React(ctx context.Context, e eventstore.Event) error {
	d, err := user.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return err
	}
	var gone string
	switch d := d.(type) {
	case user.ImageSet:
		gone = d.Replaced
	case user.ImageRemoved:
		gone = d.PublicID
	case user.UserErased:
		gone = d.Image
	}
	if gone == "" {
		return nil
	}
	return r.Store.Destroy(ctx, gone)
}

// KeyShredder destroys the key of an erased account. The erase command destroys it already;
// this makes sure of it should that process have died between the event and the deletion.
type KeyShredder struct {
	Keys interface {
		Shred(ctx context.Context, userID int64) error
	}
}

func (KeyShredder) Name() string          { return ShredderReactor }
func (KeyShredder) StreamTypes() []string { return []string{user.StreamType} }

// React shreds the key of an erased account.
func (r KeyShredder) React(ctx context.Context, e eventstore.Event) error {
	if e.Type != (user.UserErased{}).EventType() {
		return nil
	}
	d, err := user.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return err
	}
	return r.Keys.Shred(ctx, d.(user.UserErased).UserID)
}
