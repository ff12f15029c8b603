package http_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// GET /users (admins): keyset pages by id, searchable by the start of a name or an address.
func TestAdminListsAndSearchesUsers(t *testing.T) {
	h := newHarness(t, harnessOpts{limits: generousLimits()})
	c := &customer{h: h}
	for i, n := range []struct{ first, last, email string }{
		{"Grace", "Hopper", "grace@navy.example"},
		{"Alan", "Turing", "alan@bletchley.example"},
		{"Ada", "Lovelace", "ada@engine.example"},
		{"Adele", "Goldberg", "adele@parc.example"},
	} {
		c.call("POST", "/api/v1/auth/register", fmt.Sprintf(`{"first_name":%q,"last_name":%q,"email":%q,"password":"listing passphrase %d"}`,
			n.first, n.last, n.email, i), 201)
	}
	admin := &customer{h: h, access: adminToken, lastPosition: c.lastPosition}
	type page struct {
		Items []struct {
			ID        int64  `json:"id"`
			FirstName string `json:"first_name"`
			Email     string `json:"email"`
		} `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	var p page
	admin.call("GET", "/api/v1/users?limit=3", "", 200).json(t, &p)
	if len(p.Items) != 3 || p.NextCursor == "" || p.Items[0].FirstName != "Grace" {
		t.Fatalf("first page: %+v", p)
	}
	var rest page
	admin.call("GET", "/api/v1/users?limit=3&cursor="+p.NextCursor, "", 200).json(t, &rest)
	if len(rest.Items) != 1 || rest.Items[0].FirstName != "Adele" || rest.NextCursor != "" {
		t.Fatalf("second page: %+v", rest)
	}
	for q, want := range map[string]int{"ad": 2, "AdA": 1, "hop": 1, "alan@": 1, "zz": 0, "%": 0, "_": 0} {
		var found page
		admin.call("GET", "/api/v1/users?q="+url.QueryEscape(q), "", 200).json(t, &found)
		if len(found.Items) != want {
			t.Errorf("q=%q found %d users, want %d: %+v", q, len(found.Items), want, found.Items)
		}
	}
	// q is text: a NUL (which Postgres text cannot hold), bytes that are not UTF-8 or a search
	// longer than the longest address are the caller's error, not the server's.
	for _, q := range []string{"al%00ice", "%ff", strings.Repeat("a", 255)} {
		var e struct {
			Error struct{ Field string } `json:"error"`
		}
		admin.call("GET", "/api/v1/users?q="+q, "", 400).json(t, &e)
		if e.Error.Field != "q" {
			t.Errorf("q=%s: error on %q, want q", q, e.Error.Field)
		}
	}
	// A cursor the server did not hand out cannot be read: 400, on every list.
	for _, path := range []string{"/api/v1/users", "/api/v1/orders", "/api/v1/notifications", "/api/v1/promo-codes",
		"/api/v1/categories", "/api/v1/products", "/api/v1/wishlist"} {
		var e struct {
			Error struct{ Field string } `json:"error"`
		}
		admin.call("GET", path+"?cursor=%21%21%21", "", 400).json(t, &e)
		if e.Error.Field != "cursor" {
			t.Errorf("%s: error on %q, want cursor", path, e.Error.Field)
		}
	}
	// A customer may not list accounts.
	c.signIn("grace@navy.example", "listing passphrase 0")
	c.call("GET", "/api/v1/users", "", 403)
}
