// Package ratelimit limits abuse-prone requests (sign-in, registration, password reset) per
// client address and per account, with one budget shared by every server process through Redis.
// A refused request should be answered 429 Too Many Requests with a Retry-After header of
// Decision.RetryAfterSeconds.
//
// # Algorithm: GCRA in one Lua script
//
// A Rule allows Limit requests per Window as the generic cell rate algorithm (GCRA, the
// leaky bucket as a meter): a burst of Limit, then one more request every Window/Limit. One key
// holds one number, the theoretical arrival time, and one Lua script (run with EVALSHA) reads it,
// decides and writes it back, so the decision is atomic across processes: 50 concurrent requests
// against a limit of 10 from any number of processes get exactly 10 allowances. The script reads
// the time with Redis's TIME, never a process clock, so processes whose clocks disagree still
// share one budget (Redis 5 or newer, which replicates a script's effects). GCRA was chosen over a sliding-window counter because it is exact (the
// two-window counter estimates the previous window's share), keeps O(1) state per key (a
// sliding log keeps one entry per request), gives an exact Retry-After, and refills smoothly: a
// user who mistyped a password five times waits Window/Limit for the next try, not a whole
// Window. The price is that over any single Window up to 2·Limit−1 requests can pass (a full
// burst, then the refill); over longer spans the rate is Limit per Window. Keys expire (PX) when
// the bucket is full again, so an idle key costs nothing.
//
// # Keys hold no personal data
//
// Keys are stored as <prefix>rl:<rule>:<key>, and anyone with access to Redis can read them.
// Callers pass keys that are already safe: never a raw email address, user name or IP address
// (an IP address is personal data too), but HashKey of it under a server-side secret. Allow
// refuses keys that look like an email address (contain '@'). IPv6 clients should be limited
// per /64 (IPSubject), since one subscriber holds a whole /64.
//
// # When Redis is unreachable
//
// Each Rule states its fallback (there is no default, so every rule says which):
//   - FailOpen allows everything while Redis is unreachable: for reads and cheap routes, where
//     refusing would turn a Redis outage into a store outage.
//   - LocalAllowance lets each process allow at most Rule.LocalAllowance requests per key per
//     Window from an in-process sliding log, then refuses: for sign-in and every route that
//     hashes a password or sends mail. With P processes behind a load balancer an attacker gets at
//     most P·LocalAllowance per Window per key during the outage; 0 refuses everything.
//
// Such decisions carry Degraded, and Allow returns a nil error; so do decisions Redis has not
// answered within Config.Timeout (250 ms by default). After a network failure the
// limiter stops asking Redis for a second (decisions stay local and fast, instead of every
// request waiting for a dial timeout), then tries again. Script errors (a key of the wrong type,
// a refused write) fall back the same way, request by request. The outage is logged as a warning
// at most once every ten seconds (with the number of warnings suppressed), and its end once.
//
// # Policies the application should use
//
// DefaultPolicy returns these rules; they are a starting point to tune with the counts of 429s.
// Sign-in checks the address rule first and the account rule only if it passed, counts every
// attempt before the password is checked, and calls Reset on the account rule after a
// successful sign-in, so the account rule counts consecutive failures.
//   - signin_ip: 20 per 5 min (then one per 15 s), local allowance 10. A household or office
//     behind one NAT retries far less; a credential-stuffing bot gets at most 240 tries an hour
//     from one address.
//   - signin_account: 5 per 15 min (then one per 3 min), local allowance 3. Guessing one
//     account's password costs 3 minutes a guess once the burst is spent (at most 480 a day,
//     whatever the number of addresses); a user who mistyped waits 3 minutes, not 15. Keyed by
//     the hashed email whether or not the account exists, so a 429 reveals nothing. Anyone can
//     keep a known account throttled at that pace: that is the accepted cost of a per-account
//     limit, and it never locks the account for longer than 3 minutes after the last attempt.
//   - register_ip: 10 per hour, local allowance 5. Not fail-open although it is no password
//     guess: registration hashes a password (CPU) and sends a mail, so an outage must not open
//     a door to CPU exhaustion or mail bombing; 5 per process an hour keeps real sign-ups going.
//   - reset_ip: 5 per hour, local allowance 3; reset_account: 3 per hour per hashed email,
//     local allowance 1. A reset request sends a mail to the address typed in: the account rule
//     stops anyone from flooding a victim's inbox. Answer the same whether or not the account
//     exists.
//   - reset_confirm_ip: 10 per hour, local allowance 5. Reset tokens are unguessable, so this
//     only bounds the password hashing a client can cause.
//
// Reads (catalog pages, product cards) should not be limited here at all unless abuse shows up;
// if they are, with FailOpen (say 600 per minute per address).
package ratelimit
