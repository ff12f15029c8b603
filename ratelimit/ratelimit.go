package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcra is the shared decision: KEYS[1] holds the key's theoretical arrival time (TAT) in Redis
// microseconds; ARGV[1] is the emission interval in microseconds, ARGV[2] the limit. A request is
// allowed when, counted, the TAT stays within limit·interval of now. It returns {allowed,
// remaining, retry_after_us}.
//
// Numbers are written with %.0f: Lua would otherwise print a 16-digit TAT as 1.7e+15.
var gcra = redis.NewScript(`
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local horizon = interval * limit
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local ahead = tat + interval - now
if ahead > horizon then
  return {0, 0, ahead - horizon}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', string.format('%.0f', math.ceil(ahead / 1000)))
return {1, math.floor((horizon - ahead) / interval), 0}
`)

// Timing of the fallback.
const (
	probeEvery = time.Second      // how long Redis is left alone after a network failure
	logEvery   = 10 * time.Second // at most one warning (and one error) log line per this
	maxLocal   = 100_000          // keys the in-process limiter tracks at most
)

// Config configures a Limiter.
type Config struct {
	Redis  *redis.Client
	Prefix string // key prefix, "techvault:" by default
	Logger *slog.Logger
	// Timeout bounds how long one decision waits for Redis before the rule's fallback decides
	// (250 ms by default). It bounds dialling and waiting for a pooled connection; it bounds a
	// hung server's reply only if the client has ContextTimeoutEnabled (otherwise its
	// ReadTimeout does).
	Timeout time.Duration
	// Now is the process clock of the in-process fallback, of the pause after a network failure
	// and of log throttling (tests only; time.Now by default). Shared decisions use Redis's clock.
	Now func() time.Time
}

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	if c.Redis == nil {
		return errors.New("ratelimit: a Redis client is required")
	}
	if c.Timeout < 0 {
		return fmt.Errorf("ratelimit: timeout %v is negative", c.Timeout)
	}
	return nil
}

// Limiter applies rules to keys. It is safe for concurrent use; every process builds its own
// and they share budgets through Redis.
type Limiter struct {
	rdb     *redis.Client
	prefix  string
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	local   *localLimiter

	// downUntil (Unix nanoseconds) is when Redis may be tried again after a network failure.
	downUntil atomic.Int64
	// down is true from a network failure until Redis answers again.
	down     atomic.Bool
	warnLog  throttle // Redis unreachable
	errorLog throttle // script failed
}

// New returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "techvault:"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 250 * time.Millisecond
	}
	return &Limiter{rdb: cfg.Redis, prefix: cfg.Prefix, log: cfg.Logger.With("component", "ratelimit"),
		now: cfg.Now, timeout: cfg.Timeout, local: newLocalLimiter(maxLocal)}, nil
}

// Key is the Redis key of rule and key: <prefix>rl:<rule>:<key>.
func (l *Limiter) Key(rule Rule, key string) string {
	return l.prefix + "rl:" + rule.Name + ":" + key
}

// Allow counts one request of key against rule and says whether it may proceed. key must hold no
// personal data (see HashKey). While Redis is unreachable, or when the script fails, the rule's
// fallback decides (Decision.Degraded) and the error is nil; so it does when Redis has not
// answered within Config.Timeout. Allow returns an error only for an invalid rule or key, or when
// ctx itself ended before Redis answered.
func (l *Limiter) Allow(ctx context.Context, rule Rule, key string) (Decision, error) {
	if err := rule.Validate(); err != nil {
		return Decision{}, err
	}
	if err := validKey(key); err != nil {
		return Decision{}, fmt.Errorf("ratelimit: rule %s: %w", rule.Name, err)
	}
	rkey := l.Key(rule, key)
	if l.now().UnixNano() < l.downUntil.Load() {
		return l.fallback(rule, rkey), nil
	}
	rctx, cancel := context.WithTimeout(ctx, l.timeout)
	d, err := l.shared(rctx, rule, rkey)
	cancel()
	if err == nil {
		if l.down.Load() && l.down.CompareAndSwap(true, false) {
			l.log.Info("redis reachable again; rate limits are shared across processes")
		}
		return d, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return Decision{}, fmt.Errorf("ratelimit: rule %s: %w", rule.Name, ctxErr)
	}
	l.failed(rule, err)
	return l.fallback(rule, rkey), nil
}

// shared decides in Redis.
func (l *Limiter) shared(ctx context.Context, rule Rule, rkey string) (Decision, error) {
	cmd := gcra.Run(ctx, l.rdb, []string{rkey}, rule.interval(), rule.Limit)
	if err := cmd.Err(); err != nil {
		return Decision{}, err
	}
	r, err := cmd.Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %w", errBadReply, err)
	}
	if len(r) != 3 {
		return Decision{}, fmt.Errorf("%w: %d values, not 3", errBadReply, len(r))
	}
	return Decision{Allowed: r[0] == 1, Remaining: int(r[1]), RetryAfter: time.Duration(r[2]) * time.Microsecond}, nil
}

// failed notes a failed shared decision: a network failure leaves Redis alone for probeEvery.
func (l *Limiter) failed(rule Rule, err error) {
	now := l.now()
	if unreachable(err) {
		l.downUntil.Store(now.Add(probeEvery).UnixNano())
		l.down.Store(true)
		if suppressed, ok := l.warnLog.allow(now); ok {
			l.log.Warn("redis unreachable; rate limits are decided in this process by each rule's fallback",
				"rule", rule.Name, "fallback", rule.OnRedisDown.String(), "err", err, "suppressed", suppressed)
		}
		return
	}
	if suppressed, ok := l.errorLog.allow(now); ok {
		l.log.Error("rate limit script failed; decided in this process by the rule's fallback",
			"rule", rule.Name, "fallback", rule.OnRedisDown.String(), "err", err, "suppressed", suppressed)
	}
}

// fallback decides in this process.
func (l *Limiter) fallback(rule Rule, rkey string) Decision {
	if rule.OnRedisDown == FailOpen {
		return Decision{Allowed: true, Remaining: rule.Limit, Degraded: true}
	}
	d := l.local.allow(rkey, rule.LocalAllowance, rule.Window, l.now())
	d.Degraded = true
	return d
}

// Reset forgets key's count under rule, in Redis and in this process (after a successful
// sign-in, the account's failed attempts). It returns Redis's error, which the caller may only
// log: the count then expires on its own.
func (l *Limiter) Reset(ctx context.Context, rule Rule, key string) error {
	if err := rule.Validate(); err != nil {
		return err
	}
	if err := validKey(key); err != nil {
		return fmt.Errorf("ratelimit: rule %s: %w", rule.Name, err)
	}
	rkey := l.Key(rule, key)
	l.local.reset(rkey)
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := l.rdb.Del(ctx, rkey).Err(); err != nil {
		return fmt.Errorf("ratelimit: resetting a key of rule %s: %w", rule.Name, err)
	}
	return nil
}

// unreachable reports whether err means Redis cannot serve now (network, pool, or a server
// that is loading, read-only or out of memory) rather than that the script failed.
func unreachable(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		// Not a reply from Redis: dial, timeout (Config.Timeout included), EOF, closed
		// client, pool exhausted.
		return !errors.Is(err, errBadReply)
	}
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsMaxClientsError(err) ||
		redis.IsOOMError(err)
}

// errBadReply marks a reply of the wrong shape (a script error, not an outage).
var errBadReply = errors.New("ratelimit: unexpected script reply")

// throttle lets one log line through per logEvery and counts the others.
type throttle struct {
	last       atomic.Int64 // Unix nanoseconds of the last line let through; 0 before
	suppressed atomic.Int64
}

// allow reports whether a line may be logged now, and how many were suppressed since the last.
func (t *throttle) allow(now time.Time) (suppressed int64, ok bool) {
	n := now.UnixNano()
	last := t.last.Load()
	if (last != 0 && n-last < int64(logEvery)) || !t.last.CompareAndSwap(last, n) {
		t.suppressed.Add(1)
		return 0, false
	}
	return t.suppressed.Swap(0), true
}
