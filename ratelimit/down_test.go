package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/ratelimit"
)

func TestRedisDown(t *testing.T) {
	clk := newClock()
	l, logs := newLimiter(t, deadClient(t), "tvtest:down:", clk.Now)
	open := ratelimit.Rule{Name: "catalog_ip", Limit: 2, Window: time.Minute, OnRedisDown: ratelimit.FailOpen}
	signin := ratelimit.Rule{Name: "signin_account", Limit: 5, Window: 15 * time.Minute, OnRedisDown: ratelimit.LocalAllowance, LocalAllowance: 3}
	closed := ratelimit.Rule{Name: "closed", Limit: 5, Window: time.Minute, OnRedisDown: ratelimit.LocalAllowance}
	const key = "5f0c1e2d3a4b"

	t.Run("fail open allows everything", func(t *testing.T) {
		for range 20 {
			if d := allow(t, l, open, key); !d.Allowed || !d.Degraded || d.Remaining != open.Limit {
				t.Fatalf("%+v, want allowed, degraded, %d remaining", d, open.Limit)
			}
		}
	})

	t.Run("local allowance allows exactly N then refuses", func(t *testing.T) {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				d, err := l.Allow(context.Background(), signin, key)
				if err != nil || !d.Degraded {
					t.Errorf("Allow = %+v, %v; want a degraded decision", d, err)
				}
				if d.Allowed {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 3 {
			t.Fatalf("%d of 20 allowed, want the local allowance of 3", allowed.Load())
		}
		d := allow(t, l, signin, key)
		if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > signin.Window {
			t.Fatalf("%+v, want refused with RetryAfter within (0, %v]", d, signin.Window)
		}
		if d := allow(t, l, signin, "another-key"); !d.Allowed || d.Remaining != 2 {
			t.Fatalf("another key: %+v, want allowed with 2 remaining", d)
		}
	})

	t.Run("zero allowance refuses everything", func(t *testing.T) {
		if d := allow(t, l, closed, key); d.Allowed || !d.Degraded || d.RetryAfter != closed.Window {
			t.Fatalf("%+v, want refused, degraded, retry after the window", d)
		}
	})

	t.Run("one warning, key never logged", func(t *testing.T) {
		if got := logs.count(slog.LevelWarn); got != 1 {
			t.Fatalf("%d warnings, want 1", got)
		}
		if logs.mentions(key) {
			t.Fatal("a log line holds the key")
		}
	})

	t.Run("the allowance refills after the window", func(t *testing.T) {
		clk.Advance(signin.Window)
		if d := allow(t, l, signin, key); !d.Allowed || !d.Degraded || d.Remaining != 2 {
			t.Fatalf("%+v, want allowed and degraded with 2 remaining", d)
		}
		// The clock moved past the log interval: the outage is reported again.
		if got := logs.count(slog.LevelWarn); got != 2 {
			t.Fatalf("%d warnings, want 2", got)
		}
	})

	t.Run("Reset forgets the local count", func(t *testing.T) {
		allow(t, l, signin, key)
		allow(t, l, signin, key)
		if allow(t, l, signin, key).Allowed {
			t.Fatal("fourth request allowed")
		}
		if err := l.Reset(context.Background(), signin, key); err == nil {
			t.Fatal("Reset with Redis down returned no error")
		}
		if !allow(t, l, signin, key).Allowed {
			t.Fatal("refused after Reset")
		}
	})
}

func TestLocalFallbackTracksBoundedKeys(t *testing.T) {
	clk := newClock()
	l, _ := newLimiter(t, deadClient(t), "tvtest:down:", clk.Now)
	ratelimit.SetLocalMax(l, 2)
	rule := ratelimit.Rule{Name: "r", Limit: 5, Window: time.Minute, OnRedisDown: ratelimit.LocalAllowance, LocalAllowance: 1}
	allow(t, l, rule, "a")
	allow(t, l, rule, "b")
	if d := allow(t, l, rule, "c"); d.Allowed {
		t.Fatal("a third key was allowed beyond the limiter's two")
	}
	// Once the window has passed, the old keys are swept and new ones fit again.
	clk.Advance(rule.Window)
	if d := allow(t, l, rule, "c"); !d.Allowed {
		t.Fatalf("%+v after the window, want allowed", d)
	}
}

func TestRecoveryAfterOutage(t *testing.T) {
	_, prefix := testdb.Redis(t) // removes the test's keys when it ends
	p := startProxy(t, rdbAddr(t))
	rdb := redis.NewClient(&redis.Options{Addr: p.addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	l, logs := newLimiter(t, rdb, prefix, nil)
	rule := ratelimit.Rule{Name: "signin_ip", Limit: 100, Window: time.Minute, OnRedisDown: ratelimit.LocalAllowance, LocalAllowance: 50}

	if d := allow(t, l, rule, "k"); d.Degraded {
		t.Fatalf("%+v before the outage, want decided in Redis", d)
	}
	p.down()
	if d := allow(t, l, rule, "k"); !d.Allowed || !d.Degraded {
		t.Fatalf("%+v during the outage, want allowed locally", d)
	}
	p.up(t)
	deadline := time.Now().Add(waitTimeout)
	for allow(t, l, rule, "k").Degraded {
		if time.Now().After(deadline) {
			t.Fatalf("decisions still local %v after Redis came back", waitTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w, i := logs.count(slog.LevelWarn), logs.count(slog.LevelInfo); w != 1 || i != 1 {
		t.Fatalf("%d warnings and %d info lines, want one of each (outage, recovery)", w, i)
	}
}

func TestHungRedisFallsBackAfterTimeout(t *testing.T) {
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ContextTimeoutEnabled: true,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := ratelimit.New(ratelimit.Config{Redis: rdb, Prefix: "tvtest:hung:", Timeout: 100 * time.Millisecond,
		Logger: slog.New(&logRecorder{})})
	if err != nil {
		t.Fatal(err)
	}
	rule := ratelimit.Rule{Name: "r", Limit: 5, Window: time.Minute, OnRedisDown: ratelimit.FailOpen}

	done := make(chan ratelimit.Decision, 1)
	go func() {
		d, err := l.Allow(context.Background(), rule, "k")
		if err != nil {
			t.Errorf("Allow: %v", err)
		}
		done <- d
	}()
	select {
	case d := <-done:
		if !d.Allowed || !d.Degraded {
			t.Fatalf("%+v, want allowed by the fail-open fallback", d)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Allow still waiting for a hung Redis after %v (its read timeout is a minute)", waitTimeout)
	}
}
