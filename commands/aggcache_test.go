package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/cart"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/domain/promo"
	"github.com/techvault/techvault/eventstore"
)

// readCounter counts the stream reads of the handlers over it.
type readCounter struct {
	*eventstore.Store
	mu    sync.Mutex
	reads map[string]int
}

func (s *readCounter) LoadSnapshotTail(ctx context.Context, streamID, streamType string, schemaVersion int) (eventstore.SnapshotTail, error) {
	s.mu.Lock()
	s.reads[streamID]++
	s.mu.Unlock()
	return s.Store.LoadSnapshotTail(ctx, streamID, streamType, schemaVersion)
}

func (s *readCounter) Load(ctx context.Context, streamID string) ([]eventstore.Event, error) {
	s.mu.Lock()
	s.reads[streamID]++
	s.mu.Unlock()
	return s.Store.Load(ctx, streamID)
}

func (s *readCounter) take() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reads
	s.reads = map[string]int{}
	return r
}

// process is one server process's handlers: its own cache, over the shared store.
type process struct {
	shop *commands.Shop
	cat  *commands.Catalog
}

func newProcess(store commands.EventStore, ids commands.IDAllocator) process {
	cache := commands.WithAggregateCache(commands.NewAggregateCache(100))
	return process{shop: commands.NewShop(store, ids, nil, nil, cache), cat: commands.NewCatalog(store, ids, cache)}
}

func TestAggregateCache(t *testing.T) {
	e := newShop(t)
	ctx := context.Background()
	counting := &readCounter{Store: e.store, reads: map[string]int{}}
	ids := e.store.Sequences(map[string]string{commands.OrderIDs: "order_ids", commands.PromoIDs: "promo_ids",
		commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
	a, b := newProcess(counting, ids), newProcess(counting, ids)
	uid, addr := e.customerWithAddress(t, 1)
	gpu, ssd := e.product(t, 1000, 50), e.product(t, 500, 50)
	add := func(p process, product, qty int64) error {
		_, err := p.shop.AddToCart(ctx, md(uid), commands.AddToCart{UserID: uid, ProductID: product, Quantity: qty})
		return err
	}
	lines := func() map[int64]cart.Line {
		evs, err := e.store.Load(ctx, cart.StreamID(uid))
		if err != nil {
			t.Fatal(err)
		}
		var hist []domain.Event
		for _, ev := range evs {
			d, err := cart.Decode(ev.Type, ev.SchemaVersion, ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			hist = append(hist, d)
		}
		out := map[int64]cart.Line{}
		for _, l := range cart.Rehydrate(uid, hist).Lines() {
			out[l.ProductID] = l
		}
		return out
	}

	t.Run("a command on an aggregate the process appended to reads no stream of it", func(t *testing.T) {
		if err := add(a, gpu, 1); err != nil {
			t.Fatal(err)
		}
		counting.take()
		if err := add(a, gpu, 1); err != nil {
			t.Fatal(err)
		}
		reads := counting.take()
		if reads[cart.StreamID(uid)] != 0 {
			t.Fatalf("the second add read the cart's stream %d times; the cache holds it", reads[cart.StreamID(uid)])
		}
	})

	t.Run("an append on a state another process moved on is refused and decided again", func(t *testing.T) {
		if err := add(b, ssd, 3); err != nil { // b moves the cart on; a's cached cart is behind
			t.Fatal(err)
		}
		if err := add(a, gpu, 1); err != nil {
			t.Fatal(err)
		}
		if l := lines(); l[gpu].Quantity != 3 || l[ssd].Quantity != 3 {
			t.Fatalf("lines %+v: want 3 of each (no add lost)", l)
		}
	})

	t.Run("a refusal on cached state is decided again on the stream", func(t *testing.T) {
		if err := add(a, gpu, 1); err != nil { // a's cache: gpu present
			t.Fatal(err)
		}
		if _, err := b.shop.RemoveFromCart(ctx, md(uid), uid, gpu); err != nil {
			t.Fatal(err)
		}
		// a's cache still shows the line; the command fails on the stream's word, not the cache's.
		_, err := a.shop.SetCartQuantity(ctx, md(uid), commands.AddToCart{UserID: uid, ProductID: gpu, Quantity: 5})
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("setting the quantity of a line another process removed: %v, want not found", err)
		}
		// A refusal that only the stale cache would give is decided again on the stream: a removes
		// the line (its cache: gone), b adds it back, a sets its quantity.
		if err := add(a, gpu, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := a.shop.RemoveFromCart(ctx, md(uid), uid, gpu); err != nil {
			t.Fatal(err)
		}
		if err := add(b, gpu, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := a.shop.SetCartQuantity(ctx, md(uid), commands.AddToCart{UserID: uid, ProductID: gpu, Quantity: 7}); err != nil {
			t.Fatalf("setting the quantity of a line another process added: %v", err)
		}
		if l := lines(); l[gpu].Quantity != 7 {
			t.Fatalf("lines %+v: want 7 of %d", l, gpu)
		}
	})

	t.Run("a price changed by another process refuses the order", func(t *testing.T) {
		if _, err := a.shop.ClearCart(ctx, md(uid), uid); err != nil {
			t.Fatal(err)
		}
		if err := add(a, ssd, 1); err != nil {
			t.Fatal(err)
		}
		// a caches the product when it reserves stock; a first order puts it there.
		if _, err := a.shop.PlaceOrder(ctx, md(uid), commands.PlaceOrder{UserID: uid, AddressID: addr}); err != nil {
			t.Fatal(err)
		}
		if err := add(a, ssd, 1); err != nil {
			t.Fatal(err)
		}
		price := domain.Money(650)
		if _, err := b.cat.UpdateProduct(ctx, md(0), commands.UpdateProduct{ID: ssd, Price: &price}); err != nil {
			t.Fatal(err)
		}
		_, err := a.shop.PlaceOrder(ctx, md(uid), commands.PlaceOrder{UserID: uid, AddressID: addr})
		if !errors.Is(err, domain.ErrPriceChanged) || !strings.Contains(err.Error(), "6.50") {
			t.Fatalf("an order at a price another process changed: %v, want price_changed", err)
		}
	})

	t.Run("commands decided on the cache still write snapshots", func(t *testing.T) {
		// The cart is cached; every tenth version gets a snapshot, written in the background.
		for range 12 {
			if err := add(a, gpu, 1); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			var version int64
			err := e.store.Pool().QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM snapshots WHERE stream_id = $1`,
				cart.StreamID(uid)).Scan(&version)
			if err != nil {
				t.Fatal(err)
			}
			if version >= 10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot of the cart past version 10 (latest %d) after 14 cached adds", version)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("an aggregate only read is read from the cache while this process learned it recently", func(t *testing.T) {
		other, _ := e.customerWithAddress(t, 2)
		addFor := func(p process, user int64) {
			t.Helper()
			if _, err := p.shop.AddToCart(ctx, md(user), commands.AddToCart{UserID: user, ProductID: ssd, Quantity: 1}); err != nil {
				t.Fatal(err)
			}
		}
		addFor(a, uid)
		counting.take()
		addFor(a, other)
		if n := counting.take()[catalog.ProductStreamID(ssd)]; n != 0 {
			t.Fatalf("the product was read %d times within RecentReads of the last read", n)
		}
		// Another process's price change is seen once the cached state is older than RecentReads.
		price := domain.Money(550)
		if _, err := b.cat.UpdateProduct(ctx, md(0), commands.UpdateProduct{ID: ssd, Price: &price}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(commands.RecentReads + 100*time.Millisecond)
		third, _ := e.customerWithAddress(t, 3)
		addFor(a, third)
		if n := counting.take()[catalog.ProductStreamID(ssd)]; n != 1 {
			t.Fatalf("the product was read %d times after RecentReads; want 1", n)
		}
		if _, err := a.shop.ClearCart(ctx, md(other), other); err != nil {
			t.Fatal(err)
		}
		price = 500
		if _, err := b.cat.UpdateProduct(ctx, md(0), commands.UpdateProduct{ID: ssd, Price: &price}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a promo code's holder is read from the cache while recent", func(t *testing.T) {
		if _, err := a.shop.CreatePromo(ctx, md(0), commands.CreatePromo{Code: "CACHED", Terms: promo.Terms{Kind: promo.Percent, Value: 5, Active: true}}); err != nil {
			t.Fatal(err)
		}
		redeem := func() {
			t.Helper()
			if _, err := a.shop.RedeemPromo(ctx, md(uid), uid, "cached"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.shop.RemovePromo(ctx, md(uid), uid); err != nil {
				t.Fatal(err)
			}
		}
		redeem()
		counting.take()
		redeem()
		if n := counting.take()[promo.CodeStreamID("CACHED")]; n != 0 {
			t.Fatalf("the code's reservation was read %d times within RecentReads", n)
		}
		// Another process that just learned a code was free still sees it taken at once: the
		// refusal decided on its cached word is decided again on the stream.
		if _, err := b.shop.RedeemPromo(ctx, md(uid), uid, "late"); !errors.Is(err, domain.ErrInvalid) {
			t.Fatalf("an unknown code: %v", err)
		}
		if _, err := a.shop.CreatePromo(ctx, md(0), commands.CreatePromo{Code: "LATE", Terms: promo.Terms{Kind: promo.Percent, Value: 5, Active: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.shop.RedeemPromo(ctx, md(uid), uid, "late"); err != nil {
			t.Fatalf("a code another process created a moment ago: %v", err)
		}
	})

	t.Run("an order on a cart this process appended to reads no stream of the cart", func(t *testing.T) {
		if _, err := a.shop.ClearCart(ctx, md(uid), uid); err != nil {
			t.Fatal(err)
		}
		if err := add(a, gpu, 1); err != nil {
			t.Fatal(err)
		}
		counting.take()
		if _, err := a.shop.PlaceOrder(ctx, md(uid), commands.PlaceOrder{UserID: uid, AddressID: addr}); err != nil {
			t.Fatal(err)
		}
		if n := counting.take()[cart.StreamID(uid)]; n != 0 {
			t.Fatalf("placing the order read the cart's stream %d times; the cache holds it", n)
		}
	})
}
