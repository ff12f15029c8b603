package cards_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/views/cards"
)

// runningCards is a product cards view whose Run loop runs in its own goroutine until the test
// ends (or stop is called).
type runningCards struct {
	*cards.ProductCards
	rdb    *redis.Client
	prefix string
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned, with its result in err
	err    error
}

// encodeCard makes the cards of these tests (the application passes the HTTP API's encoder,
// whose bytes the http tests compare).
func encodeCard(p queries.ProductView) ([]byte, error) { return json.Marshal(p) }

func startCards(t *testing.T, e *projtest.Env, rdb *redis.Client, prefix string) *runningCards {
	t.Helper()
	view, err := cards.New(cards.Config{Pool: e.Pool, Redis: rdb, Encode: encodeCard, Prefix: prefix, Logger: e.Log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningCards{ProductCards: view, rdb: rdb, prefix: prefix, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = view.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return nil.
func (r *runningCards) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("ProductCards.Run returned %v", r.err)
		}
	case <-time.After(projtest.WaitTimeout):
		t.Errorf("ProductCards.Run did not return within %v of its context being cancelled", projtest.WaitTimeout)
	}
}

// waitProjected waits until the products projector has processed position.
func waitProjected(t *testing.T, e *projtest.Env, position int64) {
	t.Helper()
	ok, err := e.Ck.WaitFor(context.Background(), e.Store, catalogproj.ProductsProjector, position, projtest.WaitTimeout)
	if err != nil || !ok {
		t.Fatalf("products projector did not reach position %d: %v, %v", position, ok, err)
	}
}

func (r *runningCards) key(id int64) string { return r.prefix + "product:" + strconv.FormatInt(id, 10) }

// cardMatches reports whether Redis holds exactly the products row's JSON for id (or no card
// when the product does not exist).
func (r *runningCards) cardMatches(e *projtest.Env, id int64) (bool, string) {
	ctx := context.Background()
	card, err := r.rdb.Get(ctx, r.key(id)).Bytes()
	p, qerr := e.Q.Product(ctx, id)
	switch {
	case errors.Is(qerr, domain.ErrNotFound):
		if !errors.Is(err, redis.Nil) {
			return false, fmt.Sprintf("product %d is gone but its card is %q (err %v)", id, card, err)
		}
		return true, ""
	case qerr != nil:
		return false, qerr.Error()
	case err != nil:
		return false, fmt.Sprintf("product %d has no card: %v", id, err)
	}
	want, _ := encodeCard(p)
	if string(card) != string(want) {
		return false, fmt.Sprintf("product %d card\n got %s\nwant %s", id, card, want)
	}
	return true, ""
}

// allCardsMatch reports whether the view holds one card per product, each matching its row, and
// nothing else under its prefix.
func (r *runningCards) allCardsMatch(e *projtest.Env, ids []int64) (bool, string) {
	for _, id := range ids {
		if ok, why := r.cardMatches(e, id); !ok {
			return false, why
		}
	}
	keys, err := r.rdb.Keys(context.Background(), r.prefix+"product:*").Result()
	if err != nil {
		return false, err.Error()
	}
	var live []string
	for _, id := range ids {
		if _, err := e.Q.Product(context.Background(), id); err == nil {
			live = append(live, r.key(id))
		}
	}
	slices.Sort(keys)
	slices.Sort(live)
	if !slices.Equal(keys, live) {
		return false, fmt.Sprintf("card keys %v, want %v", keys, live)
	}
	return true, ""
}

// The Redis product cards follow the products projection: a card appears, changes and
// disappears with its row, Get serves it once the view is ready, a category deletion and a
// rebuild resynchronise the view.
func TestProductCardsFollowProjection(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := t.Context()
	rdb, prefix := testdb.Redis(t)
	projtest.StartEngine(t, e, 0)
	view := startCards(t, e, rdb, prefix)
	projtest.Eventually(t, "view ready", func() (bool, string) { return view.Ready(), "not ready" })

	cat, err := e.Cat.CreateCategory(ctx, projtest.MD, commands.CreateCategory{Name: "lighting"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		ids     []int64
		created int64
	)
	for i := range 4 {
		p, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: fmt.Sprintf("lamp %d", i),
			Description: "warm light", Price: domain.Money(1000 + i), CategoryID: &cat.ID, Stock: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
		created = p.Position
	}

	name, price := "desk lamp", domain.Money(2599)
	steps := []struct {
		name string
		run  func() (int64, error)
	}{
		{"created", func() (int64, error) { return created, nil }},
		{"updated", func() (int64, error) {
			r, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: ids[0], Name: &name, Price: &price})
			return r.Position, err
		}},
		{"stock adjusted", func() (int64, error) {
			r, err := e.Cat.AdjustStock(ctx, projtest.MD, commands.AdjustStock{ID: ids[1], Delta: 7})
			return r.Position, err
		}},
		{"out of stock", func() (int64, error) {
			zero := int64(0)
			r, err := e.Cat.AdjustStock(ctx, projtest.MD, commands.AdjustStock{ID: ids[3], Quantity: &zero})
			return r.Position, err
		}},
		{"deleted", func() (int64, error) { return e.Cat.DeleteProduct(ctx, projtest.MD, ids[2]) }},
		{"category deleted (resync)", func() (int64, error) { return e.Cat.DeleteCategory(ctx, projtest.MD, cat.ID) }},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			pos, err := st.run()
			if err != nil {
				t.Fatal(err)
			}
			waitProjected(t, e, pos)
			projtest.Eventually(t, "cards follow the products table", func() (bool, string) { return view.allCardsMatch(e, ids) })
			if !view.Ready() {
				t.Fatal("view not ready with Redis up")
			}
			for _, id := range ids {
				card, ok := view.Get(ctx, id)
				p, err := e.Q.Product(ctx, id)
				if errors.Is(err, domain.ErrNotFound) {
					if ok {
						t.Errorf("Get(%d) of a deleted product = %s", id, card)
					}
					continue
				}
				want, _ := encodeCard(p)
				if !ok || string(card) != string(want) {
					t.Errorf("Get(%d) = %s, %v; want %s", id, card, ok, want)
				}
			}
		})
	}
	got, err := e.Q.Product(ctx, ids[0])
	if err != nil || got.CategoryID != nil || got.Name != name || got.Price != price {
		t.Fatalf("product %d after the steps: %+v, %v", ids[0], got, err)
	}

	t.Run("rebuild resynchronises", func(t *testing.T) {
		syncs := view.Syncs()
		projtest.Rebuild(t, e, catalogproj.Products{})
		projtest.Eventually(t, "resync after rebuild", func() (bool, string) {
			if view.Syncs() <= syncs {
				return false, "no resync yet"
			}
			return view.allCardsMatch(e, ids)
		})
	})
}

// With Redis down the view never serves and never crashes, and the projection goes on; with
// Redis up, cards removed behind the view's back come back on a resync notification.
func TestProductCardsWithDeadRedis(t *testing.T) {
	t.Run("redis unreachable", func(t *testing.T) {
		e := projtest.NewEnv(t)
		ctx := t.Context()
		dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
		t.Cleanup(func() { _ = dead.Close() })
		projtest.StartEngine(t, e, 0)
		view := startCards(t, e, dead, "tvdead:")

		var last commands.ProductResult
		for i := range 3 {
			p, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: fmt.Sprintf("fan %d", i), Price: 999, Stock: 2})
			if err != nil {
				t.Fatal(err)
			}
			last = p
		}
		upd := "quiet fan"
		if _, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: last.ID, Name: &upd}); err != nil {
			t.Fatal(err)
		}
		projtest.WaitCaughtUp(t, e, projtest.AllProjectors...)
		if p, err := e.Q.Product(ctx, last.ID); err != nil || p.Name != upd {
			t.Fatalf("products table with Redis down: %+v, %v", p, err)
		}
		// The products projector has notified the view of every change by now; give the view's
		// loop a few bounded chances to (wrongly) become ready.
		for range 5 {
			if view.Ready() {
				t.Fatal("view is ready with Redis unreachable")
			}
			if card, ok := view.Get(ctx, last.ID); ok {
				t.Fatalf("Get with Redis unreachable = %s, true", card)
			}
			select {
			case <-view.done:
				t.Fatalf("Run returned %v with Redis unreachable; it must keep running", view.err)
			case <-time.After(100 * time.Millisecond):
			}
		}
		if n := view.Syncs(); n != 0 {
			t.Errorf("%d resyncs completed with Redis unreachable", n)
		}
		view.stop(t)
	})

	t.Run("keys flushed behind the view come back on resync", func(t *testing.T) {
		e := projtest.NewEnv(t)
		ctx := t.Context()
		rdb, prefix := testdb.Redis(t)
		projtest.StartEngine(t, e, 0)
		view := startCards(t, e, rdb, prefix)
		var ids []int64
		for i := range 5 {
			p, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: fmt.Sprintf("cable %d", i), Price: 500, Stock: 3})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, p.ID)
			waitProjected(t, e, p.Position)
		}
		projtest.Eventually(t, "cards written", func() (bool, string) { return view.allCardsMatch(e, ids) })

		keys, err := rdb.Keys(ctx, prefix+"product:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != len(ids) {
			t.Fatalf("%d cards under the test prefix, want %d", len(keys), len(ids))
		}
		if err := rdb.Del(ctx, keys...).Err(); err != nil { // the cards only, not the marker
			t.Fatal(err)
		}
		if _, ok := view.Get(ctx, ids[0]); ok {
			t.Fatal("Get found a card that was deleted")
		}
		syncs := view.Syncs()
		if _, err := e.Pool.Exec(ctx, `SELECT pg_notify($1, $2)`, catalogproj.ProductCardsChannel, projections.ResyncNotification); err != nil {
			t.Fatal(err)
		}
		projtest.Eventually(t, "cards back after a resync notification", func() (bool, string) {
			if view.Syncs() <= syncs {
				return false, "no resync yet"
			}
			return view.allCardsMatch(e, ids)
		})
		if card, ok := view.Get(ctx, ids[0]); !ok || len(card) == 0 {
			t.Errorf("Get after the resync = %s, %v", card, ok)
		}
	})
}
