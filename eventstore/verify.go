package eventstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"hash"
	"math"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Problem is one inconsistency found by Verify. Position and Version are 0 when the problem is
// not about one event still in the log (a missing tail, a seal's digest).
type Problem struct {
	StreamID string `json:"stream_id"`
	Version  int64  `json:"version"`
	Position int64  `json:"position"`
	// Seal is the seal the problem was found in (0: after the last seal, or none).
	Seal   int64  `json:"seal,omitempty"`
	Reason string `json:"reason"`

	// Where the problem lies, to list problems in log order: the seal covering it (MaxInt64 when
	// none does), then how precise it is, then its delivery cursor.
	sealKey int64
	rank    int
	at      Cursor
}

// Ranks of problems found in the same seal: the ones naming one event come first.
const (
	rankSealTable = iota
	rankEvent
	rankStream
	rankDigest
)

// String describes the problem in one line.
func (p Problem) String() string {
	switch {
	case p.Position != 0:
		return fmt.Sprintf("stream %s: event at position %d (version %d): %s", p.StreamID, p.Position, p.Version, p.Reason)
	case p.StreamID != "":
		return fmt.Sprintf("stream %s: %s", p.StreamID, p.Reason)
	}
	return p.Reason
}

// VerifyReport summarises a verification of the whole log.
type VerifyReport struct {
	Events  int64 `json:"events"`
	Streams int64 `json:"streams"`
	// Seals is how many seals were checked; SealedEvents how many events the last one covers.
	// Events after the last seal are checked by their streams' hash chains only.
	Seals        int64     `json:"seals"`
	SealedEvents int64     `json:"sealed_events"`
	Problems     []Problem `json:"problems"`
}

// OK reports whether the log verified cleanly.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 }

// sealedEnd is where a stream ended as of one seal (a seal_streams row).
type sealedEnd struct {
	seal    int64
	version int64
	hash    []byte
}

// Verify checks the whole log and lists its problems in log order, the first one first:
//   - every event's content hash, every stream's hash chain, and versions 1, 2, 3… without gaps;
//   - every seal: its digest is recomputed from the events it covers and the previous seal's
//     digest (an event removed, inserted, altered or reordered before the last seal shows);
//   - every stream's recorded ends: a stream must still have each version a seal recorded, with
//     the recorded hash (a lost tail, a lost stream, or a rewritten chain shows);
//   - every sealed event lies in the seal that recorded its stream reaching its version.
//
// Events appended after the last seal are covered by their streams' chains only.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	// One snapshot for every query: seals made or events appended meanwhile are not half seen.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var err error
			rep, err = verifyIn(ctx, tx)
			return err
		})
	if err != nil {
		return VerifyReport{}, err
	}
	return rep, nil
}

func verifyIn(ctx context.Context, q Querier) (VerifyReport, error) {
	var rep VerifyReport
	seals, err := loadSeals(ctx, q)
	if err != nil {
		return VerifyReport{}, err
	}
	sealed, err := loadSealedEnds(ctx, q)
	if err != nil {
		return VerifyReport{}, err
	}
	rep.Seals = int64(len(seals))
	if len(seals) > 0 {
		rep.SealedEvents = seals[len(seals)-1].TotalEvents
	}
	for i, sl := range seals {
		if sl.Number != int64(i+1) {
			rep.Problems = append(rep.Problems, Problem{Seal: sl.Number, rank: rankSealTable,
				Reason: fmt.Sprintf("seal table: seal %d found where seal %d belongs", sl.Number, i+1)})
		}
		if i > 0 && !seals[i-1].Cursor.Before(sl.Cursor) {
			rep.Problems = append(rep.Problems, Problem{Seal: sl.Number, sealKey: sl.Number, rank: rankSealTable,
				Reason: fmt.Sprintf("seal table: seal %d does not extend seal %d", sl.Number, seals[i-1].Number)})
		}
	}
	if err := verifyChains(ctx, q, seals, sealed, &rep); err != nil {
		return VerifyReport{}, err
	}
	if err := verifySeals(ctx, q, seals, sealed, &rep); err != nil {
		return VerifyReport{}, err
	}
	slices.SortStableFunc(rep.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.sealKey, b.sealKey), cmp.Compare(a.rank, b.rank),
			cmp.Compare(a.at.TxID, b.at.TxID), cmp.Compare(a.at.Position, b.at.Position))
	})
	return rep, nil
}

// sealOf returns the seal whose range holds the cursor (0 when it lies after the last seal).
func sealOf(seals []Seal, c Cursor) int64 {
	i, _ := slices.BinarySearchFunc(seals, c, func(s Seal, c Cursor) int {
		if s.Cursor.Before(c) {
			return -1
		}
		if s.Cursor == c {
			return 0
		}
		return 1
	})
	if i == len(seals) {
		return 0
	}
	return seals[i].Number
}

// keyOf turns a seal number into a sort key: problems after the last seal sort last.
func keyOf(seal int64) int64 {
	if seal == 0 {
		return math.MaxInt64
	}
	return seal
}

func loadSeals(ctx context.Context, q Querier) ([]Seal, error) {
	rows, err := q.Query(ctx, `SELECT `+sealColumns+` FROM seals ORDER BY seal_no`)
	if err != nil {
		return nil, fmt.Errorf("reading seals: %w", err)
	}
	defer rows.Close()
	var out []Seal
	for rows.Next() {
		sl, err := scanSeal(rows)
		if err != nil {
			return nil, fmt.Errorf("reading seals: %w", err)
		}
		out = append(out, sl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading seals: %w", err)
	}
	return out, nil
}

// loadSealedEnds returns, per stream, where each seal recorded it ending, oldest seal first.
func loadSealedEnds(ctx context.Context, q Querier) (map[string][]sealedEnd, error) {
	rows, err := q.Query(ctx, `SELECT stream_id, seal_no, version, hash FROM seal_streams ORDER BY stream_id, seal_no`)
	if err != nil {
		return nil, fmt.Errorf("reading sealed streams: %w", err)
	}
	defer rows.Close()
	out := map[string][]sealedEnd{}
	for rows.Next() {
		var (
			id string
			e  sealedEnd
		)
		if err := rows.Scan(&id, &e.seal, &e.version, &e.hash); err != nil {
			return nil, fmt.Errorf("reading sealed streams: %w", err)
		}
		out[id] = append(out[id], e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading sealed streams: %w", err)
	}
	return out, nil
}

// verifyChains walks every stream in version order: content hashes, hash chains, version gaps,
// and the ends the seals recorded for the stream.
func verifyChains(ctx context.Context, q Querier, seals []Seal, sealed map[string][]sealedEnd, rep *VerifyReport) error {
	rows, err := q.Query(ctx, `SELECT `+eventColumns+`, content_hash, metadata::text
		FROM events ORDER BY stream_id, version`)
	if err != nil {
		return fmt.Errorf("verifying log: %w", err)
	}
	defer rows.Close()
	var (
		stream   string
		prevHash []byte
		prevVer  int64
		altered  bool // a rewritten chain is reported once per stream
		seen     = map[string]bool{}
	)
	endStream := func() {
		if stream != "" {
			seen[stream] = true
			rep.Problems = append(rep.Problems, missingTail(stream, prevVer, sealed[stream])...)
		}
	}
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
			return fmt.Errorf("verifying log: %w", err)
		}
		rep.Events++
		if e.StreamID != stream {
			endStream()
			rep.Streams++
			stream, prevHash, prevVer, altered = e.StreamID, nil, 0, false
		}
		at := Cursor{TxID: e.TxID, Position: e.Position}
		seal := sealOf(seals, at)
		bad := func(reason string) {
			rep.Problems = append(rep.Problems, Problem{StreamID: e.StreamID, Version: e.Version, Position: e.Position,
				Seal: seal, Reason: reason, sealKey: keyOf(seal), rank: rankEvent, at: at})
		}
		if e.Version != prevVer+1 {
			bad(versionGap(prevVer, e.Version))
		}
		uid, perr := uuid.Parse(id)
		if perr != nil {
			bad("malformed event id")
		}
		want := contentHash(uid, e.StreamID, e.StreamType, e.Version, e.Type, e.SchemaVersion,
			[]byte(payload), []byte(rawMeta), e.RecordedAt)
		if !bytes.Equal(want, content) {
			bad("altered: its content does not match its content hash")
		}
		if !bytes.Equal(chainHash(prevHash, content), e.Hash) {
			bad("altered: its hash does not chain to the previous version's")
		}
		if !altered {
			if p, ok := alteredSince(e, sealed[e.StreamID]); ok {
				altered = true
				if p.Position == 0 {
					// The altered event is somewhere in a range: sort the problem by the seal
					// that recorded the range's end.
					p.sealKey, p.rank = p.Seal, rankStream
				} else {
					p.sealKey, p.rank, p.at = keyOf(seal), rankEvent, at
				}
				rep.Problems = append(rep.Problems, p)
			}
		}
		prevHash, prevVer = e.Hash, e.Version
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verifying log: %w", err)
	}
	endStream()
	// Streams a seal recorded that have no event left at all.
	var gone []string
	for id := range sealed {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		rep.Problems = append(rep.Problems, missingTail(id, 0, sealed[id])...)
	}
	return nil
}

func versionGap(prev, got int64) string {
	if got <= prev {
		return fmt.Sprintf("version %d repeats or goes back after version %d", got, prev)
	}
	if got == prev+2 {
		return fmt.Sprintf("version %d is missing (version %d follows version %d)", prev+1, got, prev)
	}
	return fmt.Sprintf("versions %d to %d are missing (version %d follows version %d)", prev+1, got-1, got, prev)
}

// missingTail reports the versions a seal recorded for a stream that now ends at version last
// (0: the stream has no event left).
func missingTail(stream string, last int64, ends []sealedEnd) []Problem {
	i := slices.IndexFunc(ends, func(e sealedEnd) bool { return e.version > last })
	if i < 0 {
		return nil
	}
	first, latest := ends[i], ends[len(ends)-1]
	p := Problem{StreamID: stream, Version: last + 1, Seal: first.seal, sealKey: first.seal, rank: rankStream}
	if last == 0 {
		p.Reason = fmt.Sprintf("the whole stream is missing (sealed at version %d in seal %d)", latest.version, latest.seal)
	} else {
		p.Reason = fmt.Sprintf("events after version %d are missing (sealed at version %d in seal %d)", last, latest.version, latest.seal)
	}
	return []Problem{p}
}

// alteredSince checks an event against the hash a seal recorded for its version, if any. A
// rewritten chain changes every later hash, so the altered event lies after the stream's
// previous recorded end, up to this one.
func alteredSince(e Event, ends []sealedEnd) (Problem, bool) {
	i, found := atVersion(ends, e.Version)
	if !found || bytes.Equal(ends[i].hash, e.Hash) {
		return Problem{}, false
	}
	var from int64 = 1
	if i > 0 {
		from = ends[i-1].version + 1
	}
	p := Problem{StreamID: e.StreamID, Seal: ends[i].seal}
	if from == e.Version {
		p.Version, p.Position = e.Version, e.Position
		p.Reason = fmt.Sprintf("altered or replaced: its hash differs from the one seal %d recorded", ends[i].seal)
		return p, true
	}
	p.Version = from
	p.Reason = fmt.Sprintf("an event from version %d to version %d was altered or replaced (the hash at version %d differs from the one seal %d recorded)",
		from, e.Version, e.Version, ends[i].seal)
	return p, true
}

// verifySealsSQL reads every event up to the last seal's cursor ($1 transaction id as text, $2
// position) in delivery order along the primary key (see sealReadSQL).
const verifySealsSQL = `SELECT transaction_id::text::bigint AS tx_id, "offset", stream_id, version, hash
FROM events WHERE (transaction_id, "offset") <= ($1::text::xid8, $2)
ORDER BY events.transaction_id, events."offset"`

// verifySeals walks the sealed part of the log in delivery order, recomputes each seal's digest
// from the previous seal's, and checks that each event lies in the seal that recorded its stream
// reaching its version.
func verifySeals(ctx context.Context, q Querier, seals []Seal, sealed map[string][]sealedEnd, rep *VerifyReport) error {
	if len(seals) == 0 {
		return nil
	}
	last := seals[len(seals)-1].Cursor
	rows, err := q.Query(ctx, verifySealsSQL, fmt.Sprint(last.TxID), last.Position)
	if err != nil {
		return fmt.Errorf("verifying seals: %w", err)
	}
	defer rows.Close()
	var (
		k      int
		digest hash.Hash
		count  int64
	)
	start := func() {
		var prev []byte
		if k > 0 {
			prev = seals[k-1].Digest
		}
		digest, count = newSealDigest(prev), 0
	}
	finish := func() {
		sl := seals[k]
		var from int64
		if k > 0 {
			from = seals[k-1].Cursor.Position
		}
		if count == sl.Events && bytes.Equal(digest.Sum(nil), sl.Digest) {
			return
		}
		what := "an event was inserted or removed"
		if count == sl.Events {
			what = "an event was altered, replaced or moved"
		}
		rep.Problems = append(rep.Problems, Problem{Seal: sl.Number, sealKey: sl.Number, rank: rankDigest,
			Reason: fmt.Sprintf("seal %d digest mismatch: %s between positions %d and %d (%d events there, %d sealed)",
				sl.Number, what, from, sl.Cursor.Position, count, sl.Events)})
	}
	start()
	for rows.Next() {
		var (
			at      Cursor
			stream  string
			version int64
			h       []byte
		)
		if err := rows.Scan(&at.TxID, &at.Position, &stream, &version, &h); err != nil {
			return fmt.Errorf("verifying seals: %w", err)
		}
		for seals[k].Cursor.Before(at) {
			finish()
			k++
			start()
		}
		digest.Write(h)
		count++
		if reason := misplaced(seals[k].Number, stream, version, sealed[stream]); reason != "" {
			rep.Problems = append(rep.Problems, Problem{StreamID: stream, Version: version, Position: at.Position,
				Seal: seals[k].Number, Reason: reason, sealKey: seals[k].Number, rank: rankEvent, at: at})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verifying seals: %w", err)
	}
	finish()
	for k++; k < len(seals); k++ {
		start()
		finish()
	}
	return nil
}

// misplaced explains why an event in seal's range does not belong there ("" when it does): the
// seal that first recorded its stream at or past its version must be that seal.
func misplaced(seal int64, stream string, version int64, ends []sealedEnd) string {
	i, _ := atVersion(ends, version)
	switch {
	case len(ends) == 0:
		return fmt.Sprintf("inserted: it lies in seal %d's range, but no seal recorded stream %s", seal, stream)
	case i == len(ends):
		return fmt.Sprintf("inserted: it lies in seal %d's range, but the seals recorded stream %s only up to version %d",
			seal, stream, ends[len(ends)-1].version)
	case ends[i].seal != seal:
		return fmt.Sprintf("inserted or moved: it lies in seal %d's range, but seal %d recorded stream %s reaching version %d",
			seal, ends[i].seal, stream, ends[i].version)
	}
	return ""
}

// atVersion finds the first recorded end at or past version (ends run in seal order, so their
// versions never go down).
func atVersion(ends []sealedEnd, version int64) (int, bool) {
	return slices.BinarySearchFunc(ends, version, func(e sealedEnd, v int64) int { return cmp.Compare(e.version, v) })
}
