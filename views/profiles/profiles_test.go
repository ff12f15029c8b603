package profiles_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/pii"
	"github.com/techvault/techvault/projections/userproj"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/views/profiles"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// The cache follows the log: a change made after an account was cached is seen once the users
// projector has committed it and its notification has arrived, and a rebuild empties the cache.
func TestProfilesFollowTheLog(t *testing.T) {
	e := projtest.NewEnv(t)
	vault, err := pii.New(e.Pool, []byte(strings.Repeat("l", 32)))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(auth.Params{Memory: 64, Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	users := commands.NewUsers(e.Store, e.Store, e.Store.Sequences(map[string]string{commands.UserIDs: "user_ids",
		commands.EmailIDs: "email_ids", commands.PhoneIDs: "phone_ids", commands.AddressIDs: "address_ids"}), vault, pw)
	projtest.StartEngineWith(t, e, userproj.Projectors(), 100)
	p, err := profiles.New(e.Pool, queries.NewUserQueries(e.Pool), e.Log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("profiles: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	md := domain.Metadata{ActorID: "test"}
	acct, err := users.Register(ctx, md, commands.Register{FirstName: "Cached", LastName: "Person", Email: "cached@example.com", Password: "very secret phrase 1"})
	if err != nil {
		t.Fatal(err)
	}
	projtest.WaitCaughtUp(t, e, userproj.UsersProjector)
	name := func() string {
		v, err := p.User(ctx, acct.UserID)
		if err != nil {
			t.Fatal(err)
		}
		return v.FirstName
	}
	projtest.Eventually(t, "the account cached", func() (bool, string) { n := name(); return n == "Cached", n })
	// A write behind the projector's back (no notification) is not seen: reads come from the cache
	// (once the registration's notification has surely arrived and a read has filled it).
	time.Sleep(100 * time.Millisecond)
	name()
	if _, err := e.Pool.Exec(ctx, `UPDATE users SET first_name = 'Unnotified' WHERE id = $1`, acct.UserID); err != nil {
		t.Fatal(err)
	}
	if n := name(); n != "Cached" {
		t.Fatalf("read %q: the cache did not serve the account", n)
	}
	for _, next := range []string{"Changed", "Again", "Third"} {
		if _, err := users.UpdateProfile(ctx, md, commands.UpdateProfile{UserID: acct.UserID, FirstName: &next}); err != nil {
			t.Fatal(err)
		}
		projtest.WaitCaughtUp(t, e, userproj.UsersProjector)
		deadline := time.Now().Add(projtest.WaitTimeout)
		for name() != next {
			if time.Now().After(deadline) {
				t.Fatalf("the cache kept %q after the projector committed %q", name(), next)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
