package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/techvault/techvault/auth"
)

// cheap are parameters fast enough for tests (a fraction of a millisecond per hash).
var cheap = auth.Params{Memory: 64, Iterations: 1, Parallelism: 1}

func newPasswords(t *testing.T, p auth.Params) *auth.Passwords {
	t.Helper()
	pw, err := auth.NewPasswords(p)
	if err != nil {
		t.Fatalf("NewPasswords: %v", err)
	}
	return pw
}

func hash(t *testing.T, p *auth.Passwords, pw string) string {
	t.Helper()
	h, err := p.Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return h
}

func TestPasswordsRoundTrip(t *testing.T) {
	ctx := context.Background()
	p := newPasswords(t, cheap)
	for _, pw := range []string{"correct horse battery staple", "", "pässwörd ✓", strings.Repeat("x", 10_000)} {
		h := hash(t, p, pw)
		if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("hash %q is not argon2id with the given params", h)
		}
		if strings.Contains(h, pw) && pw != "" {
			t.Fatal("the hash contains the password")
		}
		ok, err := p.Check(ctx, pw, h)
		if err != nil || !ok {
			t.Fatalf("Check(right password) = %v, %v; want true", ok, err)
		}
		for _, wrong := range []string{pw + "x", strings.ToUpper(pw) + "!", " " + pw} {
			ok, err := p.Check(ctx, wrong, h)
			if err != nil || ok {
				t.Fatalf("Check(wrong password) = %v, %v; want false", ok, err)
			}
		}
		if p.NeedsRehash(h) {
			t.Fatal("NeedsRehash of a fresh hash")
		}
	}
}

func TestPasswordsSalted(t *testing.T) {
	p := newPasswords(t, cheap)
	a, b := hash(t, p, "same password"), hash(t, p, "same password")
	if a == b {
		t.Fatal("two hashes of one password are equal: no random salt")
	}
}

func TestPasswordsMalformedHash(t *testing.T) {
	ctx := context.Background()
	p := newPasswords(t, cheap)
	good := hash(t, p, "pw")
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=…, salt, key
	with := func(i int, v string) string {
		q := append([]string(nil), parts...)
		q[i] = v
		return strings.Join(q, "$")
	}
	tests := []struct {
		name, hash string
	}{
		{"empty", ""},
		{"garbage", "not a hash"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", with(1, "argon2i")},
		{"other version", with(2, "v=16")},
		{"no params", with(3, "")},
		{"zero memory", with(3, "m=0,t=1,p=1")},
		{"zero iterations", with(3, "m=64,t=0,p=1")},
		{"zero parallelism", with(3, "m=64,t=1,p=0")},
		{"huge memory", with(3, "m=4294967295,t=1,p=1")},
		{"huge iterations", with(3, "m=64,t=4294967295,p=1")},
		{"salt not base64", with(4, "!!!!")},
		{"short salt", with(4, "c2FsdA")},
		{"empty key", with(5, "")}, // argon2 panics deriving a zero-length key
		{"short key", with(5, "a2V5a2V5")},
		{"key not base64", with(5, "***")},
		{"extra field", good + "$x"},
		{"huge", strings.Repeat("$", 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := p.Check(ctx, "pw", tt.hash)
			if ok || !errors.Is(err, auth.ErrMalformedHash) {
				t.Fatalf("Check = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if tt.hash != "" && strings.Contains(err.Error(), tt.hash) {
				t.Fatal("the error quotes the hash")
			}
			if !p.NeedsRehash(tt.hash) {
				t.Fatal("NeedsRehash(malformed) = false")
			}
		})
	}
}

func TestPasswordsCheckUnknown(t *testing.T) {
	p := newPasswords(t, cheap)
	for _, pw := range []string{"", "pw", "correct horse battery staple"} {
		ok, err := p.CheckUnknown(context.Background(), pw)
		if ok || err != nil {
			t.Fatalf("CheckUnknown(%q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
	// The dummy is a hash with the current params, so it costs what a stored hash does.
	if p.NeedsRehash(p.Dummy()) {
		t.Fatal("the dummy hash has other params than new hashes")
	}
}

func TestPasswordsNeedsRehash(t *testing.T) {
	old := newPasswords(t, cheap)
	h := hash(t, old, "pw")
	tests := []struct {
		name   string
		params auth.Params
		want   bool
	}{
		{"same", cheap, false},
		{"same, other concurrency", auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, Concurrency: 1}, false},
		{"more memory", auth.Params{Memory: 128, Iterations: 1, Parallelism: 1}, true},
		{"more iterations", auth.Params{Memory: 64, Iterations: 2, Parallelism: 1}, true},
		{"more lanes", auth.Params{Memory: 64, Iterations: 1, Parallelism: 2}, true},
		{"longer key", auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, KeyLength: 64}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPasswords(t, tt.params)
			if got := p.NeedsRehash(h); got != tt.want {
				t.Fatalf("NeedsRehash = %v, want %v", got, tt.want)
			}
			// A hash with old params still checks, with its own params.
			if ok, err := p.Check(context.Background(), "pw", h); !ok || err != nil {
				t.Fatalf("Check of an old hash = %v, %v", ok, err)
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name string
		p    auth.Params
		ok   bool
	}{
		{"defaults", auth.DefaultParams, true},
		{"cheap", auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32, Concurrency: 1}, true},
		{"memory below 8 per lane", auth.Params{Memory: 8, Iterations: 1, Parallelism: 2, SaltLength: 16, KeyLength: 32, Concurrency: 1}, false},
		{"memory above 1 GiB", auth.Params{Memory: 1<<20 + 1, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32, Concurrency: 1}, false},
		{"no iterations", auth.Params{Memory: 64, Parallelism: 1, SaltLength: 16, KeyLength: 32, Concurrency: 1}, false},
		{"no lanes", auth.Params{Memory: 64, Iterations: 1, SaltLength: 16, KeyLength: 32, Concurrency: 1}, false},
		{"short salt", auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 8, KeyLength: 32, Concurrency: 1}, false},
		{"short key", auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 8, Concurrency: 1}, false},
		{"default concurrency", auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, true},
		{"negative concurrency", auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32, Concurrency: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := auth.NewPasswords(auth.Params{Memory: 64, Iterations: 1, SaltLength: 4}); err == nil {
		t.Fatal("NewPasswords accepted a 4-byte salt")
	}
}

// While every hashing slot is taken, a caller whose context ends gives up with ctx's error
// instead of waiting.
func TestPasswordsWaitEndsWithContext(t *testing.T) {
	p := newPasswords(t, auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, Concurrency: 2})
	h := hash(t, p, "pw")
	release := p.Fill()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash = %v, want context.Canceled", err)
	}
	if ok, err := p.Check(ctx, "pw", h); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Check = %v, %v, want context.Canceled", ok, err)
	}
	if ok, err := p.CheckUnknown(ctx, "pw"); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("CheckUnknown = %v, %v, want context.Canceled", ok, err)
	}
}

// Many concurrent sign-ins through a small bound all complete, with the right answers.
func TestPasswordsConcurrent(t *testing.T) {
	ctx := context.Background()
	p := newPasswords(t, auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, Concurrency: 2})
	h := hash(t, p, "pw")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			var ok bool
			var err error
			switch i % 3 {
			case 0:
				ok, err = p.Check(ctx, "pw", h)
				if err == nil && !ok {
					err = errors.New("right password refused")
				}
			case 1:
				ok, err = p.Check(ctx, "wrong", h)
				if err == nil && ok {
					err = errors.New("wrong password accepted")
				}
			default:
				ok, err = p.CheckUnknown(ctx, "pw")
				if err == nil && ok {
					err = errors.New("unknown account accepted")
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
