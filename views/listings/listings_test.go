package listings_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/views/listings"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// load reads a listing from Postgres as the application does (the HTTP API passes its own
// encoder; these tests encode the query views as they are).
func load(e *projtest.Env, key listings.Key) func(context.Context) (listings.Page, error) {
	return func(ctx context.Context) (listings.Page, error) {
		var cat *int64
		if key.Category != 0 {
			cat = &key.Category
		}
		h, err := e.Q.ListingHead(ctx, cat, key.Sort, listings.HeadLength)
		if err != nil {
			return listings.Page{}, err
		}
		p := listings.Page{Cursors: h.Cursors, More: h.More}
		if h.Category != nil {
			p.Header, _ = json.Marshal(h.Category)
		}
		for _, v := range h.Items {
			b, _ := json.Marshal(v)
			p.Items = append(p.Items, b)
		}
		return p, nil
	}
}

// fixture is a catalog of two categories with products in each and one without.
type fixture struct {
	e         *projtest.Env
	cats      [2]int64
	products  []int64 // 0-4 in cats[0], 5-9 in cats[1], 10-11 uncategorised
	lastWrite int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := projtest.NewEnv(t)
	f := &fixture{e: e}
	ctx := t.Context()
	for i := range f.cats {
		c, err := e.Cat.CreateCategory(ctx, projtest.MD, commands.CreateCategory{Name: fmt.Sprintf("Shelf %d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		f.cats[i] = c.ID
	}
	for i := range 12 {
		cmd := commands.CreateProduct{Name: fmt.Sprintf("Item %02d", i), Price: domain.Money(1000 + 100*i), Stock: 5}
		if i < 10 {
			cmd.CategoryID = &f.cats[i/5]
		}
		p, err := e.Cat.CreateProduct(ctx, projtest.MD, cmd)
		if err != nil {
			t.Fatal(err)
		}
		f.products = append(f.products, p.ID)
		f.lastWrite = p.Position
	}
	return f
}

func (f *fixture) wait(t *testing.T, pos int64) {
	t.Helper()
	for _, p := range []string{catalogproj.ProductsProjector, catalogproj.CategoriesProjector} {
		ok, err := f.e.Ck.WaitFor(context.Background(), f.e.Store, p, pos, projtest.WaitTimeout)
		if err != nil || !ok {
			t.Fatalf("%s did not reach %d: %v %v", p, pos, ok, err)
		}
	}
}

func startView(t *testing.T, e *projtest.Env, rdb *redis.Client, prefix string) *listings.Listings {
	t.Helper()
	v, err := listings.New(listings.Config{Pool: e.Pool, Redis: rdb, Prefix: prefix, Logger: e.Log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(projtest.WaitTimeout):
			t.Error("Run did not return")
		}
	})
	return v
}

func waitReady(t *testing.T, v *listings.Listings) {
	t.Helper()
	projtest.Eventually(t, "the listings view serves", func() (bool, string) { return v.Ready(), "" })
}

// get reads key through the view and checks it against Postgres; it returns the source.
func get(t *testing.T, e *projtest.Env, v *listings.Listings, key listings.Key) (listings.Page, listings.Source) {
	t.Helper()
	p, src, err := v.Get(context.Background(), key, load(e, key))
	if err != nil {
		t.Fatalf("Get %+v: %v", key, err)
	}
	return p, src
}

func same(a, b listings.Page) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func fresh(t *testing.T, e *projtest.Env, key listings.Key) listings.Page {
	t.Helper()
	p, err := load(e, key)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// eventuallyFresh polls key until the view itself answers what Postgres holds, then checks that
// no read answers anything older. (A fresh listing stored before the change's notification
// arrived may still be dropped by it: the next read then reads Postgres again.)
func eventuallyFresh(t *testing.T, f *fixture, v *listings.Listings, key listings.Key) {
	t.Helper()
	want := fresh(t, f.e, key)
	projtest.Eventually(t, fmt.Sprintf("listing %+v follows the change", key), func() (bool, string) {
		p, src := get(t, f.e, v, key)
		return same(p, want) && src == listings.FromView, ""
	})
	for range 5 {
		if p, src := get(t, f.e, v, key); !same(p, want) {
			t.Fatalf("listing %+v (source %v) is older than Postgres after the view followed the change", key, src)
		}
	}
}

// Listings are stored on the first read and served from the view after; every kind of change
// (price, stock, name, a move between categories, a category's rename, a deletion) reaches the
// listings it touches, and only through the notifications of the projectors' commits.
func TestListingsFollowTheLog(t *testing.T) {
	f := newFixture(t)
	e, ctx := f.e, t.Context()
	projtest.StartEngine(t, e, 0)
	f.wait(t, f.lastWrite)
	rdb, prefix := testdb.Redis(t)
	v := startView(t, e, rdb, prefix)
	waitReady(t, v)

	keys := []listings.Key{{Category: f.cats[0], Sort: "-price"}, {Category: f.cats[1], Sort: "-price"},
		{Category: f.cats[0], Sort: "name"}, {Sort: "-price"}, {Sort: ""}, {Category: f.cats[1], Sort: "-created_at"}}
	for _, k := range keys {
		p, src := get(t, e, v, k)
		if src != listings.FromPostgres || !same(p, fresh(t, e, k)) {
			t.Fatalf("first read of %+v: source %v", k, src)
		}
		p, src = get(t, e, v, k)
		if src != listings.FromView || !same(p, fresh(t, e, k)) {
			t.Fatalf("second read of %+v: source %v, same as Postgres %t", k, src, same(p, fresh(t, e, k)))
		}
	}
	// A write behind the projector's back (no notification) stays unseen: the view serves.
	if _, err := e.Pool.Exec(ctx, `UPDATE products SET name = 'Sneaky' WHERE id = $1`, f.products[0]); err != nil {
		t.Fatal(err)
	}
	if p, src := get(t, e, v, keys[0]); src != listings.FromView || same(p, fresh(t, e, keys[0])) {
		t.Fatalf("a change without a notification shows (source %v): the view does not serve", src)
	}

	steps := []struct {
		name    string
		do      func() (int64, error)
		touches []listings.Key
	}{
		{"price", func() (int64, error) {
			r, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: f.products[1], Price: ptr(domain.Money(99900))})
			return r.Position, err
		}, []listings.Key{keys[0], keys[2], keys[3], keys[4]}},
		{"stock", func() (int64, error) {
			r, err := e.Cat.AdjustStock(ctx, projtest.MD, commands.AdjustStock{ID: f.products[6], Quantity: ptr(int64(0))})
			return r.Position, err
		}, []listings.Key{keys[1], keys[3], keys[5]}},
		{"move to the other category", func() (int64, error) {
			r, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: f.products[2], CategoryID: &f.cats[1]})
			return r.Position, err
		}, []listings.Key{keys[0], keys[1], keys[2], keys[5]}},
		{"out of every category", func() (int64, error) {
			r, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: f.products[7], ClearCategory: true})
			return r.Position, err
		}, []listings.Key{keys[1], keys[5]}},
		{"category renamed", func() (int64, error) {
			r, err := e.Cat.UpdateCategory(ctx, projtest.MD, commands.UpdateCategory{ID: f.cats[1], Name: ptr("Renamed shelf")})
			return r.Position, err
		}, []listings.Key{keys[1], keys[5]}},
		{"product deleted", func() (int64, error) {
			return e.Cat.DeleteProduct(ctx, projtest.MD, f.products[3])
		}, []listings.Key{keys[0], keys[2]}},
		{"category deleted (a resync)", func() (int64, error) {
			return e.Cat.DeleteCategory(ctx, projtest.MD, f.cats[0])
		}, []listings.Key{keys[3], keys[4]}},
	}
	for _, s := range steps {
		pos, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		f.wait(t, pos)
		for _, k := range s.touches {
			eventuallyFresh(t, f, v, k)
		}
		if s.name == "category renamed" {
			p, _ := get(t, e, v, keys[1])
			var h queries.CategoryView
			if err := json.Unmarshal(p.Header, &h); err != nil || h.Name != "Renamed shelf" {
				t.Fatalf("category page header %s", p.Header)
			}
		}
	}
	// The deleted category's page has no header and is not stored.
	for range 2 {
		if p, src := get(t, e, v, keys[0]); p.Header != nil || len(p.Items) != 0 || src != listings.FromPostgres {
			t.Fatalf("deleted category's page: %s, %d items, source %v", p.Header, len(p.Items), src)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// A read that raced with a change never stores what it read before the change: the view answers
// the old listing to that read (it began before the change), and the new one after.
func TestListingsNeverStoreAReadOlderThanAnInvalidation(t *testing.T) {
	f := newFixture(t)
	e, ctx := f.e, t.Context()
	projtest.StartEngine(t, e, 0)
	f.wait(t, f.lastWrite)
	rdb, prefix := testdb.Redis(t)
	v := startView(t, e, rdb, prefix)
	waitReady(t, v)
	key := listings.Key{Category: f.cats[0], Sort: "price"}
	genKey := prefix + "listings:gen:" + fmt.Sprint(f.cats[0])

	var stale listings.Page
	slowLoad := func(ctx context.Context) (listings.Page, error) {
		p, err := load(e, key)(ctx)
		if err != nil {
			return p, err
		}
		stale = p
		// The change commits and its invalidation runs while this read is still on its way.
		before, _ := rdb.Get(ctx, genKey).Result()
		r, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: f.products[0], Price: ptr(domain.Money(1))})
		if err != nil {
			return p, err
		}
		f.wait(t, r.Position)
		projtest.Eventually(t, "the invalidation ran", func() (bool, string) {
			after, _ := rdb.Get(ctx, genKey).Result()
			return after != before, ""
		})
		return p, nil
	}
	p, src, err := v.Get(ctx, key, slowLoad)
	if err != nil || src != listings.FromPostgres || !same(p, stale) {
		t.Fatalf("racing read: %v, source %v", err, src)
	}
	n, err := rdb.HLen(ctx, prefix+"listings:page:"+fmt.Sprint(f.cats[0])).Result()
	if err != nil || n != 0 {
		t.Fatalf("the racing read was stored (%d listings in the scope, %v)", n, err)
	}
	want := fresh(t, e, key)
	if same(want, stale) {
		t.Fatal("the change changed nothing in the listing")
	}
	for i := range 3 {
		if p, _ := get(t, e, v, key); !same(p, want) {
			t.Fatalf("read %d after the race answers the listing from before the change", i+1)
		}
	}
}

// deadRedis is a client of an address nothing listens on.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// With Redis unreachable the view never serves: every listing is read from Postgres, and is
// correct, changes included.
func TestListingsWithRedisUnreachable(t *testing.T) {
	f := newFixture(t)
	e, ctx := f.e, t.Context()
	projtest.StartEngine(t, e, 0)
	f.wait(t, f.lastWrite)
	v := startView(t, e, deadRedis(t), "tvtest:dead:")
	key := listings.Key{Category: f.cats[0], Sort: "-price"}
	check := func() {
		for range 3 {
			p, src := get(t, e, v, key)
			if src != listings.FromPostgres || !same(p, fresh(t, e, key)) {
				t.Fatalf("source %v, same as Postgres %t", src, same(p, fresh(t, e, key)))
			}
		}
	}
	check()
	time.Sleep(300 * time.Millisecond) // the view tries (and fails) to resynchronise meanwhile
	if v.Ready() || v.Syncs() != 0 {
		t.Fatalf("ready %t after %d syncs with Redis unreachable", v.Ready(), v.Syncs())
	}
	r, err := e.Cat.UpdateProduct(ctx, projtest.MD, commands.UpdateProduct{ID: f.products[4], Price: ptr(domain.Money(5))})
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, r.Position)
	check()
}

// After the view's keys are deleted behind its back (FLUSHDB, which takes the generation tokens
// too), it notices its marker is gone, resynchronises and serves again.
func TestListingsHealAfterFlush(t *testing.T) {
	f := newFixture(t)
	e, ctx := f.e, t.Context()
	projtest.StartEngine(t, e, 0)
	f.wait(t, f.lastWrite)
	rdb, prefix := testdb.Redis(t)
	v := startView(t, e, rdb, prefix)
	waitReady(t, v)
	key := listings.Key{Sort: "name"}
	get(t, e, v, key)
	if _, src := get(t, e, v, key); src != listings.FromView {
		t.Fatalf("source %v before the flush", src)
	}
	syncs := v.Syncs()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	projtest.Eventually(t, "the view resynchronises after the flush", func() (bool, string) {
		return v.Syncs() > syncs && v.Ready(), fmt.Sprintf("%d syncs", v.Syncs())
	})
	get(t, e, v, key)
	if p, src := get(t, e, v, key); src != listings.FromView || !same(p, fresh(t, e, key)) {
		t.Fatalf("source %v after healing", src)
	}
}
