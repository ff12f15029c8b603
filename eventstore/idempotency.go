package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// KeyRecord is the Idempotency-Key row written with a command's events: the first answer to
// (Actor, Key). Result is the command's result as JSON; the position of its last event is added
// by the append.
type KeyRecord struct {
	Actor       string
	Key         string
	RequestHash []byte
	Command     string
	Result      json.RawMessage
}

// StoredKey is a live Idempotency-Key row.
type StoredKey struct {
	RequestHash []byte
	Command     string
	Result      json.RawMessage
	Position    int64
}

// ErrKeyTaken reports that another append stored the same (actor, key) first; nothing was
// appended.
var ErrKeyTaken = errors.New("idempotency key already used")

// keyedSQL wraps an append statement ($1..$11) so that the key row ($12..$16) is inserted by the
// same statement, with the position of the last event: both commit together or neither does.
func keyedSQL(appendSQL string) string {
	return `WITH ev AS (` + appendSQL + `),
k AS (INSERT INTO idempotency_keys (actor, key, request_hash, command, result, position)
      SELECT $12, $13, $14, $15, $16::jsonb, max("offset") FROM ev)
SELECT "offset", uuid FROM ev`
}

var (
	appendKeyedSQL    = keyedSQL(appendSQL)
	appendOneKeyedSQL = keyedSQL(appendOneSQL)
)

// AppendWithKey is Append that also stores key, in the same statement. When another append stored
// the same actor and key first, nothing is appended and the error matches ErrKeyTaken.
func (s *Store) AppendWithKey(ctx context.Context, md Metadata, key KeyRecord, appends ...StreamAppend) (AppendResult, error) {
	if key.Key == "" || len(key.RequestHash) == 0 || key.Command == "" || len(key.Result) == 0 {
		return AppendResult{}, errors.New("eventstore: an idempotency key needs a key, a request hash, a command and a result")
	}
	return s.appendWith(ctx, s.pool, md, &key, appends...)
}

// keyExpired is the SQL condition for a row older than ttl ($3, in microseconds).
const keyExpired = `created_at <= now() - make_interval(secs => $3::bigint / 1e6)`

// LookupKey returns the live row of (actor, key), if there is one. A row older than ttl is
// treated as absent and deleted, so the key can be used again.
func (s *Store) LookupKey(ctx context.Context, actor, key string, ttl time.Duration) (StoredKey, bool, error) {
	var k StoredKey
	err := s.pool.QueryRow(ctx, `WITH expired AS (
	DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2 AND `+keyExpired+`)
SELECT request_hash, command, result, position FROM idempotency_keys
WHERE actor = $1 AND key = $2 AND NOT (`+keyExpired+`)`, actor, key, ttl.Microseconds()).
		Scan(&k.RequestHash, &k.Command, &k.Result, &k.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredKey{}, false, nil
	}
	if err != nil {
		return StoredKey{}, false, fmt.Errorf("looking up idempotency key: %w", err)
	}
	return k, true, nil
}

// DeleteExpiredKeys deletes the Idempotency-Key rows older than ttl and returns how many it
// deleted. It is cheap (an index range scan) and safe to call at any time, from any process.
func (s *Store) DeleteExpiredKeys(ctx context.Context, ttl time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at <= now() - make_interval(secs => $1::bigint / 1e6)`,
		ttl.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("deleting expired idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
