package mail_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techvault/techvault/internal/mailpittest"
	"github.com/techvault/techvault/mail"
)

// hostileName is a display name a customer could choose.
const hostileName = `Ada <script>alert("x")</script> & Co`

// templateCase is one embedded mail with sample data and what both parts must show.
type templateCase struct {
	name    string
	data    any
	subject string // a part of the subject
	link    string // "" for mails without a link
	expires string // how the lifetime is written, "" for mails without a link
}

func templateCases(link string) []templateCase {
	return []templateCase{
		{name: mail.VerifyEmail, subject: "Confirm your email",
			data: mail.LinkData{Name: hostileName, Link: link, ExpiresIn: 24 * time.Hour}, link: link, expires: "24 hours"},
		{name: mail.Welcome, subject: "Welcome", data: mail.NameData{Name: hostileName}},
		{name: mail.PasswordReset, subject: "Reset your",
			data: mail.LinkData{Name: hostileName, Link: link, ExpiresIn: 30 * time.Minute}, link: link, expires: "30 minutes"},
		{name: mail.PasswordChanged, subject: "password was changed", data: mail.NameData{Name: hostileName}},
		{name: mail.OrderConfirmation, subject: "order #42 is paid", data: mail.OrderData{Name: hostileName, OrderID: 42,
			Lines: []mail.OrderLine{{Name: "RTX 5090 <b>", Quantity: 2, Total: "3998.00 USD"}}, Subtotal: "3998.00 USD",
			Discount: "399.80 USD", PromoCode: "TEN", Total: "3598.20 USD"}},
	}
}

func TestTemplatesAreAllCovered(t *testing.T) {
	var covered []string
	for _, tc := range templateCases("https://x") {
		covered = append(covered, tc.name)
	}
	slices.Sort(covered)
	if got := mail.Templates(); !slices.Equal(got, covered) {
		t.Fatalf("embedded templates %v, the tests cover %v: add the new mail to templateCases", got, covered)
	}
}

func TestRender(t *testing.T) {
	const link = "https://shop.techvault.local/verify?token=AbC-123_x&user=42"
	for _, tc := range templateCases(link) {
		t.Run(tc.name, func(t *testing.T) {
			r, err := mail.Render(tc.name, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Subject, tc.subject) || strings.ContainsAny(r.Subject, "\r\n") {
				t.Errorf("subject %q, want one line with %q", r.Subject, tc.subject)
			}
			if !strings.Contains(r.Text, hostileName) {
				t.Errorf("text part lacks the name as written:\n%s", r.Text)
			}
			if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, html.EscapeString(hostileName)) {
				t.Errorf("HTML part does not escape the name:\n%s", r.HTML)
			}
			if tc.link != "" {
				if !strings.Contains(r.Text, "\n"+tc.link+"\n") {
					t.Errorf("text part lacks the link on a line of its own:\n%s", r.Text)
				}
				if !strings.Contains(r.HTML, `href="`+html.EscapeString(tc.link)+`"`) {
					t.Errorf("HTML part lacks the link:\n%s", r.HTML)
				}
				for part, body := range map[string]string{"text": r.Text, "HTML": r.HTML} {
					if !strings.Contains(body, "expires in "+tc.expires) {
						t.Errorf("%s part lacks %q:\n%s", part, "expires in "+tc.expires, body)
					}
				}
			}
		})
	}
}

func TestRenderHTMLRejectsScriptLinks(t *testing.T) {
	r, err := mail.Render(mail.VerifyEmail, mail.LinkData{Name: "Ada", Link: "javascript:alert(1)", ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, `href="javascript:`) {
		t.Fatalf("HTML part links to a script:\n%s", r.HTML)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name     string
		template string
		data     any
		want     error
	}{
		{"unknown template", "order_shipped", mail.NameData{Name: "Ada"}, mail.ErrUnknownTemplate},
		{"missing field", mail.VerifyEmail, mail.NameData{Name: "Ada"}, mail.ErrInvalidMessage},
		{"missing map key", mail.PasswordReset, map[string]any{"Name": "Ada", "ExpiresIn": time.Hour}, mail.ErrInvalidMessage},
		{"negative lifetime", mail.PasswordReset, mail.LinkData{Name: "Ada", Link: "https://x", ExpiresIn: -time.Hour}, mail.ErrInvalidMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mail.Render(tt.template, tt.data)
			if !errors.Is(err, tt.want) || !mail.Permanent(err) {
				t.Fatalf("err = %v, want %v (permanent)", err, tt.want)
			}
		})
	}
}

func TestRenderExpiresIn(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{time.Minute, "1 minute"},
		{15 * time.Minute, "15 minutes"},
		{time.Hour, "1 hour"},
		{48 * time.Hour, "48 hours"},
		{7 * 24 * time.Hour, "7 days"},
		{90 * time.Second, "1m30s"},
		{"a week", "a week"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			r, err := mail.Render(mail.PasswordReset, map[string]any{"Name": "", "Link": "https://x", "ExpiresIn": tt.in})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Text, "expires in "+tt.want+".") {
				t.Fatalf("want %q in:\n%s", tt.want, r.Text)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := mail.Config{Host: "127.0.0.1", From: "Tech Vault <no-reply@techvault.local>"}
	tests := []struct {
		name    string
		change  func(*mail.Config)
		wantErr bool
	}{
		{"defaults", func(*mail.Config) {}, false},
		{"all set", func(c *mail.Config) {
			c.Port, c.Username, c.Password, c.TLS, c.Timeout = 587, "u", "p", mail.TLSStartTLS, time.Second
		}, false},
		{"no host", func(c *mail.Config) { c.Host = "" }, true},
		{"no from", func(c *mail.Config) { c.From = "" }, true},
		{"bad from", func(c *mail.Config) { c.From = "Tech Vault" }, true},
		{"bad port", func(c *mail.Config) { c.Port = 70000 }, true},
		{"bad tls", func(c *mail.Config) { c.TLS = "ssl" }, true},
		{"password without username", func(c *mail.Config) { c.Password = "p" }, true},
		{"negative timeout", func(c *mail.Config) { c.Timeout = -time.Second }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			err := c.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if _, newErr := mail.New(c); (newErr != nil) != tt.wantErr {
				t.Fatalf("New() = %v, want error %v", newErr, tt.wantErr)
			}
		})
	}
}

func TestConfigMasksPassword(t *testing.T) {
	const secret = "hunter2-secret"
	c := mail.Config{Host: "smtp.example.com", From: "no-reply@example.com", Username: "u", Password: secret}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("mail", "config", c)
	for _, s := range []string{c.String(), fmt.Sprint(c), logged.String()} {
		if strings.Contains(s, secret) || !strings.Contains(s, "****") {
			t.Errorf("password not masked: %s", s)
		}
	}
}

// newSender returns a Sender for the mailpit srv (or a closed port when srv is nil).
func newSender(t *testing.T, srv *mailpittest.Server) *mail.Sender {
	t.Helper()
	cfg := mail.Config{Host: "127.0.0.1", Port: 1, From: "Tech Vault <no-reply@techvault.local>", Timeout: 5 * time.Second}
	if srv != nil {
		cfg.Host, cfg.Port = srv.SMTPHost(), srv.SMTPPort()
	}
	s, err := mail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendRejectsInvalidMessages(t *testing.T) {
	s := newSender(t, nil) // never reached: these fail before connecting
	valid := mail.Message{ID: "0b6f8a4e-6f0e-4a53-9d3e-4a1c2b7d9e10", To: "ada@example.com",
		Template: mail.Welcome, Data: mail.NameData{Name: "Ada"}}
	tests := []struct {
		name   string
		change func(*mail.Message)
		want   error
	}{
		{"no id", func(m *mail.Message) { m.ID = "" }, mail.ErrInvalidMessage},
		{"id unfit for a Message-Id", func(m *mail.Message) { m.ID = "a>b\r\nBcc: x@y" }, mail.ErrInvalidMessage},
		{"bad recipient", func(m *mail.Message) { m.To = "ada.example.com" }, mail.ErrInvalidMessage},
		{"unknown template", func(m *mail.Message) { m.Template = "nope" }, mail.ErrUnknownTemplate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid
			tt.change(&m)
			err := s.Send(context.Background(), m)
			if !errors.Is(err, tt.want) || !mail.Permanent(err) {
				t.Fatalf("err = %v, want %v (permanent)", err, tt.want)
			}
			if strings.Contains(err.Error(), "ada") {
				t.Fatalf("the error quotes the recipient: %v", err)
			}
		})
	}
}

func TestSendRespectsContext(t *testing.T) {
	s := newSender(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Send(ctx, mail.Message{ID: "id-1", To: "ada@example.com", Template: mail.Welcome, Data: mail.NameData{}})
	if !errors.Is(err, context.Canceled) || mail.Permanent(err) {
		t.Fatalf("err = %v, want context.Canceled (retryable)", err)
	}
}

// linkTarget is an HTTP server standing in for the shop: it records the tokens its links carry.
type linkTarget struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newLinkTarget(t *testing.T) *linkTarget {
	t.Helper()
	lt := &linkTarget{}
	lt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lt.mu.Lock()
		lt.tokens = append(lt.tokens, r.URL.Path+"?"+r.URL.RawQuery)
		lt.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(lt.Close)
	return lt
}

func (lt *linkTarget) visited(pathQuery string) bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return slices.Contains(lt.tokens, pathQuery)
}

func TestSendThroughMailpit(t *testing.T) {
	srv := mailpittest.Start(t)
	s := newSender(t, srv)
	target := newLinkTarget(t)
	for i, tc := range templateCases("") {
		t.Run(tc.name, func(t *testing.T) {
			to := tc.name + "@example.com"
			id := fmt.Sprintf("evt-%d-%s", i, tc.name)
			pathQuery := "/account/" + tc.name + "?token=Zm9v-YmFy_" + tc.name + "&uid=42"
			data := tc.data
			ld, hasLink := data.(mail.LinkData)
			if hasLink {
				ld.Link = target.URL + pathQuery
				data = ld
			}
			want, err := mail.Render(tc.name, data)
			if err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Send(ctx, mail.Message{ID: id, To: to, Template: tc.name, Data: data}); err != nil {
				t.Fatal(err)
			}

			got := srv.WaitForMessage(t, to, 10*time.Second)
			if got.MessageID != id+"@techvault" {
				t.Errorf("Message-Id %q, want <%s@techvault>", got.MessageID, id)
			}
			if got.Subject != want.Subject {
				t.Errorf("subject %q, want %q", got.Subject, want.Subject)
			}
			if got.From != "no-reply@techvault.local" || got.FromName != "Tech Vault" {
				t.Errorf("from %q <%s>", got.FromName, got.From)
			}
			if !slices.Equal(got.To, []string{to}) {
				t.Errorf("to %v, want [%s]", got.To, to)
			}
			if !strings.Contains(got.Text, hostileName) || !strings.Contains(got.HTML, html.EscapeString(hostileName)) {
				t.Errorf("the parts lack the name:\ntext: %s\nhtml: %s", got.Text, got.HTML)
			}
			headers, err := srv.Headers(ctx, got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ct := strings.Join(headers["Content-Type"], ""); !strings.HasPrefix(ct, "multipart/alternative") {
				t.Errorf("Content-Type %q, want multipart/alternative", ct)
			}

			if !hasLink {
				return
			}
			// The link arrives unchanged in the text part, and following it reaches the shop.
			links := got.Links()
			if len(links) != 1 || links[0] != ld.Link {
				t.Fatalf("links in the text part %v, want [%s]", links, ld.Link)
			}
			if !strings.Contains(got.HTML, `href="`+html.EscapeString(links[0])+`"`) {
				t.Errorf("HTML part lacks the link:\n%s", got.HTML)
			}
			resp, err := http.Get(links[0])
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if !target.visited(pathQuery) {
				t.Errorf("following the link did not reach %s", pathQuery)
			}
		})
	}
}

func TestSendWhileServerIsDown(t *testing.T) {
	srv := mailpittest.Start(t)
	s := newSender(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := mail.Message{ID: "evt-down-1", To: "down@example.com", Template: mail.Welcome, Data: mail.NameData{Name: "Ada"}}

	srv.Stop()
	err := s.Send(ctx, m)
	if err == nil {
		t.Fatal("Send succeeded with the SMTP server down")
	}
	if mail.Permanent(err) {
		t.Fatalf("a server that is down is a permanent error: %v", err)
	}

	srv.Restart()
	if err := s.Send(ctx, m); err != nil {
		t.Fatalf("Send after the restart: %v", err)
	}
	if got := srv.WaitForMessage(t, m.To, 10*time.Second); got.MessageID != m.ID+"@techvault" {
		t.Fatalf("Message-Id %q, want <%s@techvault>", got.MessageID, m.ID)
	}
}
