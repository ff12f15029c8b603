package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/user"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/pii"
)

// cheapPasswords hash fast: the tests are about the commands, not the hash's cost.
var cheapPasswords = auth.Params{Memory: 64, Iterations: 1}

func newUsers(t *testing.T) (*commands.Users, *eventstore.Store, *pii.Vault) {
	t.Helper()
	db := testdb.New(t)
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	vault, err := pii.New(db.Pool, []byte(strings.Repeat("l", 32)))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(cheapPasswords)
	if err != nil {
		t.Fatal(err)
	}
	ids := store.Sequences(map[string]string{commands.UserIDs: "user_ids", commands.EmailIDs: "email_ids",
		commands.PhoneIDs: "phone_ids", commands.AddressIDs: "address_ids"})
	return commands.NewUsers(store, store, ids, vault, pw), store, vault
}

const goodPassword = "correct horse battery"

func register(t *testing.T, u *commands.Users, email string) commands.AccountResult {
	t.Helper()
	res, err := u.Register(context.Background(), domain.Metadata{}, commands.Register{FirstName: "Ada", LastName: "Lovelace",
		Email: email, Password: goodPassword})
	if err != nil {
		t.Fatalf("registering %s: %v", email, err)
	}
	return res
}

// Issue 12 item 2: 100 concurrent registrations of one email make exactly one account, decided
// by the event store (the reservation stream), not by a read table.
func TestConcurrentRegistrationsOfOneEmailMakeOneAccount(t *testing.T) {
	users, store, _ := newUsers(t)
	ctx := context.Background()
	const n = 100
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok        int
		conflicts int
	)
	for i := range n {
		wg.Go(func() {
			// Case and spaces differ: one address all the same.
			email := "  Grace@Example.com "
			if i%2 == 0 {
				email = "grace@example.COM"
			}
			_, err := users.Register(ctx, domain.Metadata{}, commands.Register{FirstName: "Grace", LastName: "Hopper",
				Email: email, Password: goodPassword})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, domain.ErrConflict):
				conflicts++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || conflicts != n-1 {
		t.Fatalf("%d accounts opened and %d conflicts; want 1 and %d", ok, conflicts, n-1)
	}
	var registered int
	if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = 'UserRegistered'`).Scan(&registered); err != nil {
		t.Fatal(err)
	}
	if registered != 1 {
		t.Fatalf("%d UserRegistered events in the log, want 1", registered)
	}
	// The losers' keys were destroyed again: one key for one account.
	var keys int
	if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM user_keys`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != 1 {
		t.Fatalf("%d user keys, want 1", keys)
	}
}

func TestNoPersonalDataOrSecretInTheLog(t *testing.T) {
	users, store, _ := newUsers(t)
	ctx := context.Background()
	res := register(t, users, "secret.person@example.com")
	if _, err := users.AddPhone(ctx, domain.Metadata{ActorID: "x"}, commands.AddPhone{UserID: res.UserID, Phone: "+44 20 7946 0958"}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.SaveAddress(ctx, domain.Metadata{}, commands.SaveAddress{UserID: res.UserID,
		Address: user.Address{City: "Brightwater", PostCode: "BW1 2XY", Country: "gb"}}); err != nil {
		t.Fatal(err)
	}
	var dump string
	if err := store.Pool().QueryRow(ctx, `SELECT string_agg(stream_id || payload::text || metadata::text, ' ') FROM events`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"secret.person", "Ada", "Lovelace", "7946", "Brightwater", "BW1", goodPassword, "argon2id"} {
		if strings.Contains(dump, secret) {
			t.Errorf("the log holds %q readable", secret)
		}
	}
}

func TestLoginAnswersAlikeForEveryFailure(t *testing.T) {
	users, _, _ := newUsers(t)
	ctx := context.Background()
	register(t, users, "known@example.com")
	for _, tc := range []struct{ name, email, password string }{
		{"unknown email", "nobody@example.com", goodPassword},
		{"wrong password", "known@example.com", "wrong horse battery"},
		{"malformed email", "not-an-email", goodPassword},
		{"empty password", "known@example.com", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := users.Login(ctx, domain.Metadata{}, commands.Login{Email: tc.email, Password: tc.password})
			var de *domain.Error
			if !errors.As(err, &de) || !errors.Is(err, domain.ErrUnauthenticated) || de.Message != "email or password is incorrect" {
				t.Fatalf("err = %v, want the one sign-in failure", err)
			}
		})
	}
	s, err := users.Login(ctx, domain.Metadata{}, commands.Login{Email: " KNOWN@example.com", Password: goodPassword})
	if err != nil || s.Generation != 1 || s.Family == "" {
		t.Fatalf("login = %+v, %v", s, err)
	}
}

// A refresh token used twice ends its whole family: the first exchange works, the second
// (a copy) is refused, and so is the token the first exchange handed out.
func TestRefreshTokenReuseRevokesTheFamily(t *testing.T) {
	users, _, _ := newUsers(t)
	ctx := context.Background()
	register(t, users, "rotate@example.com")
	s, err := users.Login(ctx, domain.Metadata{}, commands.Login{Email: "rotate@example.com", Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	next, err := users.Refresh(ctx, domain.Metadata{}, commands.Refresh{UserID: s.UserID, Family: s.Family, Generation: 1})
	if err != nil || next.Generation != 2 {
		t.Fatalf("first refresh = %+v, %v", next, err)
	}
	if _, err := users.Refresh(ctx, domain.Metadata{}, commands.Refresh{UserID: s.UserID, Family: s.Family, Generation: 1}); !user.IsOver(err) {
		t.Fatalf("reused token: %v, want the session over", err)
	}
	if _, err := users.Refresh(ctx, domain.Metadata{}, commands.Refresh{UserID: s.UserID, Family: s.Family, Generation: 2}); !user.IsOver(err) {
		t.Fatalf("the family's newest token after a reuse: %v, want the session over", err)
	}
	// Another user's id with this family is refused too.
	if _, err := users.Refresh(ctx, domain.Metadata{}, commands.Refresh{UserID: s.UserID + 1, Family: s.Family, Generation: 2}); !user.IsOver(err) {
		t.Fatalf("foreign refresh: %v", err)
	}
}

func TestPasswordResetIsSingleUseAndEndsSessions(t *testing.T) {
	users, store, _ := newUsers(t)
	ctx := context.Background()
	acct := register(t, users, "forgetful@example.com")
	s, err := users.Login(ctx, domain.Metadata{}, commands.Login{Email: "forgetful@example.com", Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.RequestPasswordReset(ctx, domain.Metadata{}, commands.RequestPasswordReset{Email: "forgetful@example.com"}); err != nil {
		t.Fatal(err)
	}
	// An unknown address appends nothing and answers alike.
	before := eventCount(t, store)
	if err := users.RequestPasswordReset(ctx, domain.Metadata{}, commands.RequestPasswordReset{Email: "stranger@example.com"}); err != nil {
		t.Fatal(err)
	}
	if after := eventCount(t, store); after != before {
		t.Fatalf("a reset for an unknown address appended %d events", after-before)
	}
	requestID := lastResetRequest(t, store, acct.UserID)
	const newPassword = "a brand new passphrase"
	if _, err := users.ResetPassword(ctx, domain.Metadata{}, commands.ResetPassword{UserID: acct.UserID, RequestID: requestID, Password: "short"}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("weak password: %v", err)
	}
	if _, err := users.ResetPassword(ctx, domain.Metadata{}, commands.ResetPassword{UserID: acct.UserID, RequestID: requestID, Password: newPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.ResetPassword(ctx, domain.Metadata{}, commands.ResetPassword{UserID: acct.UserID, RequestID: requestID, Password: newPassword + "!"}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("second use of the link: %v, want invalid", err)
	}
	if _, err := users.Refresh(ctx, domain.Metadata{}, commands.Refresh{UserID: s.UserID, Family: s.Family, Generation: 1}); !user.IsOver(err) {
		t.Fatalf("a session from before the reset: %v, want over", err)
	}
	if _, err := users.Login(ctx, domain.Metadata{}, commands.Login{Email: "forgetful@example.com", Password: goodPassword}); err == nil {
		t.Fatal("the old password still signs in")
	}
	if _, err := users.Login(ctx, domain.Metadata{}, commands.Login{Email: "forgetful@example.com", Password: newPassword}); err != nil {
		t.Fatalf("the new password: %v", err)
	}
}

func eventCount(t *testing.T, store *eventstore.Store) int {
	t.Helper()
	var n int
	if err := store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func lastResetRequest(t *testing.T, store *eventstore.Store, userID int64) string {
	t.Helper()
	var id string
	if err := store.Pool().QueryRow(context.Background(), `SELECT payload->>'request_id' FROM events
		WHERE stream_id = $1 AND event_type = 'PasswordResetRequested' ORDER BY version DESC LIMIT 1`, user.StreamID(userID)).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEraseReleasesTheEmailAndShredsTheKey(t *testing.T) {
	users, _, vault := newUsers(t)
	ctx := context.Background()
	acct := register(t, users, "leaving@example.com")
	if _, err := users.Erase(ctx, domain.Metadata{}, acct.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Box(ctx, acct.UserID); !errors.Is(err, pii.ErrErased) {
		t.Fatalf("key after erasure: %v", err)
	}
	if _, err := users.Login(ctx, domain.Metadata{}, commands.Login{Email: "leaving@example.com", Password: goodPassword}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("sign-in after erasure: %v", err)
	}
	if _, err := users.Erase(ctx, domain.Metadata{}, acct.UserID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("second erasure: %v", err)
	}
	// The address is free again.
	again := register(t, users, "leaving@example.com")
	if again.UserID == acct.UserID {
		t.Fatal("the new account reuses the erased id")
	}
}

// Every event of an account names its acting user, the anonymous registration included.
func TestEventsCarryTheActingUser(t *testing.T) {
	users, store, _ := newUsers(t)
	acct := register(t, users, "actor@example.com")
	var missing int
	if err := store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events
		WHERE coalesce(metadata->>'actor_id', '') <> $1`, fmt.Sprint(acct.UserID)).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Fatalf("%d events of the registration do not name user %d as their actor", missing, acct.UserID)
	}
}
