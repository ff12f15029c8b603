package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	nethttp "net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/cloudinarytest"
	"github.com/techvault/techvault/internal/mailpittest"
	"github.com/techvault/techvault/mail"
)

// customer is one signed-in client of the journey.
type customer struct {
	h            *harness
	access       string
	refresh      string
	lastPosition int64
}

func (c *customer) call(method, path, body string, want int) response {
	c.h.t.Helper()
	headers := []string{"X-Min-Position", fmt.Sprint(c.lastPosition)}
	if c.access != "" {
		headers = append(headers, "Authorization", "Bearer "+c.access)
	}
	r := c.h.do(method, path, body, headers...)
	if r.status != want {
		c.h.t.Fatalf("%s %s: %d %s (want %d)", method, path, r.status, r.body, want)
	}
	var pos struct {
		Position int64 `json:"position"`
	}
	if json.Unmarshal(r.body, &pos) == nil && pos.Position > c.lastPosition {
		c.lastPosition = pos.Position
	}
	return r
}

type session struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	User         struct {
		ID   int64  `json:"id"`
		Role string `json:"role"`
	} `json:"user"`
	Position int64 `json:"position"`
}

func (c *customer) signIn(email, password string) session {
	c.h.t.Helper()
	var s session
	c.access = ""
	c.call("POST", "/api/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password), 200).json(c.h.t, &s)
	c.access, c.refresh = s.AccessToken, s.RefreshToken
	return s
}

type me struct {
	ID            int64  `json:"id"`
	FirstName     string `json:"first_name"`
	LastName      string `json:"last_name"`
	EmailVerified bool   `json:"email_verified"`
	Emails        []struct {
		ID       int64  `json:"id"`
		Email    string `json:"email"`
		Primary  bool   `json:"is_primary"`
		Verified bool   `json:"verified"`
	} `json:"emails"`
	Phones []struct {
		ID      int64  `json:"id"`
		Phone   string `json:"phone"`
		Primary bool   `json:"is_primary"`
	} `json:"phones"`
	Addresses []struct {
		ID      int64  `json:"id"`
		City    string `json:"city"`
		Country string `json:"country"`
		Primary bool   `json:"is_primary"`
	} `json:"addresses"`
	ImageURL *string `json:"image_url"`
}

func (c *customer) me() me {
	c.h.t.Helper()
	var m me
	c.call("GET", "/api/v1/users/me", "", 200).json(c.h.t, &m)
	return m
}

// waitForMail waits for a mail to addr whose subject contains subject.
func waitForMail(t *testing.T, mp *mailpittest.Server, addr, subject string) mailpittest.Full {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		list, err := mp.Messages(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range list {
			for _, to := range m.To {
				if strings.EqualFold(to, addr) && strings.Contains(m.Subject, subject) {
					full, err := mp.Message(context.Background(), m.ID)
					if err != nil {
						t.Fatal(err)
					}
					return full
				}
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("no mail %q to %s", subject, addr)
	return mailpittest.Full{}
}

// linkToken follows a mailed link the way the shop's page does: it takes the token from the
// link's query and returns it for the page to post to the API.
func linkToken(t *testing.T, m mailpittest.Full, page string) string {
	t.Helper()
	for _, l := range m.Links() {
		u, err := url.Parse(l)
		if err == nil && u.Host == "shop.test" && u.Path == page && u.Query().Get("token") != "" {
			return u.Query().Get("token")
		}
	}
	t.Fatalf("mail %q has no %s link: %s", m.Subject, page, m.Text)
	return ""
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (c *customer) upload(data []byte, filename string, want int) response {
	c.h.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile("image", filename)
	if err != nil {
		c.h.t.Fatal(err)
	}
	_, _ = part.Write(data)
	_ = w.Close()
	req, _ := nethttp.NewRequest("PUT", c.h.srv.URL+"/api/v1/users/me/image", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+c.access)
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		c.h.t.Fatalf("upload %s: %d %s", filename, res.StatusCode, b)
	}
	r := response{status: res.StatusCode, header: res.Header, body: b}
	var pos struct {
		Position int64 `json:"position"`
	}
	if json.Unmarshal(b, &pos) == nil && pos.Position > c.lastPosition {
		c.lastPosition = pos.Position
	}
	return r
}

// The "done when", through HTTP: a new user registers, reads the verification mail in
// mailpit, verifies, signs in, refreshes, manages emails, phones, addresses and picture, resets a
// forgotten password, reads notifications, and erases the account.
func TestCustomerJourney(t *testing.T) {
	mp := mailpittest.Start(t)
	cld := cloudinarytest.New(t, "journey", "key", "cloud-secret")
	h := newHarness(t, harnessOpts{configure: func(c *app.Config) {
		c.SMTP = mail.Config{Host: mp.SMTPHost(), Port: mp.SMTPPort(), From: "Tech Vault <no-reply@techvault.test>"}
		c.Cloudinary = images.Config{CloudName: "journey", APIKey: "key", APISecret: "cloud-secret", UploadPrefix: cld.URL()}
	}})
	const (
		email    = "journey.ada@example.com"
		password = "analytical engine 1843"
	)
	c := &customer{h: h}

	// Register; the verification mail carries the link.
	c.call("POST", "/api/v1/auth/register", fmt.Sprintf(`{"first_name":"Ada","last_name":"Lovelace","email":%q,"password":%q,"phone":"+44 20 7946 0958"}`,
		email, password), 201)
	verify := waitForMail(t, mp, email, "Confirm your email")
	waitForMail(t, mp, email, "Welcome")
	c.call("POST", "/api/v1/auth/verify-email", fmt.Sprintf(`{"token":%q}`, linkToken(t, verify, "/verify-email")), 200)
	c.call("POST", "/api/v1/auth/verify-email", fmt.Sprintf(`{"token":%q}`, linkToken(t, verify, "/verify-email")), 422)

	// Sign in and refresh: the old refresh token is spent.
	s := c.signIn(email, password)
	first := c.refresh
	var next session
	c.call("POST", "/api/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, first), 200).json(t, &next)
	c.access, c.refresh = next.AccessToken, next.RefreshToken
	if m := c.me(); m.ID != s.User.ID || m.FirstName != "Ada" || !m.EmailVerified || len(m.Phones) != 1 || m.Phones[0].Phone != "+442079460958" {
		t.Fatalf("me after sign-in: %+v", m)
	}

	// Emails: add (a verification mail follows), verify, make primary, remove the old one.
	const second = "ada.work@example.com"
	var added accountResult
	c.call("POST", "/api/v1/users/me/emails", fmt.Sprintf(`{"email":%q}`, second), 201).json(t, &added)
	c.call("POST", fmt.Sprintf("/api/v1/users/me/emails/%d/primary", added.ID), "", 409) // not verified yet
	c.call("POST", "/api/v1/auth/verify-email", fmt.Sprintf(`{"token":%q}`, linkToken(t, waitForMail(t, mp, second, "Confirm"), "/verify-email")), 200)
	c.call("POST", fmt.Sprintf("/api/v1/users/me/emails/%d/primary", added.ID), "", 200)
	old := c.me().Emails[0].ID
	c.call("DELETE", fmt.Sprintf("/api/v1/users/me/emails/%d", old), "", 200)
	if m := c.me(); len(m.Emails) != 1 || m.Emails[0].Email != second || !m.Emails[0].Primary {
		t.Fatalf("emails: %+v", m.Emails)
	}

	// Phones and addresses.
	var phone accountResult
	c.call("POST", "/api/v1/users/me/phones", `{"phone":"+49 151 12345678"}`, 201).json(t, &phone)
	c.call("POST", fmt.Sprintf("/api/v1/users/me/phones/%d/primary", phone.ID), "", 200)
	var home, office accountResult
	c.call("POST", "/api/v1/users/me/addresses", `{"city":"London","post_code":"W1 2AB","country":"gb"}`, 201).json(t, &home)
	c.call("POST", "/api/v1/users/me/addresses", `{"city":"Lisbon","post_code":"1100-148","country":"PT"}`, 201).json(t, &office)
	c.call("PATCH", fmt.Sprintf("/api/v1/users/me/addresses/%d", office.ID), `{"city":"Porto","post_code":"4000-001","country":"PT"}`, 200)
	// An address or names as they are already record nothing.
	unchanged := h.head()
	c.call("PATCH", fmt.Sprintf("/api/v1/users/me/addresses/%d", office.ID), `{"city":"Porto","post_code":"4000-001","country":"PT"}`, 200)
	var self me
	c.call("GET", "/api/v1/users/me", "", 200).json(t, &self)
	c.call("PATCH", "/api/v1/users/me", fmt.Sprintf(`{"first_name":%q}`, self.FirstName), 200)
	if h.head() != unchanged {
		t.Fatalf("updates to the values already there grew the log from %d to %d", unchanged, h.head())
	}
	c.call("POST", fmt.Sprintf("/api/v1/users/me/addresses/%d/primary", office.ID), "", 200)
	c.call("DELETE", fmt.Sprintf("/api/v1/users/me/addresses/%d", home.ID), "", 200)
	var addrs struct {
		Items []struct {
			City    string `json:"city"`
			Primary bool   `json:"is_primary"`
		} `json:"items"`
	}
	c.call("GET", "/api/v1/users/me/addresses", "", 200).json(t, &addrs)
	if len(addrs.Items) != 1 || addrs.Items[0].City != "Porto" || !addrs.Items[0].Primary {
		t.Fatalf("addresses: %+v", addrs.Items)
	}

	// Picture: a PNG by name only is refused; a real one is stored; a new one replaces it and
	// the old upload is destroyed after the fact.
	c.upload([]byte("not an image at all"), "fake.png", 422)
	c.upload(pngBytes(t), "me.png", 200)
	firstURL := *c.me().ImageURL
	c.upload(pngBytes(t), "me2.png", 200)
	if m := c.me(); m.ImageURL == nil || *m.ImageURL == firstURL {
		t.Fatalf("picture not replaced: %v", m.ImageURL)
	}
	eventuallyTrue(t, "the replaced upload destroyed", func() bool { return len(cld.Destroyed()) == 1 && len(cld.Assets()) == 1 })

	// A forgotten password: the reset link works once and ends every session.
	c.call("POST", "/api/v1/auth/password-reset/request", fmt.Sprintf(`{"email":%q}`, second), 202)
	reset := linkToken(t, waitForMail(t, mp, second, "Reset"), "/reset-password")
	const newPassword = "difference engine 1822"
	c.call("POST", "/api/v1/auth/password-reset/confirm", fmt.Sprintf(`{"token":%q,"password":%q}`, reset, newPassword), 200)
	c.call("POST", "/api/v1/auth/password-reset/confirm", fmt.Sprintf(`{"token":%q,"password":%q}`, reset, newPassword+"!"), 422)
	waitForMail(t, mp, second, "password was changed")
	refreshBody := fmt.Sprintf(`{"refresh_token":%q}`, c.refresh)
	c.call("POST", "/api/v1/auth/refresh", refreshBody, 401)
	c.access = ""
	c.call("POST", "/api/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, second, password), 401)
	c.signIn(second, newPassword)

	// Notifications: welcome, two verified emails, password changed; unread first.
	var notes struct {
		Items []struct {
			ID   int64  `json:"id"`
			Kind string `json:"kind"`
			Read bool   `json:"read"`
		} `json:"items"`
	}
	c.call("GET", "/api/v1/notifications", "", 200).json(t, &notes)
	if len(notes.Items) != 4 || notes.Items[0].Kind != "password_changed" {
		t.Fatalf("notifications: %+v", notes.Items)
	}
	c.call("POST", fmt.Sprintf("/api/v1/notifications/%d/read", notes.Items[0].ID), "", 200)
	c.call("GET", "/api/v1/notifications", "", 200).json(t, &notes)
	if last := notes.Items[len(notes.Items)-1]; !last.Read || last.Kind != "password_changed" {
		t.Fatalf("a read notification must sort last: %+v", notes.Items)
	}
	c.call("POST", "/api/v1/notifications/read-all", "", 200)
	c.call("GET", "/api/v1/notifications", "", 200).json(t, &notes)
	for _, n := range notes.Items {
		if !n.Read {
			t.Fatalf("unread after read-all: %+v", notes.Items)
		}
	}

	// Sign out: the session's refresh token is dead.
	c.call("POST", "/api/v1/auth/logout", "", 200)
	c.call("POST", "/api/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, c.refresh), 401)

	// Erase: the account, its picture and every readable trace of the person go.
	c.signIn(second, newPassword)
	var gpu struct {
		ID int64 `json:"id"`
	}
	h.admin("POST", "/api/v1/products", `{"name":"GPU","price":"499.00","stock":5}`, 201).json(t, &gpu)
	c.call("DELETE", "/api/v1/users/me", "", 200)
	c.call("GET", "/api/v1/users/me", "", 404)
	// The access token outlives the account (by its lifetime at most) and writes nothing: no cart,
	// wishlist or review of nobody.
	before := h.head()
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/api/v1/cart/items", fmt.Sprintf(`{"product_id":%d,"quantity":1}`, gpu.ID)},
		{"DELETE", "/api/v1/cart", ""},
		{"POST", "/api/v1/cart/promo", `{"code":"NOPE"}`},
		{"POST", fmt.Sprintf("/api/v1/wishlist/%d", gpu.ID), ""},
		{"POST", fmt.Sprintf("/api/v1/products/%d/reviews", gpu.ID), `{"rating":1}`},
		{"POST", "/api/v1/notifications/read-all", ""},
		{"POST", "/api/v1/orders", `{"address_id":1}`},
	} {
		c.call(w.method, w.path, w.body, 401)
	}
	if h.head() != before {
		t.Fatal("an erased account's access token appended events")
	}
	eventuallyTrue(t, "the picture destroyed", func() bool { return len(cld.Assets()) == 0 })
	c.access = ""
	c.call("POST", "/api/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, second, newPassword), 401)
	out, err := exec.Command("pg_dump", "--no-owner", h.db.URL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	for _, secret := range []string{"journey.ada", "ada.work", "Lovelace", "2079460958", "15112345678", "Porto", newPassword} {
		if bytes.Contains(out, []byte(secret)) {
			t.Errorf("the database dump still holds %q", secret)
		}
	}
}

type accountResult struct {
	ID       int64 `json:"id"`
	Position int64 `json:"position"`
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
