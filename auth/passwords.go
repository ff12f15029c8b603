// Package auth holds the cryptographic pieces of sign-in: argon2id password hashes and the
// Ed25519-signed tokens (access, refresh and single-use action tokens). It stores nothing; the
// user aggregate and the session logic decide what a hash or a parsed token means.
//
// Nothing here puts a password, a hash or a token in an error message.
package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"

	"github.com/alexedwards/argon2id"
)

// Params are the argon2id parameters of new hashes and the bound on concurrent hashing.
//
// DefaultParams are OWASP's (Password Storage Cheat Sheet) recommended argon2id minimum:
// m=19456 KiB (19 MiB), t=2, p=1. Of the equivalent settings it lists (46 MiB/t=1, 19 MiB/t=2 …
// 7 MiB/t=5) it trades memory for time evenly: enough memory to make GPU and ASIC guessing
// costly, little enough that a few concurrent sign-ins fit in a small container. p=1 because the server parallelises across
// requests, not within one hash: a lane per request keeps every core busy under load, and adding
// lanes would only make one request faster at the expense of the others.
type Params struct {
	// Memory is the memory cost in KiB (19456).
	Memory uint32
	// Iterations is the time cost, passes over the memory (2).
	Iterations uint32
	// Parallelism is the number of lanes (1). It changes the hash, not only the speed.
	Parallelism uint8
	// SaltLength is the random salt's length in bytes (16).
	SaltLength uint32
	// KeyLength is the derived key's length in bytes (32).
	KeyLength uint32
	// Concurrency bounds the hashes (Hash and every kind of Check) computed at once
	// (0: 2×GOMAXPROCS). It is not part of the hash. Each hash holds Memory KiB while it runs, so
	// the bound caps argon2's memory at Concurrency×Memory (about 76 MiB with the defaults on
	// two cores) however many sign-ins arrive together; the others queue. A hash is pure CPU,
	// so more slots than cores would only add memory; twice the cores leaves slack for the
	// scheduler and GC pauses, so the bound costs no throughput.
	Concurrency int
}

// DefaultParams are the production parameters (see Params).
var DefaultParams = Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// Bounds on the parameters of a stored hash Check accepts. A hash outside them is malformed:
// a damaged or hostile row must not make one Check allocate gigabytes or spin for minutes, nor
// panic (argon2 panics on zero lanes, zero passes or a zero-length key).
const (
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxIterations = 64
	minSaltLength = 8
	minKeyLength  = 16
	maxLength     = 1024 // salt and key bytes
	maxHashLength = 4096 // characters, refused before splitting
)

func (p *Params) setDefaults() {
	if p.Memory == 0 {
		p.Memory = DefaultParams.Memory
	}
	if p.Iterations == 0 {
		p.Iterations = DefaultParams.Iterations
	}
	if p.Parallelism == 0 {
		p.Parallelism = DefaultParams.Parallelism
	}
	if p.SaltLength == 0 {
		p.SaltLength = DefaultParams.SaltLength
	}
	if p.KeyLength == 0 {
		p.KeyLength = DefaultParams.KeyLength
	}
	if p.Concurrency == 0 {
		p.Concurrency = 2 * runtime.GOMAXPROCS(0)
	}
}

// Validate reports parameters that cannot make a sound hash. Zero fields take their defaults
// first (NewPasswords does that), so Validate only sees values someone chose.
func (p Params) Validate() error {
	switch {
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemory:
		return fmt.Errorf("auth: argon2id memory must be between 8×parallelism and %d KiB, got %d", maxMemory, p.Memory)
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("auth: argon2id iterations must be between 1 and %d, got %d", maxIterations, p.Iterations)
	case p.Parallelism < 1:
		return errors.New("auth: argon2id parallelism must be at least 1")
	case p.SaltLength < 16 || p.SaltLength > maxLength:
		return fmt.Errorf("auth: argon2id salt length must be between 16 and %d bytes, got %d", maxLength, p.SaltLength)
	case p.KeyLength < minKeyLength || p.KeyLength > maxLength:
		return fmt.Errorf("auth: argon2id key length must be between %d and %d bytes, got %d", minKeyLength, maxLength, p.KeyLength)
	case p.Concurrency < 0:
		return errors.New("auth: concurrency is negative")
	}
	return nil
}

// ErrMalformedHash is returned by Check for a stored hash that is not an argon2id hash this
// package can verify (wrong format, variant or version, or parameters out of bounds).
var ErrMalformedHash = errors.New("auth: malformed password hash")

// Passwords hashes and checks passwords with argon2id. It is safe for concurrent use; at most
// Params.Concurrency hashes run at once and the other callers wait their turn (or their
// context's end).
type Passwords struct {
	params argon2id.Params
	sem    chan struct{}
	// dummy is a hash of a random password with the same params: CheckUnknown verifies
	// against it, so an unknown account costs what a known one does.
	dummy string
}

// NewPasswords returns a Passwords hashing with p (zero fields take DefaultParams'). It computes
// one hash (the dummy CheckUnknown verifies against), so it takes as long as one Hash.
func NewPasswords(p Params) (*Passwords, error) {
	p.setDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	pw := &Passwords{
		params: argon2id.Params{
			Memory:      p.Memory,
			Iterations:  p.Iterations,
			Parallelism: p.Parallelism,
			SaltLength:  p.SaltLength,
			KeyLength:   p.KeyLength,
		},
		sem: make(chan struct{}, p.Concurrency),
	}
	dummy, err := argon2id.CreateHash(rand.Text(), &pw.params)
	if err != nil {
		return nil, fmt.Errorf("auth: hashing the dummy password: %w", err)
	}
	pw.dummy = dummy
	return pw, nil
}

// acquire takes a hashing slot, or returns ctx's error when ctx ends first.
func (p *Passwords) acquire(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("auth: waiting to hash: %w", ctx.Err())
	}
}

func (p *Passwords) release() { <-p.sem }

// Hash returns the argon2id hash of pw in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$key), with a fresh random salt.
func (p *Passwords) Hash(ctx context.Context, pw string) (string, error) {
	if err := p.acquire(ctx); err != nil {
		return "", err
	}
	defer p.release()
	h, err := argon2id.CreateHash(pw, &p.params)
	if err != nil {
		return "", fmt.Errorf("auth: hashing a password: %w", err)
	}
	return h, nil
}

// Check reports whether pw matches hash, in constant time. A hash that is not a sound argon2id
// hash is ErrMalformedHash, never a match. A hash made with other parameters is verified with
// its own (and takes their time): see NeedsRehash.
func (p *Passwords) Check(ctx context.Context, pw, hash string) (bool, error) {
	if _, err := decode(hash); err != nil {
		return false, err
	}
	if err := p.acquire(ctx); err != nil {
		return false, err
	}
	defer p.release()
	ok, err := argon2id.ComparePasswordAndHash(pw, hash)
	if err != nil { // decode accepted it, so this is not expected
		return false, ErrMalformedHash
	}
	return ok, nil
}

// CheckUnknown does what Check does, against a hash no password matches, and returns false: a
// sign-in for an unknown email calls it where a known one calls Check, so both answer in the
// same time. Its error is only ever ctx's.
func (p *Passwords) CheckUnknown(ctx context.Context, pw string) (bool, error) {
	if err := p.acquire(ctx); err != nil {
		return false, err
	}
	defer p.release()
	_, err := argon2id.ComparePasswordAndHash(pw, p.dummy)
	if err != nil {
		return false, fmt.Errorf("auth: checking against the dummy hash: %w", err)
	}
	return false, nil
}

// NeedsRehash reports whether hash was made with other parameters than the current ones (or is
// malformed): after a successful Check, store a fresh Hash of the same password.
func (p *Passwords) NeedsRehash(hash string) bool {
	params, err := decode(hash)
	if err != nil {
		return true
	}
	return params.Memory != p.params.Memory ||
		params.Iterations != p.params.Iterations ||
		params.Parallelism != p.params.Parallelism ||
		params.SaltLength != p.params.SaltLength ||
		params.KeyLength != p.params.KeyLength
}

// decode parses hash and checks its parameters are within bounds (ErrMalformedHash otherwise).
func decode(hash string) (*argon2id.Params, error) {
	if len(hash) > maxHashLength {
		return nil, ErrMalformedHash
	}
	params, _, _, err := argon2id.DecodeHash(hash)
	if err != nil {
		return nil, ErrMalformedHash
	}
	if params.Parallelism < 1 || params.Iterations < 1 || params.Iterations > maxIterations ||
		params.Memory < 8*uint32(params.Parallelism) || params.Memory > maxMemory ||
		params.SaltLength < minSaltLength || params.SaltLength > maxLength ||
		params.KeyLength < minKeyLength || params.KeyLength > maxLength {
		return nil, ErrMalformedHash
	}
	return params, nil
}
