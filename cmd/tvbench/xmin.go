package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// xminMonitor watches for transactions of other databases that hold a transaction id. Projector
// delivery waits for transaction_id < pg_snapshot_xmin(pg_current_snapshot()), which is
// cluster-wide: while such a transaction is open, no newer event is delivered in any database of
// the server (see shared/WATERMILL.md). On a shared server this disturbs the lag figure, so the
// benchmark reports what it saw.
type xminMonitor struct {
	mu      sync.Mutex
	held    time.Duration // polls that saw a foreign holder older than 10 ms, times the poll period
	seen    map[string]bool
	longest time.Duration
	what    string
	active  bool
}

func (m *xminMonitor) run(ctx context.Context, conn *pgx.Conn, every time.Duration) error {
	m.seen = map[string]bool{}
	last := time.Now()
	for ctx.Err() == nil {
		rows, err := conn.Query(ctx, `SELECT pid::text || '/' || backend_xid::text, coalesce(datname, ''),
				(extract(epoch FROM clock_timestamp() - xact_start) * 1000)::float8, left(regexp_replace(query, '\s+', ' ', 'g'), 60)
			FROM pg_stat_activity
			WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND datname IS DISTINCT FROM current_database()`)
		if err != nil {
			return err
		}
		type holder struct {
			key, db, query string
			ageMS          float64
		}
		hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (holder, error) {
			var h holder
			return h, r.Scan(&h.key, &h.db, &h.ageMS, &h.query)
		})
		if err != nil {
			return err
		}
		now := time.Now()
		m.mu.Lock()
		if m.active {
			blocking := false
			for _, h := range hs {
				age := time.Duration(h.ageMS * float64(time.Millisecond))
				if age < 10*time.Millisecond {
					continue
				}
				blocking = true
				m.seen[h.key] = true
				if age > m.longest {
					m.longest, m.what = age, fmt.Sprintf("%q in database %s", h.query, h.db)
				}
			}
			if blocking {
				m.held += now.Sub(last)
			}
		}
		m.mu.Unlock()
		last = now
		sleep(ctx, every)
	}
	return nil
}

func (m *xminMonitor) setActive(on bool) {
	m.mu.Lock()
	m.active = on
	m.mu.Unlock()
}

// report describes what was seen; disturbed is true when it may have mattered.
func (m *xminMonitor) report() (text string, disturbed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) == 0 {
		return "none seen", false
	}
	return fmt.Sprintf("%d transactions, holding xmin back for ~%s in all; longest >= %s: %s",
		len(m.seen), m.held.Round(time.Millisecond), m.longest.Round(time.Millisecond), m.what), m.held >= 50*time.Millisecond
}
