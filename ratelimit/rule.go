package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Fallback says how a Rule decides while Redis is unreachable.
type Fallback int

const (
	// FailOpen allows every request while Redis is unreachable: for reads and cheap routes.
	FailOpen Fallback = iota + 1
	// LocalAllowance lets each process allow at most Rule.LocalAllowance requests per key per
	// Window from an in-process limiter while Redis is unreachable, then refuse: for sign-in
	// and routes that hash passwords or send mail.
	LocalAllowance
)

// String names the fallback (for logs).
func (f Fallback) String() string {
	switch f {
	case FailOpen:
		return "fail_open"
	case LocalAllowance:
		return "local_allowance"
	}
	return fmt.Sprintf("Fallback(%d)", int(f))
}

// Rule is one limit: Limit requests per Window per key (a burst of Limit, then one request
// every Window/Limit; see the package doc).
type Rule struct {
	// Name identifies the rule in keys and logs: 1 to 64 of [A-Za-z0-9_.-], unique per rule.
	Name   string
	Limit  int
	Window time.Duration // at least a millisecond, and at least Limit microseconds
	// OnRedisDown is how the rule decides while Redis is unreachable; it must be set.
	OnRedisDown Fallback
	// LocalAllowance is, with OnRedisDown LocalAllowance, how many requests per key per Window
	// each process allows while Redis is unreachable (0 to Limit; 0 refuses all). It must be 0
	// with FailOpen.
	LocalAllowance int
}

// Validate reports whether the rule can be applied.
func (r Rule) Validate() error {
	if err := validName(r.Name); err != nil {
		return err
	}
	switch {
	case r.Limit < 1:
		return fmt.Errorf("ratelimit: rule %s: limit %d is not positive", r.Name, r.Limit)
	case r.Window < time.Millisecond:
		return fmt.Errorf("ratelimit: rule %s: window %v is shorter than a millisecond", r.Name, r.Window)
	case r.Window.Microseconds() < int64(r.Limit):
		return fmt.Errorf("ratelimit: rule %s: window %v is shorter than a microsecond per request", r.Name, r.Window)
	}
	switch r.OnRedisDown {
	case FailOpen:
		if r.LocalAllowance != 0 {
			return fmt.Errorf("ratelimit: rule %s: a fail-open rule has no local allowance", r.Name)
		}
	case LocalAllowance:
		if r.LocalAllowance < 0 || r.LocalAllowance > r.Limit {
			return fmt.Errorf("ratelimit: rule %s: local allowance %d is outside 0..%d", r.Name, r.LocalAllowance, r.Limit)
		}
	default:
		return fmt.Errorf("ratelimit: rule %s: OnRedisDown must be FailOpen or LocalAllowance, not %v", r.Name, r.OnRedisDown)
	}
	return nil
}

// interval is the rule's emission interval in microseconds (Window/Limit, rounded up so the
// shared limit is never looser than stated).
func (r Rule) interval() int64 {
	w := r.Window.Microseconds()
	return (w + int64(r.Limit) - 1) / int64(r.Limit)
}

// maxName and maxKey bound the parts of a Redis key.
const (
	maxName = 64
	maxKey  = 256
)

func validName(name string) error {
	if name == "" || len(name) > maxName {
		return fmt.Errorf("ratelimit: rule name %q must have 1 to %d characters", name, maxName)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("ratelimit: rule name %q may only hold letters, digits, '_', '.' and '-'", name)
		}
	}
	return nil
}

// nameByte reports whether c may appear in a rule name.
func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// validKey checks a caller's key. The error never quotes the key: it may be personal data.
func validKey(key string) error {
	if key == "" || len(key) > maxKey {
		return fmt.Errorf("a key must have 1 to %d bytes", maxKey)
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '@':
			return errors.New("the key looks like an email address; pass HashKey of it")
		case c <= ' ' || c == 0x7f:
			return errors.New("the key holds a space or control character")
		}
	}
	return nil
}

// Decision is the outcome of Allow.
type Decision struct {
	Allowed bool
	// Remaining is how many more requests the key may make right now (0 when refused). A
	// degraded fail-open decision keeps no count and reports Limit.
	Remaining int
	// RetryAfter is, when refused, how long until the next request would be allowed (more than
	// zero, at most the rule's Window); 0 when allowed.
	RetryAfter time.Duration
	// Degraded is true when the decision was made in this process because Redis was unreachable
	// (or the script failed), by the rule's fallback.
	Degraded bool
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, for a Retry-After header: at
// least 1 when the request was refused, 0 when it was allowed.
func (d Decision) RetryAfterSeconds() int {
	if d.Allowed {
		return 0
	}
	return max(int((d.RetryAfter+time.Second-1)/time.Second), 1)
}
