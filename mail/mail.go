// Package mail sends Tech Vault's mails (address verification, welcome, password reset and
// change) over SMTP, each as a text and an HTML part rendered from templates embedded in the
// binary.
//
// Send is one attempt: it renders the mail and hands it to the SMTP server. Sending once per
// event, after the fact, and retrying with backoff while the server is down belong to the caller
// (a reactor of package effects): Send reports a failure the caller should retry as an ordinary
// error, and a mail that can never be sent (unknown template, data that does not fit it, bad
// address) as an error wrapping ErrUnknownTemplate or ErrInvalidMessage (see Permanent). The
// message's ID becomes its Message-Id header, so a mail repeated for one event (a crash between
// sending and recording it) is recognisable by receivers.
//
// It uses github.com/wneessen/go-mail: maintained, standard library only, with context-aware
// dialing, STARTTLS/implicit TLS, SMTP AUTH discovery and multipart/alternative bodies.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"slices"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// The TLS modes of Config.TLS.
const (
	// TLSNone speaks plain SMTP (a local server such as mailpit).
	TLSNone = "none"
	// TLSStartTLS upgrades the connection with STARTTLS and fails if the server cannot.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks SMTP inside TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit = "tls"
)

// messageIDDomain is the right-hand side of every Message-Id.
const messageIDDomain = "techvault"

var (
	// ErrUnknownTemplate means Message.Template names no embedded mail. Permanent.
	ErrUnknownTemplate = errors.New("unknown mail template")
	// ErrInvalidMessage means a message that can never be sent: no ID, an ID unfit for a
	// Message-Id, a recipient that is not an address, or data that does not fit the template.
	// Permanent.
	ErrInvalidMessage = errors.New("invalid mail message")
)

// Permanent reports whether err means the message can never be sent as it is, so retrying it
// is pointless (ErrUnknownTemplate, ErrInvalidMessage). Any other error from Send is worth a retry.
func Permanent(err error) bool {
	return errors.Is(err, ErrUnknownTemplate) || errors.Is(err, ErrInvalidMessage)
}

// Config is the SMTP server mails are sent through, and their sender.
type Config struct {
	// Host is the SMTP server's host name or IP address (required).
	Host string
	// Port is the SMTP server's port (default by TLS: 25 for none, 587 for starttls, 465 for tls;
	// a local mailpit listens on 1025).
	Port int
	// From is the sender, an RFC 5322 address such as "Tech Vault <no-reply@techvault.local>"
	// (required).
	From string
	// Username and Password authenticate to the server (SMTP AUTH, the mechanism discovered);
	// no authentication when Username is empty.
	Username string
	// Password goes with Username. It is never logged: String and LogValue mask it.
	Password string
	// TLS is the transport security: "none" (default), "starttls" or "tls".
	TLS string
	// Timeout bounds connecting and each SMTP command (default 10s). A context deadline that
	// comes sooner bounds them instead.
	Timeout time.Duration
}

// withDefaults fills in the unset optional settings.
func (c Config) withDefaults() Config {
	if c.TLS == "" {
		c.TLS = TLSNone
	}
	if c.Port == 0 {
		switch c.TLS {
		case TLSStartTLS:
			c.Port = 587
		case TLSImplicit:
			c.Port = 465
		default:
			c.Port = 25
		}
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return c
}

// Validate checks the settings (zero optional settings take their defaults).
func (c Config) Validate() error {
	if c.Host == "" {
		return errors.New("mail: the SMTP host is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("mail: the SMTP port must be between 1 and 65535, got %d", c.Port)
	}
	if c.From == "" {
		return errors.New("mail: the sender address (From) is required")
	}
	if _, err := netmail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("mail: the sender address (From) %q: %w", c.From, err)
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("mail: an SMTP password needs a username")
	}
	switch c.TLS {
	case "", TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return fmt.Errorf("mail: TLS must be none, starttls or tls, got %q", c.TLS)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("mail: the timeout must be positive, got %s", c.Timeout)
	}
	return nil
}

// String describes the settings with the password masked, so they can be logged.
func (c Config) String() string {
	c = c.withDefaults()
	return fmt.Sprintf("smtp=%s:%d tls=%s from=%q username=%q password=%s timeout=%s",
		c.Host, c.Port, c.TLS, c.From, c.Username, mask(c.Password), c.Timeout)
}

// LogValue logs the settings as a group with the password masked.
func (c Config) LogValue() slog.Value {
	c = c.withDefaults()
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("tls", c.TLS),
		slog.String("from", c.From),
		slog.String("username", c.Username),
		slog.String("password", mask(c.Password)),
		slog.Duration("timeout", c.Timeout),
	)
}

func mask(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "****"
}

// Message is one mail to send.
type Message struct {
	// ID identifies the mail for ever, such as the id of the event it answers; the same ID is
	// the same mail. It becomes the Message-Id header <ID@techvault>, so it may only hold
	// letters, digits and . _ - (a UUID fits).
	ID string
	// To is the recipient's address ("ada@example.com" or "Ada <ada@example.com>").
	To string
	// Template is the name of the mail (VerifyEmail, Welcome, …).
	Template string
	// Data fills the template (LinkData, NameData, or anything with the fields it uses).
	Data any
}

// validID reports whether id can be the left-hand side of a Message-Id as it is.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return id[0] != '.' && id[len(id)-1] != '.'
}

// Sender sends mails through one SMTP server. It is safe for concurrent use: each Send opens
// its own connection.
type Sender struct {
	cfg  Config
	from *netmail.Address
	opts []gomail.Option
}

// New checks the configuration and the embedded templates and returns a Sender. It does not
// connect: an SMTP server that is down fails Send, not New.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if _, err := templates(); err != nil {
		return nil, err
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: the sender address (From): %w", err)
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port)}
	switch cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	return &Sender{cfg: cfg, from: from, opts: opts}, nil
}

// Send renders the message (a multipart/alternative mail: text, then HTML) and hands it to the
// SMTP server, once. Errors wrapping ErrUnknownTemplate or ErrInvalidMessage are permanent
// (see Permanent); any other error (server down, refused, timed out, ctx done) is worth
// retrying. ctx bounds connecting; its deadline, when sooner than Config.Timeout, also bounds
// each SMTP command. Errors name the message's ID, never its recipient.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	timeout := s.cfg.Timeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: sending message %s: %w", m.ID, err)
	}
	if timeout <= 0 {
		return fmt.Errorf("mail: sending message %s: %w", m.ID, context.DeadlineExceeded)
	}
	client, err := gomail.NewClient(s.cfg.Host, append(slices.Clip(s.opts), gomail.WithTimeout(timeout))...)
	if err != nil {
		return fmt.Errorf("mail: SMTP client for %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return sendError(ctx, m.ID, err)
	}
	return nil
}

// build renders m into a go-mail message.
func (s *Sender) build(m Message) (*gomail.Msg, error) {
	if !validID(m.ID) {
		return nil, fmt.Errorf("mail: %w: the ID %q is not fit for a Message-Id (letters, digits, . _ -)",
			ErrInvalidMessage, m.ID)
	}
	r, err := Render(m.Template, m.Data)
	if err != nil {
		return nil, fmt.Errorf("mail: message %s: %w", m.ID, err)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		// go-mail's error quotes the address: personal data stays out of the error.
		return nil, fmt.Errorf("mail: message %s: %w: the recipient is not a valid address", m.ID, ErrInvalidMessage)
	}
	msg.SetMessageIDWithValue(m.ID + "@" + messageIDDomain)
	msg.SetDate()
	// Automated mail: out-of-office and other auto-replies should not answer it (RFC 3834).
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.Subject(r.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, r.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, r.HTML)
	return msg, nil
}

// sendError describes a failed SMTP exchange without the server's reply text or go-mail's list
// of recipients (both may quote the recipient's address), keeping the SMTP code.
func sendError(ctx context.Context, id string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return fmt.Errorf("mail: sending message %s: %w", id, err)
	}
	kind := "permanent"
	if se.IsTemp() {
		kind = "temporary"
	}
	msg := "mail: sending message " + id + ": " + se.Reason.String()
	if code := se.ErrorCode(); code != 0 {
		msg += " (SMTP " + strconv.Itoa(code) + ", " + kind + ")"
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError has a message of its own and keeps the original error for errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
