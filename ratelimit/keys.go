package ratelimit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
)

// HashKey turns a value that is personal data (an email address, a client address) into a key
// Allow accepts: the first 128 bits of HMAC-SHA256(secret, value), in hex. The secret (a
// server-side setting, at least 32 random bytes, the same in every process) stops anyone who
// reads Redis from confirming a guessed email by hashing it. Normalise the value first (trim,
// lower-case an email) so that one account has one key.
func HashKey(secret []byte, value string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// IPSubject is what a client address is limited as: an IPv4 address itself, an IPv6 address's
// /64 (one subscriber holds a whole /64, so per-address limits would not hold it back). Pass it
// through HashKey.
func IPSubject(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.Prefix(64)
	if err != nil { // the zero Addr
		return addr.String()
	}
	return p.String()
}
