// Package pii keeps personal data out of the event log in readable form (crypto-shredding).
// Every user has an AES-256 key of their own, stored outside the log in user_keys. Names,
// addresses, phone numbers, image URLs and password hashes are sealed with it before they are
// written into an event; erasing the account deletes the key, after which every copy of those
// values in the log (and in snapshots, and in a replay) is unreadable.
//
// A sealed value is base64(IV ‖ AES-256-CBC(PKCS#7 padded plaintext)), the layout the migration's
// pii_open SQL function decrypts with pgcrypto, so projectors open values inside their
// set-based statements. Integrity comes from the log's hash chains, not from the cipher.
//
// Lookups by value (is this address taken? which account has it?) use Lookup, a keyed HMAC of
// the normalised value, so no readable address ever names a stream.
package pii

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrErased is returned when a value is opened for a user whose key is gone.
var ErrErased = errors.New("pii: the user's key is erased")

// Vault seals and opens personal data with per-user keys kept in Postgres. It caches no key, so
// an erasure by any process takes effect for every process at once.
type Vault struct {
	pool      *pgxpool.Pool
	lookupKey []byte
}

// New returns a vault over pool. lookupKey (at least 32 bytes, secret, stable for the life of
// the store) keys the HMAC of Lookup.
func New(pool *pgxpool.Pool, lookupKey []byte) (*Vault, error) {
	if pool == nil {
		return nil, errors.New("pii: pool is required")
	}
	if len(lookupKey) < 32 {
		return nil, errors.New("pii: the lookup key must have at least 32 bytes")
	}
	return &Vault{pool: pool, lookupKey: bytes.Clone(lookupKey)}, nil
}

// CreateKey makes the key of a new user and returns their box (an existing key is kept).
func (v *Vault) CreateKey(ctx context.Context, userID int64) (Box, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return Box{}, err
	}
	if _, err := v.pool.Exec(ctx, `INSERT INTO user_keys (user_id, key) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		userID, key); err != nil {
		return Box{}, fmt.Errorf("creating the key of user %d: %w", userID, err)
	}
	return v.Box(ctx, userID)
}

// Shred deletes a user's key: everything sealed with it becomes unreadable, for ever.
func (v *Vault) Shred(ctx context.Context, userID int64) error {
	if _, err := v.pool.Exec(ctx, `DELETE FROM user_keys WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("shredding the key of user %d: %w", userID, err)
	}
	return nil
}

// Box returns the user's key for sealing and opening; ErrErased when it is gone. A box lives as
// long as one command or one effect.
func (v *Vault) Box(ctx context.Context, userID int64) (Box, error) {
	var k []byte
	err := v.pool.QueryRow(ctx, `SELECT key FROM user_keys WHERE user_id = $1`, userID).Scan(&k)
	if errors.Is(err, pgx.ErrNoRows) {
		return Box{}, ErrErased
	}
	if err != nil {
		return Box{}, fmt.Errorf("reading the key of user %d: %w", userID, err)
	}
	return Box{key: k}, nil
}

// Box seals and opens one user's values.
type Box struct{ key []byte }

// Seal encrypts plaintext. The empty string seals to itself (nothing to hide).
func (b Box) Seal(plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	if len(b.key) == 0 {
		return "", ErrErased
	}
	return seal(b.key, plaintext)
}

// Open decrypts a sealed value.
func (b Box) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if len(b.key) == 0 {
		return "", ErrErased
	}
	return open(b.key, sealed)
}

// Lookup is the keyed digest of an already normalised value (hex), used where a value must be
// found or reserved without being stored readable.
func (v *Vault) Lookup(normalised string) string {
	m := hmac.New(sha256.New, v.lookupKey)
	m.Write([]byte(normalised))
	return hex.EncodeToString(m.Sum(nil))
}

func seal(key []byte, plaintext string) (string, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, aes.BlockSize+len(plaintext)+pad)
	iv := buf[:aes.BlockSize]
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	body := buf[aes.BlockSize:]
	copy(body, plaintext)
	for i := len(plaintext); i < len(body); i++ {
		body[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(body, body)
	return base64.StdEncoding.EncodeToString(buf), nil
}

var errMalformed = errors.New("pii: malformed sealed value")

func open(key []byte, sealed string) (string, error) {
	buf, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(buf) < 2*aes.BlockSize || len(buf)%aes.BlockSize != 0 {
		return "", errMalformed
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	body := bytes.Clone(buf[aes.BlockSize:])
	cipher.NewCBCDecrypter(block, buf[:aes.BlockSize]).CryptBlocks(body, body)
	pad := int(body[len(body)-1])
	if pad == 0 || pad > aes.BlockSize {
		return "", errMalformed
	}
	for _, b := range body[len(body)-pad:] {
		if int(b) != pad {
			return "", errMalformed
		}
	}
	return string(body[:len(body)-pad]), nil
}
