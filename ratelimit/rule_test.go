package ratelimit_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/techvault/techvault/ratelimit"
)

func TestRuleValidate(t *testing.T) {
	ok := ratelimit.Rule{Name: "signin_ip", Limit: 5, Window: time.Minute, OnRedisDown: ratelimit.LocalAllowance, LocalAllowance: 3}
	tests := []struct {
		name    string
		change  func(r *ratelimit.Rule)
		wantErr string
	}{
		{"valid", func(*ratelimit.Rule) {}, ""},
		{"fail open", func(r *ratelimit.Rule) { r.OnRedisDown, r.LocalAllowance = ratelimit.FailOpen, 0 }, ""},
		{"local allowance zero refuses all", func(r *ratelimit.Rule) { r.LocalAllowance = 0 }, ""},
		{"local allowance equal to limit", func(r *ratelimit.Rule) { r.LocalAllowance = 5 }, ""},
		{"empty name", func(r *ratelimit.Rule) { r.Name = "" }, "must have 1 to"},
		{"name with colon", func(r *ratelimit.Rule) { r.Name = "sign:in" }, "may only hold"},
		{"long name", func(r *ratelimit.Rule) { r.Name = strings.Repeat("a", 65) }, "must have 1 to"},
		{"zero limit", func(r *ratelimit.Rule) { r.Limit = 0 }, "not positive"},
		{"sub-millisecond window", func(r *ratelimit.Rule) { r.Window = time.Microsecond * 999 }, "shorter than a millisecond"},
		{"window below a microsecond per request", func(r *ratelimit.Rule) { r.Limit, r.Window = 2000, time.Millisecond }, "microsecond per request"},
		{"fallback unset", func(r *ratelimit.Rule) { r.OnRedisDown = 0 }, "must be FailOpen or LocalAllowance"},
		{"fail open with allowance", func(r *ratelimit.Rule) { r.OnRedisDown = ratelimit.FailOpen }, "no local allowance"},
		{"allowance above limit", func(r *ratelimit.Rule) { r.LocalAllowance = 6 }, "outside 0..5"},
		{"negative allowance", func(r *ratelimit.Rule) { r.LocalAllowance = -1 }, "outside 0..5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.change(&r)
			err := r.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultPolicyIsValid(t *testing.T) {
	if err := ratelimit.DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	p := ratelimit.DefaultPolicy()
	p.ResetIP.Name = p.SignInIP.Name
	if err := p.Validate(); err == nil {
		t.Fatal("a policy with two rules of one name validated")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		name string
		d    ratelimit.Decision
		want int
	}{
		{"allowed", ratelimit.Decision{Allowed: true}, 0},
		{"refused without a delay still says one second", ratelimit.Decision{}, 1},
		{"a nanosecond rounds up", ratelimit.Decision{RetryAfter: time.Nanosecond}, 1},
		{"a whole second", ratelimit.Decision{RetryAfter: time.Second}, 1},
		{"just over a second rounds up", ratelimit.Decision{RetryAfter: time.Second + time.Microsecond}, 2},
		{"fifteen minutes", ratelimit.Decision{RetryAfter: 15 * time.Minute}, 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.RetryAfterSeconds(); got != tt.want {
				t.Fatalf("RetryAfterSeconds() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestHashKey(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a := ratelimit.HashKey(secret, "ada@example.com")
	if len(a) != 32 || strings.Contains(a, "ada") {
		t.Fatalf("HashKey = %q, want 32 hex digits", a)
	}
	if a != ratelimit.HashKey(secret, "ada@example.com") {
		t.Fatal("HashKey is not deterministic")
	}
	if a == ratelimit.HashKey([]byte("another secret"), "ada@example.com") {
		t.Fatal("HashKey ignores the secret")
	}
}

func TestIPSubject(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := ratelimit.IPSubject(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("IPSubject(%s) = %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
}
