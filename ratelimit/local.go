package ratelimit

import (
	"sync"
	"time"
)

// sweepEvery is how often the in-process limiter drops keys whose window has passed.
const sweepEvery = time.Second

// localLimiter is the fallback of LocalAllowance rules while Redis is unreachable: a sliding log
// per key (at most LocalAllowance times, so a few), exact within this process.
type localLimiter struct {
	mu      sync.Mutex
	max     int // keys tracked at most; a new key beyond them is refused
	entries map[string]*localEntry
	sweptAt time.Time
}

// localEntry holds a key's allowed requests within its window, oldest first.
type localEntry struct {
	window time.Duration
	hits   []time.Time
}

func newLocalLimiter(maxKeys int) *localLimiter {
	return &localLimiter{max: maxKeys, entries: make(map[string]*localEntry)}
}

// allow counts one request of key, allowing at most allowance per window. When the limiter
// already tracks its maximum of keys a new key is refused: the fallback is there to fail closed,
// and forgetting old keys would hand their attackers a fresh allowance.
func (ll *localLimiter) allow(key string, allowance int, window time.Duration, now time.Time) Decision {
	refused := Decision{RetryAfter: window}
	if allowance == 0 {
		return refused
	}
	ll.mu.Lock()
	defer ll.mu.Unlock()
	ll.sweep(now)
	e := ll.entries[key]
	if e == nil {
		if len(ll.entries) >= ll.max {
			return refused
		}
		e = &localEntry{window: window}
		ll.entries[key] = e
	}
	e.trim(now)
	if len(e.hits) >= allowance {
		return Decision{RetryAfter: e.hits[0].Add(e.window).Sub(now)}
	}
	e.hits = append(e.hits, now)
	return Decision{Allowed: true, Remaining: allowance - len(e.hits)}
}

// reset forgets key.
func (ll *localLimiter) reset(key string) {
	ll.mu.Lock()
	delete(ll.entries, key)
	ll.mu.Unlock()
}

// sweep drops, at most once per sweepEvery, the keys with no request left in their window.
func (ll *localLimiter) sweep(now time.Time) {
	if now.Sub(ll.sweptAt) < sweepEvery {
		return
	}
	ll.sweptAt = now
	for k, e := range ll.entries {
		if e.trim(now); len(e.hits) == 0 {
			delete(ll.entries, k)
		}
	}
}

// trim drops the requests that left the window.
func (e *localEntry) trim(now time.Time) {
	i := 0
	for i < len(e.hits) && now.Sub(e.hits[i]) >= e.window {
		i++
	}
	if i > 0 {
		e.hits = e.hits[:copy(e.hits, e.hits[i:])]
	}
}
