package ratelimit_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/ratelimit"
)

func TestNewNeedsRedis(t *testing.T) {
	if _, err := ratelimit.New(ratelimit.Config{}); err == nil {
		t.Fatal("New without a Redis client succeeded")
	}
}

func TestAllowRefusesBeyondTheLimitUntilItRefills(t *testing.T) {
	rdb, prefix := testdb.Redis(t)
	l, _ := newLimiter(t, rdb, prefix, nil)
	// A burst of 3, then one request every 300 ms.
	rule := ratelimit.Rule{Name: "burst", Limit: 3, Window: 900 * time.Millisecond, OnRedisDown: ratelimit.FailOpen}

	for want := 2; want >= 0; want-- {
		d := allow(t, l, rule, "k")
		if !d.Allowed || d.Degraded || d.Remaining != want || d.RetryAfter != 0 {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", 3-want, d, want)
		}
	}
	d := allow(t, l, rule, "k")
	if d.Allowed || d.Degraded || d.Remaining != 0 {
		t.Fatalf("request 4: %+v, want refused", d)
	}
	if d.RetryAfter <= 0 || d.RetryAfter > rule.Window {
		t.Fatalf("RetryAfter = %v, want within (0, %v]", d.RetryAfter, rule.Window)
	}
	if got := d.RetryAfterSeconds(); got != 1 {
		t.Fatalf("RetryAfterSeconds() = %d, want 1", got)
	}

	key := prefix + "rl:burst:k"
	if got := l.Key(rule, "k"); got != key {
		t.Fatalf("Key = %q, want %q", got, key)
	}
	ttl, err := rdb.PTTL(context.Background(), key).Result()
	if err != nil || ttl <= 0 || ttl > rule.Window {
		t.Fatalf("PTTL(%s) = %v, %v; want an expiry within the window", key, ttl, err)
	}

	time.Sleep(d.RetryAfter)
	deadline := time.Now().Add(waitTimeout)
	for !allow(t, l, rule, "k").Allowed {
		if time.Now().After(deadline) {
			t.Fatalf("still refused %v after the retry time", waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProcessesShareOneBudget(t *testing.T) {
	rdb, prefix := testdb.Redis(t)
	// Two processes: separate clients, and clocks an hour apart (decisions use Redis's clock).
	a, _ := newLimiter(t, rdb, prefix, nil)
	b, _ := newLimiter(t, secondClient(t), prefix, func() time.Time { return time.Now().Add(time.Hour) })
	rule := ratelimit.Rule{Name: "shared", Limit: 10, Window: time.Minute, OnRedisDown: ratelimit.LocalAllowance, LocalAllowance: 2}

	var allowed, degraded atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			d, err := l.Allow(context.Background(), rule, "one-account")
			if err != nil {
				t.Errorf("Allow: %v", err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
			if d.Degraded {
				degraded.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 10 || degraded.Load() != 0 {
		t.Fatalf("%d allowed (%d degraded) of 50 against a limit of 10, want exactly 10 (none degraded)",
			allowed.Load(), degraded.Load())
	}
}

func TestKeysAndRulesAreIndependent(t *testing.T) {
	rdb, prefix := testdb.Redis(t)
	l, _ := newLimiter(t, rdb, prefix, nil)
	ruleA := ratelimit.Rule{Name: "a", Limit: 1, Window: time.Minute, OnRedisDown: ratelimit.FailOpen}
	ruleB := ratelimit.Rule{Name: "b", Limit: 1, Window: time.Minute, OnRedisDown: ratelimit.FailOpen}
	if !allow(t, l, ruleA, "x").Allowed {
		t.Fatal("first request refused")
	}

	tests := []struct {
		name string
		rule ratelimit.Rule
		key  string
		want bool
	}{
		{"same rule and key", ruleA, "x", false},
		{"same rule, other key", ruleA, "y", true},
		{"other rule, same key", ruleB, "x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allow(t, l, tt.rule, tt.key).Allowed; got != tt.want {
				t.Fatalf("Allowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResetClearsTheCount(t *testing.T) {
	rdb, prefix := testdb.Redis(t)
	l, _ := newLimiter(t, rdb, prefix, nil)
	rule := ratelimit.Rule{Name: "signin_account", Limit: 2, Window: time.Minute, OnRedisDown: ratelimit.LocalAllowance, LocalAllowance: 1}
	allow(t, l, rule, "acct")
	allow(t, l, rule, "acct")
	if allow(t, l, rule, "acct").Allowed {
		t.Fatal("third request allowed against a limit of 2")
	}
	if err := l.Reset(context.Background(), rule, "acct"); err != nil {
		t.Fatal(err)
	}
	if d := allow(t, l, rule, "acct"); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("after Reset: %+v, want allowed with 1 remaining", d)
	}
}

func TestAllowRejectsBadInput(t *testing.T) {
	rdb, prefix := testdb.Redis(t)
	l, _ := newLimiter(t, rdb, prefix, nil)
	rule := ratelimit.Rule{Name: "r", Limit: 1, Window: time.Minute, OnRedisDown: ratelimit.FailOpen}
	tests := []struct {
		name string
		rule ratelimit.Rule
		key  string
	}{
		{"invalid rule", ratelimit.Rule{Name: "r", Limit: 1, Window: time.Minute}, "k"},
		{"empty key", rule, ""},
		{"raw email", rule, "ada@example.com"},
		{"space", rule, "a b"},
		{"too long", rule, strings.Repeat("k", 257)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Allow(context.Background(), tt.rule, tt.key)
			if err == nil {
				t.Fatal("Allow succeeded")
			}
			if strings.Contains(err.Error(), "ada") {
				t.Fatalf("the error quotes the key: %v", err)
			}
			if err := l.Reset(context.Background(), tt.rule, tt.key); err == nil {
				t.Fatal("Reset succeeded")
			}
		})
	}
}

func TestAllowReturnsTheContextError(t *testing.T) {
	rdb, prefix := testdb.Redis(t)
	l, _ := newLimiter(t, rdb, prefix, nil)
	rule := ratelimit.Rule{Name: "r", Limit: 1, Window: time.Minute, OnRedisDown: ratelimit.FailOpen}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := l.Allow(ctx, rule, "k"); err == nil || d.Allowed {
		t.Fatalf("Allow with a cancelled context = %+v, %v; want refused with an error", d, err)
	}
}

func TestScriptErrorFallsBack(t *testing.T) {
	rdb, prefix := testdb.Redis(t)
	l, logs := newLimiter(t, rdb, prefix, nil)
	open := ratelimit.Rule{Name: "open", Limit: 1, Window: time.Minute, OnRedisDown: ratelimit.FailOpen}
	closed := ratelimit.Rule{Name: "closed", Limit: 5, Window: time.Minute, OnRedisDown: ratelimit.LocalAllowance, LocalAllowance: 1}
	ctx := context.Background()
	// A list where the script expects a string: GET fails with WRONGTYPE.
	for _, r := range []ratelimit.Rule{open, closed} {
		if err := rdb.RPush(ctx, l.Key(r, "broken"), "x").Err(); err != nil {
			t.Fatal(err)
		}
	}

	for range 3 {
		if d := allow(t, l, open, "broken"); !d.Allowed || !d.Degraded {
			t.Fatalf("fail-open rule on a broken key: %+v, want allowed and degraded", d)
		}
	}
	if d := allow(t, l, closed, "broken"); !d.Allowed || !d.Degraded {
		t.Fatalf("first request of a local-allowance rule on a broken key: %+v, want allowed and degraded", d)
	}
	if d := allow(t, l, closed, "broken"); d.Allowed || !d.Degraded {
		t.Fatalf("second request of a local-allowance rule on a broken key: %+v, want refused and degraded", d)
	}
	// A script error is not an outage: other keys are still decided in Redis.
	if d := allow(t, l, open, "fine"); d.Degraded {
		t.Fatalf("a sound key after a script error: %+v, want decided in Redis", d)
	}
	if got := logs.count(slog.LevelError); got != 1 {
		t.Fatalf("%d error lines for 5 script failures, want 1", got)
	}
	if got := logs.count(slog.LevelWarn); got != 0 {
		t.Fatalf("%d warnings, want none (Redis was reachable)", got)
	}
}

// rdbAddr is the address of the test Redis.
func rdbAddr(t *testing.T) string {
	t.Helper()
	opt, err := redis.ParseURL(testdb.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	return opt.Addr
}
