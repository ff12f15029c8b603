package http_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/mailpittest"
	"github.com/techvault/techvault/mail"
)

// Mail is sent after the fact, once per event, and retried while the SMTP server is down.
func TestAccountMailWaitsOutAnSMTPOutageAndIsSentOnce(t *testing.T) {
	mp := mailpittest.Start(t)
	h := newHarness(t, harnessOpts{configure: func(c *app.Config) {
		c.SMTP = mail.Config{Host: mp.SMTPHost(), Port: mp.SMTPPort(), From: "Tech Vault <no-reply@techvault.test>"}
	}})
	mp.Stop()
	c := &customer{h: h}
	c.call("POST", "/api/v1/auth/register", `{"first_name":"Otto","last_name":"Outage","email":"otto@example.com","password":"outage passphrase 1"}`, 201)
	time.Sleep(700 * time.Millisecond) // a few failed attempts
	mp.Restart()
	waitForMail(t, mp, "otto@example.com", "Confirm your email")
	waitForMail(t, mp, "otto@example.com", "Welcome")
	// Whatever the retries did, each event made one mail.
	time.Sleep(300 * time.Millisecond)
	list, err := mp.Messages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range list {
		seen[m.MessageID]++
	}
	if len(list) != 2 || len(seen) != 2 {
		t.Fatalf("%d mails (%d distinct), want the verification and the welcome once each", len(list), len(seen))
	}
}

// A reset request answers exactly alike for a known and an unknown address (and mails only the
// known one).
func TestPasswordResetRequestDoesNotTellWhoHasAnAccount(t *testing.T) {
	mp := mailpittest.Start(t)
	h := newHarness(t, harnessOpts{configure: func(c *app.Config) {
		c.SMTP = mail.Config{Host: mp.SMTPHost(), Port: mp.SMTPPort(), From: "Tech Vault <no-reply@techvault.test>"}
	}})
	c := &customer{h: h}
	c.call("POST", "/api/v1/auth/register", `{"first_name":"Kim","last_name":"Known","email":"kim@example.com","password":"known passphrase 1"}`, 201)
	known := h.do("POST", "/api/v1/auth/password-reset/request", `{"email":"kim@example.com"}`)
	unknown := h.do("POST", "/api/v1/auth/password-reset/request", `{"email":"nobody@example.com"}`)
	if known.status != unknown.status || !bytes.Equal(known.body, unknown.body) {
		t.Fatalf("known %d %s, unknown %d %s", known.status, known.body, unknown.status, unknown.body)
	}
	waitForMail(t, mp, "kim@example.com", "Reset")
	list, err := mp.Messages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if fmt.Sprint(m.To) == "[nobody@example.com]" {
			t.Fatal("a reset mail went to an address without an account")
		}
	}
	// Sign-in: an unknown address and a wrong password answer alike.
	a := h.do("POST", "/api/v1/auth/login", `{"email":"kim@example.com","password":"wrong passphrase 1"}`)
	b := h.do("POST", "/api/v1/auth/login", `{"email":"nobody@example.com","password":"wrong passphrase 1"}`)
	if a.status != 401 || a.status != b.status || !bytes.Equal(a.body, b.body) {
		t.Fatalf("wrong password %d %s, unknown address %d %s", a.status, a.body, b.status, b.body)
	}
}
