package eventstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/uuid"
)

// Problem is one inconsistency found by Verify.
type Problem struct {
	StreamID string `json:"stream_id"`
	Version  int64  `json:"version"`
	Position int64  `json:"position"`
	Reason   string `json:"reason"`
}

// VerifyReport summarises a verification of the whole log.
type VerifyReport struct {
	Events   int64     `json:"events"`
	Streams  int64     `json:"streams"`
	Problems []Problem `json:"problems"`
}

// OK reports whether the log verified cleanly.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify recomputes every event's content hash and every stream's hash chain, and checks that
// versions run 1, 2, 3… without gaps. Altered, removed or inserted events show up as problems.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+`, content_hash, metadata::text
		FROM events ORDER BY stream_id, version`)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verifying log: %w", err)
	}
	defer rows.Close()
	var (
		rep      VerifyReport
		stream   string
		prevHash []byte
		prevVer  int64
	)
	for rows.Next() {
		var (
			e        Event
			id       string
			payload  string
			metadata string
			content  []byte
			rawMeta  string
		)
		if err := rows.Scan(&e.Position, &e.TxID, &id, &e.StreamID, &e.StreamType, &e.Version, &e.Type,
			&e.SchemaVersion, &payload, &metadata, &e.RecordedAt, &e.Hash, &content, &rawMeta); err != nil {
			return VerifyReport{}, fmt.Errorf("verifying log: %w", err)
		}
		rep.Events++
		if e.StreamID != stream {
			rep.Streams++
			stream, prevHash, prevVer = e.StreamID, nil, 0
		}
		bad := func(reason string) {
			rep.Problems = append(rep.Problems, Problem{StreamID: e.StreamID, Version: e.Version, Position: e.Position, Reason: reason})
		}
		if e.Version != prevVer+1 {
			bad(fmt.Sprintf("version gap: expected %d", prevVer+1))
		}
		uid, perr := uuid.Parse(id)
		if perr != nil {
			bad("malformed event id")
		}
		want := contentHash(uid, e.StreamID, e.StreamType, e.Version, e.Type, e.SchemaVersion,
			[]byte(payload), []byte(rawMeta), e.RecordedAt)
		if !bytes.Equal(want, content) {
			bad("content does not match its hash")
		}
		if !bytes.Equal(chainHash(prevHash, content), e.Hash) {
			bad("hash chain broken")
		}
		prevHash, prevVer = e.Hash, e.Version
	}
	if err := rows.Err(); err != nil {
		return VerifyReport{}, fmt.Errorf("verifying log: %w", err)
	}
	return rep, nil
}
