package eventstore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
)

// Appends that arrive while every writer is busy are written together, and each keeps its own
// outcome: its events at the positions it is told, a clash reported to its own caller only (the
// group's statement fails, and every append of it is written again alone), and an append whose
// caller gave up while it waited is never written.
func TestQueuedAppendsAreGroupedAndKeepTheirOwnOutcomes(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	release := s.HoldWriters()

	type outcome struct {
		res eventstore.AppendResult
		err error
	}
	const n = 40
	outcomes := make([]chan outcome, n)
	for i := range n {
		outcomes[i] = make(chan outcome, 1)
		expected := int64(0)
		if i == 7 {
			expected = 3 // a new stream is not at version 3: a clash
		}
		go func() {
			res, err := s.Append(ctx, eventstore.Metadata{ActorID: fmt.Sprint(i)}, eventstore.StreamAppend{
				StreamID: fmt.Sprintf("g-%d", i), StreamType: "g", ExpectedVersion: expected,
				Events: []eventstore.NewEvent{ev("A", map[string]int{"i": i}), ev("B", map[string]int{"i": i})},
			})
			outcomes[i] <- outcome{res, err}
		}()
	}
	gone, cancel := context.WithCancel(ctx)
	goneDone := make(chan error, 1)
	go func() {
		_, err := s.Append(gone, eventstore.Metadata{}, eventstore.StreamAppend{StreamID: "g-gone", StreamType: "g",
			Events: []eventstore.NewEvent{ev("A", nil)}})
		goneDone <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.QueuedAppends() < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", s.QueuedAppends(), n+1)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-goneDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("an append whose caller gave up: %v, want context.Canceled", err)
	}
	release()

	txs := map[int64]bool{}
	for i := range n {
		o := <-outcomes[i]
		if i == 7 {
			if !errors.Is(o.err, eventstore.ErrConcurrency) {
				t.Fatalf("the clashing append: %v, want a concurrency error", o.err)
			}
			continue
		}
		if o.err != nil {
			t.Fatalf("append %d: %v", i, o.err)
		}
		if len(o.res.Positions) != 2 || o.res.LastPosition != max(o.res.Positions[0], o.res.Positions[1]) {
			t.Fatalf("append %d: result %+v", i, o.res)
		}
		for j, pos := range o.res.Positions {
			e, ok, err := s.EventAt(ctx, pos)
			if err != nil || !ok {
				t.Fatalf("append %d: no event at %d (%v)", i, pos, err)
			}
			if e.StreamID != fmt.Sprintf("g-%d", i) || e.ID != o.res.IDs[j] || e.Version != int64(j+1) {
				t.Fatalf("append %d, event %d: position %d holds %s v%d %s", i, j, pos, e.StreamID, e.Version, e.ID)
			}
			txs[e.TxID] = true
		}
	}
	if len(txs) >= n-1 {
		t.Fatalf("%d appends written in %d transactions: not grouped", n-1, len(txs))
	}
	for _, id := range []string{"g-7", "g-gone"} {
		if evs, err := s.Load(ctx, id); err != nil || len(evs) != 0 {
			t.Fatalf("%s holds %d events (%v), want none", id, len(evs), err)
		}
	}
}

// A group whose statement committed but whose answer was lost is not written again: each of its
// appends is told the outcome is unknown (a transient error, as a lone append's would be), never
// that its own rows are a clash.
func TestGroupWithUnknownOutcomeIsNotWrittenAgain(t *testing.T) {
	db := testdb.New(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := startCutProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 10
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := eventstore.New(eventstore.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	release := s.HoldWriters()
	streams := []string{"cut-1", "cut-2"}
	errs := make([]chan error, len(streams))
	for i, id := range streams {
		errs[i] = make(chan error, 1)
		go func() {
			_, err := s.Append(ctx, eventstore.Metadata{}, eventstore.StreamAppend{StreamID: id, StreamType: "t",
				Events: []eventstore.NewEvent{ev("A", nil)}})
			errs[i] <- err
		}()
	}
	for s.QueuedAppends() < len(streams) {
		time.Sleep(time.Millisecond)
	}
	p.armed.Store(true)
	release()
	for i, id := range streams {
		err := <-errs[i]
		if err == nil || errors.Is(err, eventstore.ErrConcurrency) || !eventstore.Transient(err) {
			t.Fatalf("%s: %v; want a transient error (outcome unknown), not a clash", id, err)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id = $1`, id).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%s holds %d events (%v), want the 1 the group committed", id, n, err)
		}
	}
	if p.cut.Load() != 1 {
		t.Fatalf("the proxy cut %d connections, want 1", p.cut.Load())
	}
}

// cutProxy forwards to Postgres; when armed, it swallows the server's reply to the first
// multi-row INSERT (from its CommandComplete through ReadyForQuery: after the commit) and drops
// the connection, as a network failure at the worst moment would.
type cutProxy struct {
	ln    net.Listener
	armed atomic.Bool
	cut   atomic.Int32
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go p.serverToClient(s, c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *cutProxy) serverToClient(s, c net.Conn) {
	defer c.Close()
	defer s.Close()
	hdr := make([]byte, 5)
	swallowing := false
	for {
		if _, err := io.ReadFull(s, hdr); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
		body := make([]byte, n)
		if _, err := io.ReadFull(s, body); err != nil {
			return
		}
		if hdr[0] == 'C' && p.armed.Load() {
			tag := strings.TrimRight(string(body), "\x00")
			if strings.HasPrefix(tag, "INSERT 0 ") && tag != "INSERT 0 1" && p.armed.CompareAndSwap(true, false) {
				swallowing = true
			}
		}
		if swallowing {
			if hdr[0] == 'Z' { // committed: drop the client
				p.cut.Add(1)
				return
			}
			continue
		}
		if _, err := c.Write(append(hdr, body...)); err != nil {
			return
		}
	}
}
