package eventstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Seal is one recorded digest of the log: it covers every event up to Cursor in delivery order,
// and chains to the previous seal, so that verification can tell when an event was removed,
// inserted or altered anywhere before the last seal.
type Seal struct {
	// Number counts seals from 1; 0 means there is no seal yet.
	Number int64 `json:"number"`
	// Cursor is the delivery cursor of the last event covered.
	Cursor Cursor `json:"cursor"`
	// Events is how many events this seal covers after the previous seal's cursor.
	Events int64 `json:"events"`
	// TotalEvents is how many events this seal and every earlier one cover.
	TotalEvents int64 `json:"total_events"`
	// Digest is sha256(previous seal's digest || hash of every covered event, in delivery order).
	Digest    []byte    `json:"digest"`
	CreatedAt time.Time `json:"created_at"`
}

// DefaultSealInterval is how often RunSealer seals when given no interval.
const DefaultSealInterval = time.Minute

// sealLockKey is the transaction advisory lock that serialises sealers, so that two of them never
// fork the chain (the seal number's primary key and the insert trigger would refuse a fork anyway).
const sealLockKey = 0x7476_7365_616c // "tvseal"

// newSealDigest starts a seal's digest: sha256(previous seal's digest || event hashes…).
func newSealDigest(prev []byte) hash.Hash {
	h := sha256.New()
	h.Write(prev)
	return h
}

const sealColumns = `seal_no, transaction_id::text::bigint, "offset", event_count, total_events, digest, created_at`

func scanSeal(row rowScanner) (Seal, error) {
	var s Seal
	err := row.Scan(&s.Number, &s.Cursor.TxID, &s.Cursor.Position, &s.Events, &s.TotalEvents, &s.Digest, &s.CreatedAt)
	s.CreatedAt = s.CreatedAt.UTC()
	return s, err
}

// LastSeal returns the newest seal; its Number is 0 when the log has never been sealed.
func (s *Store) LastSeal(ctx context.Context) (Seal, error) {
	return lastSeal(ctx, s.pool)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func lastSeal(ctx context.Context, q queryRower) (Seal, error) {
	seal, err := scanSeal(q.QueryRow(ctx, `SELECT `+sealColumns+` FROM seals ORDER BY seal_no DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return Seal{}, nil
	}
	if err != nil {
		return Seal{}, fmt.Errorf("reading the last seal: %w", err)
	}
	return seal, nil
}

// Seal records a new seal covering every settled event after the last seal: events of
// transactions older than every transaction still running, so that no event can later commit
// before the seal's cursor. It reads only the events since the last seal, and never slows
// appends down (it takes no lock an append takes). Concurrent sealers are serialised; each seal
// extends the one before. When no event has settled since the last seal, nothing is recorded and
// the last seal is returned as it is (a zero Seal when there is none).
func (s *Store) Seal(ctx context.Context) (Seal, error) {
	var seal Seal
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		var err error
		seal, err = sealIn(ctx, tx)
		return err
	})
	if err != nil {
		return Seal{}, fmt.Errorf("sealing the log: %w", err)
	}
	return seal, nil
}

type streamEnd struct {
	version int64
	hash    []byte
}

// sealReadSQL reads the events a new seal covers, after the last seal's cursor ($1 transaction id
// as text, $2 position) and below the settled bound ($3), in delivery order along the primary key
// (the transaction id's output name is not transaction_id: it would capture the ORDER BY and sort
// by the cast).
const sealReadSQL = `SELECT transaction_id::text::bigint AS tx_id, "offset", stream_id, version, hash
FROM events
WHERE (transaction_id, "offset") > ($1::text::xid8, $2) AND transaction_id < $3::text::xid8
ORDER BY events.transaction_id, events."offset"`

func sealIn(ctx context.Context, tx pgx.Tx) (Seal, error) {
	// READ COMMITTED: every statement below sees what committed before it, so after the lock the
	// last seal read is really the last one. The settled bound is taken once: every transaction
	// below it has finished, so each later statement sees the same events below it.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sealLockKey); err != nil {
		return Seal{}, fmt.Errorf("taking the seal lock: %w", err)
	}
	prev, err := lastSeal(ctx, tx)
	if err != nil {
		return Seal{}, err
	}
	var settled string
	if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&settled); err != nil {
		return Seal{}, fmt.Errorf("reading the settled bound: %w", err)
	}
	rows, err := tx.Query(ctx, sealReadSQL, fmt.Sprint(prev.Cursor.TxID), prev.Cursor.Position, settled)
	if err != nil {
		return Seal{}, fmt.Errorf("reading events to seal: %w", err)
	}
	var (
		digest = newSealDigest(prev.Digest)
		next   = Seal{Number: prev.Number + 1, Cursor: prev.Cursor}
		ends   = map[string]streamEnd{}
	)
	for rows.Next() {
		var (
			c       Cursor
			stream  string
			version int64
			h       []byte
		)
		if err := rows.Scan(&c.TxID, &c.Position, &stream, &version, &h); err != nil {
			rows.Close()
			return Seal{}, fmt.Errorf("reading events to seal: %w", err)
		}
		digest.Write(h)
		next.Cursor = c
		next.Events++
		// A stream's versions almost always arrive in order; the highest one is where it ends.
		if end, ok := ends[stream]; !ok || version > end.version {
			ends[stream] = streamEnd{version: version, hash: h}
		}
	}
	if err := rows.Err(); err != nil {
		return Seal{}, fmt.Errorf("reading events to seal: %w", err)
	}
	if next.Events == 0 {
		return prev, nil
	}
	next.TotalEvents = prev.TotalEvents + next.Events
	next.Digest = digest.Sum(nil)
	err = tx.QueryRow(ctx, `INSERT INTO seals (seal_no, transaction_id, "offset", event_count, total_events, digest)
		VALUES ($1, $2::text::xid8, $3, $4, $5, $6) RETURNING created_at`,
		next.Number, fmt.Sprint(next.Cursor.TxID), next.Cursor.Position, next.Events, next.TotalEvents, next.Digest,
	).Scan(&next.CreatedAt)
	if err != nil {
		return Seal{}, fmt.Errorf("recording seal %d: %w", next.Number, err)
	}
	next.CreatedAt = next.CreatedAt.UTC()
	var (
		streams  = make([]string, 0, len(ends))
		versions = make([]int64, 0, len(ends))
		hashes   = make([][]byte, 0, len(ends))
	)
	for id, end := range ends {
		streams = append(streams, id)
		versions = append(versions, end.version)
		hashes = append(hashes, end.hash)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO seal_streams (seal_no, stream_id, version, hash)
		SELECT $1, s, v, h FROM unnest($2::text[], $3::bigint[], $4::bytea[]) AS t(s, v, h)`,
		next.Number, streams, versions, hashes); err != nil {
		return Seal{}, fmt.Errorf("recording the streams of seal %d: %w", next.Number, err)
	}
	return next, nil
}

// RunSealer seals the log every interval (DefaultSealInterval when interval <= 0), starting at
// once, until ctx is done; then it returns nil. A failed seal is logged and tried again at the
// next tick: the next seal covers what this one would have.
func (s *Store) RunSealer(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	if interval <= 0 {
		interval = DefaultSealInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var last int64
	for {
		seal, err := s.Seal(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error("sealing the event log failed", "err", err)
		case seal.Number != last:
			last = seal.Number
			log.Debug("event log sealed", "seal", seal.Number, "position", seal.Cursor.Position,
				"events", seal.Events, "total_events", seal.TotalEvents)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
