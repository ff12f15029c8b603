package userproj_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/pii"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/userproj"
)

func TestMain(m *testing.M) { testdb.Main(m) }

const password = "correct horse battery"

func newUsers(t *testing.T, e *projtest.Env) *commands.Users {
	t.Helper()
	vault, err := pii.New(e.Pool, []byte(strings.Repeat("l", 32)))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(auth.Params{Memory: 64, Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids := e.Store.Sequences(map[string]string{commands.UserIDs: "user_ids", commands.EmailIDs: "email_ids",
		commands.PhoneIDs: "phone_ids", commands.AddressIDs: "address_ids"})
	return commands.NewUsers(e.Store, e.Store, ids, vault, pw)
}

var tables = []string{"users", "emails", "phones_numbers", "addresses", "user_image", "notifications"}

func snapshot(t *testing.T, e *projtest.Env) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range tables {
		out[tb] = projtest.Snapshot(t, e, tb)
	}
	return out
}

// drive runs a customer's life through the commands; it returns the account ids.
func drive(t *testing.T, u *commands.Users, email, first string) int64 {
	t.Helper()
	ctx := context.Background()
	md := domain.Metadata{ActorID: "test"}
	must := func(r commands.AccountResult, err error) commands.AccountResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	acct := must(u.Register(ctx, md, commands.Register{FirstName: first, LastName: "Tester", Email: email, Password: password, Phone: "+4915112345678"}))
	id := acct.UserID
	must(u.VerifyEmail(ctx, md, commands.VerifyEmail{UserID: id, EmailID: acct.ID}))
	second := must(u.AddEmail(ctx, md, commands.AddEmail{UserID: id, Email: "second." + email}))
	must(u.VerifyEmail(ctx, md, commands.VerifyEmail{UserID: id, EmailID: second.ID}))
	must(u.MakeEmailPrimary(ctx, md, commands.EmailRef{UserID: id, EmailID: second.ID}))
	third := must(u.AddEmail(ctx, md, commands.AddEmail{UserID: id, Email: "third." + email}))
	must(u.RemoveEmail(ctx, md, commands.EmailRef{UserID: id, EmailID: third.ID}))
	p2 := must(u.AddPhone(ctx, md, commands.AddPhone{UserID: id, Phone: "+44 20 7946 0958"}))
	must(u.MakePhonePrimary(ctx, md, commands.PhoneRef{UserID: id, PhoneID: p2.ID}))
	a1 := must(u.SaveAddress(ctx, md, commands.SaveAddress{UserID: id, Address: user.Address{City: "Lisbon", PostCode: "1100-148", Country: "PT"}}))
	a2 := must(u.SaveAddress(ctx, md, commands.SaveAddress{UserID: id, Address: user.Address{City: "Porto", PostCode: "4000", Country: "pt"}}))
	must(u.SaveAddress(ctx, md, commands.SaveAddress{UserID: id, AddressID: a2.ID, Address: user.Address{City: "Braga", PostCode: "4700", Country: "PT"}}))
	must(u.RemoveAddress(ctx, md, commands.AddressRef{UserID: id, AddressID: a1.ID}))
	must(u.SetImage(ctx, md, commands.SetImage{UserID: id, PublicID: "users/1/a", URL: "https://img.example/a.png"}))
	must(u.SetImage(ctx, md, commands.SetImage{UserID: id, PublicID: "users/1/b", URL: "https://img.example/b.png"}))
	newFirst := first + "ine"
	must(u.UpdateProfile(ctx, md, commands.UpdateProfile{UserID: id, FirstName: &newFirst}))
	np := "another good passphrase"
	must(u.UpdateProfile(ctx, md, commands.UpdateProfile{UserID: id, Password: &np, CurrentPassword: password}))
	must(u.MarkAllNotificationsRead(ctx, md, id))
	return id
}

// The live projectors (one event per batch) and a rebuild (everything in one batch) build the
// same tables; an erased customer is gone from both, and from the whole database dump.
func TestLiveEqualsRebuildAndErasureForgets(t *testing.T) {
	e := projtest.NewEnv(t)
	u := newUsers(t, e)
	ps := userproj.Projectors()
	eng := projtest.StartEngineWith(t, e, ps, 1)
	keep := drive(t, u, "keeper@example.com", "Keeper")
	gone := drive(t, u, "erasable.person@example.com", "Zebulon")
	projtest.WaitCaughtUp(t, e, userproj.UsersProjector, userproj.NotificationsProjector)

	var first, primaryEmail, city, img string
	var verified bool
	if err := e.Pool.QueryRow(context.Background(), `SELECT u.first_name, u.email_verified, e.email, a.city, i.url
		FROM users u JOIN emails e ON e.user_id = u.id AND e."isPrimary" JOIN addresses a ON a.user_id = u.id AND a."isPrimary"
		JOIN user_image i ON i.user_id = u.id WHERE u.id = $1`, keep).Scan(&first, &verified, &primaryEmail, &city, &img); err != nil {
		t.Fatal(err)
	}
	if first != "Keeperine" || !verified || primaryEmail != "second.keeper@example.com" || city != "Braga" || img != "https://img.example/b.png" {
		t.Fatalf("projected %q %v %q %q %q", first, verified, primaryEmail, city, img)
	}
	var unread int
	if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE NOT read) FROM notifications WHERE user_id = $1`, keep).Scan(&unread); err != nil {
		t.Fatal(err)
	}
	if unread != 0 {
		t.Fatalf("%d unread notifications after read-all", unread)
	}

	live := snapshot(t, e)
	for _, p := range ps {
		projtest.Rebuild(t, e, p)
	}
	for tb, rows := range snapshot(t, e) {
		projtest.RequireSameRows(t, tb+": rebuild vs live", live[tb], rows)
	}

	if _, err := u.Erase(context.Background(), domain.Metadata{ActorID: "test"}, gone); err != nil {
		t.Fatal(err)
	}
	projtest.WaitCaughtUp(t, e, userproj.UsersProjector, userproj.NotificationsProjector)
	eng.Stop(t)
	for _, p := range ps {
		projtest.Rebuild(t, e, p)
	}
	for _, tb := range tables {
		var n int
		if err := e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+tb+` WHERE `+idColumn(tb)+` = $1`, gone).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s keeps %d rows of the erased user after a rebuild", tb, n)
		}
	}
	out, err := exec.Command("pg_dump", "--no-owner", e.DB.URL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	dump := string(out)
	for _, secret := range []string{"erasable.person", "Zebulon", "ZEBULON"} {
		if strings.Contains(dump, secret) {
			t.Errorf("the database dump still holds %q", secret)
		}
	}
	if !strings.Contains(dump, "keeper@example.com") {
		t.Error("the dump misses the kept customer: is the grep looking at the right database?")
	}
}

func idColumn(table string) string {
	if table == "users" {
		return "id"
	}
	return "user_id"
}

// Applying a batch twice leaves the tables as applying it once.
func TestApplyIsIdempotent(t *testing.T) {
	e := projtest.NewEnv(t)
	u := newUsers(t, e)
	drive(t, u, "twice@example.com", "Twice")
	for _, p := range userproj.Projectors() {
		projtest.Rebuild(t, e, p)
	}
	before := snapshot(t, e)
	ctx := context.Background()
	evs, err := e.Store.ReadAll(ctx, eventstore.Cursor{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range userproj.Projectors() {
		stmts, err := p.Apply(projections.Identity(p), evs)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if _, err := e.Pool.Exec(ctx, s.SQL, s.Args...); err != nil {
				t.Fatalf("%s: %v", p.Name(), err)
			}
		}
	}
	for tb, rows := range snapshot(t, e) {
		projtest.RequireSameRows(t, tb+": applied twice vs once", before[tb], rows)
	}
}
