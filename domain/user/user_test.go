package user_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/user"
)

func TestNormaliseEmail(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"ada@example.com", "ada@example.com", true},
		{"  Ada.Lovelace+shop@Example.CO.uk ", "ada.lovelace+shop@example.co.uk", true},
		{"", "", false},
		{"ada", "", false},
		{"ada@localhost", "", false},
		{"Ada <ada@example.com>", "", false},
		{"ada@@example.com", "", false},
		{"ada @example.com", "", false},
		{"adä@example.com", "", false},
		{"ada@example..com", "", false},
		{"ada@.example.com", "", false},
		{"\"quoted\"@example.com", "", false},
		{strings.Repeat("a", 65) + "@example.com", "", false},
		{"a@" + strings.Repeat("b", 250) + ".com", "", false},
		{"ada@example.com\x00", "", false},
		{"ada@[127.0.0.1]", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := user.NormaliseEmail(tc.in)
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("NormaliseEmail(%q) = %q, %v", tc.in, got, err)
			}
			if err != nil && !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		name, pw, email string
		ok              bool
	}{
		{"good", "correct horse battery", "ada@example.com", true},
		{"unicode counts characters", "pässwörtér✓", "ada@example.com", true},
		{"too short", "short1!", "ada@example.com", false},
		{"too long", strings.Repeat("abcd", 33), "ada@example.com", false},
		{"too few distinct", "aaaaaaaaaaaabbb", "ada@example.com", false},
		{"common", "Password123", "ada@example.com", false},
		{"contains the email's name", "my lovelace secret", "lovelace@example.com", false},
		{"control character", "correct\x00horse battery", "ada@example.com", false},
		{"invalid utf-8", "correct horse \xff battery", "ada@example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := user.CheckPassword(tc.pw, tc.email)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckPassword = %v", err)
			}
			var de *domain.Error
			if err != nil && (!errors.As(err, &de) || de.Field != "password") {
				t.Fatalf("error %v is not about the password field", err)
			}
		})
	}
}

func TestNormalisePhone(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"+44 20 7946 0958", "+442079460958"},
		{"+1 (555) 010-9999", "+15550109999"},
		{"020 7946 0958", ""},
		{"+0 123 456 789", ""},
		{"+12", ""},
		{"+1234567890123456", ""},
		{"+44 20 7946 0958 ext 2", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := user.NormalisePhone(tc.in)
			if got != tc.want || (tc.want == "") != (err != nil) {
				t.Fatalf("NormalisePhone(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}

func TestCleanAddress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    user.Address
		field string
	}{
		{"good", user.Address{City: " Lisbon ", PostCode: "1100-148", Country: "pt"}, ""},
		{"no city", user.Address{City: " ", PostCode: "1100", Country: "PT"}, "city"},
		{"unknown country", user.Address{City: "Lisbon", PostCode: "1100", Country: "XX"}, "country"},
		{"country name", user.Address{City: "Lisbon", PostCode: "1100", Country: "Portugal"}, "country"},
		{"post code symbols", user.Address{City: "Lisbon", PostCode: "11<00>", Country: "PT"}, "post_code"},
		{"post code too long", user.Address{City: "Lisbon", PostCode: strings.Repeat("1", 21), Country: "PT"}, "post_code"},
		{"city too long", user.Address{City: strings.Repeat("x", 101), PostCode: "1", Country: "PT"}, "city"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := user.CleanAddress(tc.in)
			var de *domain.Error
			switch {
			case tc.field == "" && err != nil:
				t.Fatal(err)
			case tc.field == "" && (got.City != "Lisbon" || got.Country != "PT"):
				t.Fatalf("cleaned to %+v", got)
			case tc.field != "" && (!errors.As(err, &de) || de.Field != tc.field):
				t.Fatalf("err = %v, want one about %s", err, tc.field)
			}
		})
	}
}

// registered is the history of a newly registered account.
func registered(t *testing.T) []domain.Event {
	t.Helper()
	u, err := user.Register(user.RegisterInput{ID: 1, FirstName: "f", LastName: "l", PasswordHash: "h",
		Method: user.MethodPassword, EmailID: 10, Email: "e", EmailLookup: "L1"})
	if err != nil {
		t.Fatal(err)
	}
	return u.Changes()
}

func newUser(t *testing.T) *user.User {
	t.Helper()
	return user.Rehydrate(registered(t))
}

func TestAccountRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(u *user.User) error
		kind error
	}{
		{"verify twice", func(u *user.User) error {
			if err := u.VerifyEmail(10); err != nil {
				return err
			}
			return u.VerifyEmail(10)
		}, domain.ErrInvalid},
		{"verify someone else's email id", func(u *user.User) error { return u.VerifyEmail(99) }, domain.ErrInvalid},
		{"remove the primary email", func(u *user.User) error { _, err := u.RemoveEmail(10); return err }, domain.ErrConflict},
		{"primary before verification", func(u *user.User) error {
			if err := u.AddEmail(11, "e2", "L2"); err != nil {
				return err
			}
			return u.MakeEmailPrimary(11)
		}, domain.ErrConflict},
		{"the same address twice", func(u *user.User) error { return u.AddEmail(11, "e1", "L1") }, domain.ErrConflict},
		{"reset with an unknown link", func(u *user.User) error { return u.ResetPassword("nope", "h2") }, domain.ErrInvalid},
		{"reset link used twice", func(u *user.User) error {
			if err := u.RequestPasswordReset("r1"); err != nil {
				return err
			}
			if err := u.ResetPassword("r1", "h2"); err != nil {
				return err
			}
			return u.ResetPassword("r1", "h3")
		}, domain.ErrInvalid},
		{"an older link after a password change", func(u *user.User) error {
			if err := u.RequestPasswordReset("r1"); err != nil {
				return err
			}
			if err := u.ChangePassword("h2"); err != nil {
				return err
			}
			return u.ResetPassword("r1", "h3")
		}, domain.ErrInvalid},
		{"anything after erasure", func(u *user.User) error {
			if err := u.Erase(); err != nil {
				return err
			}
			return u.AddPhone(1, "p")
		}, domain.ErrNotFound},
		{"link Google to an unverified address", func(u *user.User) error { return u.LinkGoogle("G", "L1") }, domain.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(newUser(t)); !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
		})
	}
}

func TestPrimaryMovesWhenThePrimaryPhoneGoes(t *testing.T) {
	u := newUser(t)
	for _, id := range []int64{1, 2, 3} {
		if err := u.AddPhone(id, "p"); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.RemovePhone(1); err != nil {
		t.Fatal(err)
	}
	st := user.Rehydrate(append(registered(t), u.Changes()...)).Snapshot()
	if len(st.Phones) != 2 || !st.Phones[0].Primary || st.Phones[0].ID != 2 || st.Phones[1].Primary {
		t.Fatalf("phones after removing the primary: %+v", st.Phones)
	}
}

func TestSessionRefreshRules(t *testing.T) {
	u := newUser(t)
	s, err := user.StartSession("fam", u, user.MethodPassword)
	if err != nil {
		t.Fatal(err)
	}
	s = user.RehydrateSession(s.Changes())
	if err := s.Refresh(1, u); err != nil || s.Generation() != 2 {
		t.Fatalf("refresh: %v, generation %d", err, s.Generation())
	}
	if err := s.Refresh(1, u); !user.IsOver(err) {
		t.Fatalf("reuse: %v", err)
	}
	if ch := s.Changes(); len(ch) != 2 || ch[1].EventType() != "SessionEnded" {
		t.Fatalf("a reuse must record the end of the session, recorded %v", ch)
	}
	if err := s.Refresh(2, u); !user.IsOver(err) {
		t.Fatalf("after the end: %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	u := newUser(t)
	if err := u.AddPhone(5, "p"); err != nil {
		t.Fatal(err)
	}
	if err := u.SetImage("img", "url"); err != nil {
		t.Fatal(err)
	}
	full := user.Rehydrate(append(registered(t), u.Changes()...))
	again, err := user.RehydrateFrom(full.Snapshot(), full.Version(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := full.Snapshot(), again.Snapshot()
	if a.ID != b.ID || len(a.Phones) != len(b.Phones) || a.Image == nil || b.Image == nil || a.Image.PublicID != b.Image.PublicID {
		t.Fatalf("snapshot differs:\n%+v\n%+v", a, b)
	}
	if _, err := user.RehydrateFrom(user.State{}, 3, nil); err == nil {
		t.Fatal("an impossible snapshot was accepted")
	}
}
