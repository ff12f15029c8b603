package wishlistproj_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/wishlist"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/wishlistproj"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// A reproducible history of adds (some twice), removals, re-adds, product deletions and adds
// that raced a deletion: the wishlist table holds exactly the pairs on a list whose product is
// not deleted, live (small batches), rebuilt, and with every event applied once or twice.
func TestWishlistProjection(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := context.Background()
	lists := commands.NewWishlists(e.Store)
	projtest.StartEngineWith(t, e, append(catalogproj.Projectors(), wishlistproj.Projectors()...), 3)

	var products []int64
	for i := range 6 {
		p, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: fmt.Sprintf("Product %d", i), Price: 1000, Stock: 5})
		if err != nil {
			t.Fatal(err)
		}
		products = append(products, p.ID)
	}
	users := []int64{11, 12, 13, 14}
	projtest.Accounts(t, e, users...)
	model := map[[2]int64]bool{} // on the list (by the aggregate)
	deleted := map[int64]bool{}
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 80 {
		u, p := users[rng.IntN(len(users))], products[rng.IntN(len(products))]
		switch op := rng.IntN(10); {
		case i == 30 || i == 60:
			if _, err := e.Cat.DeleteProduct(ctx, projtest.MD, p); err != nil && !errors.Is(err, domain.ErrNotFound) {
				t.Fatal(err)
			}
			deleted[p] = true
			// An add decided before the deletion, delivered after it.
			raceAdd(t, e.Store, u, p)
			model[[2]int64{u, p}] = true
		case op < 6:
			_, err := lists.AddToWishlist(ctx, projtest.MD, u, p)
			switch {
			case deleted[p] && errors.Is(err, domain.ErrNotFound):
			case err != nil:
				t.Fatalf("step %d: add: %v", i, err)
			default:
				model[[2]int64{u, p}] = true
			}
		default:
			_, err := lists.RemoveFromWishlist(ctx, projtest.MD, u, p)
			switch {
			case !model[[2]int64{u, p}] && errors.Is(err, domain.ErrNotFound):
			case err != nil:
				t.Fatalf("step %d: remove: %v", i, err)
			default:
				delete(model, [2]int64{u, p})
			}
		}
	}
	projtest.WaitCaughtUp(t, e, wishlistproj.WishlistProjector)

	var want [][2]int64
	for k := range model {
		if !deleted[k[1]] {
			want = append(want, k)
		}
	}
	slices.SortFunc(want, func(a, b [2]int64) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	rows, err := e.Pool.Query(ctx, `SELECT user_id, product_id FROM wishlist ORDER BY user_id, product_id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var k [2]int64
		return k, r.Scan(&k[0], &k[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || len(want) < 4 {
		t.Fatalf("wishlist rows %v, want %v", got, want)
	}
	projtest.RequireLiveRebuiltAndTwiceAlike(t, e, wishlistproj.Wishlist{})
}

// raceAdd appends a WishlistItemAdded straight to the user's stream, as a command that read the
// product before its deletion would.
func raceAdd(t *testing.T, store *eventstore.Store, userID, productID int64) {
	t.Helper()
	ctx := context.Background()
	stream := wishlist.StreamID(userID)
	evs, err := store.Load(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(wishlist.ItemAdded{UserID: userID, ProductID: productID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, projtest.StoreMD, eventstore.StreamAppend{StreamID: stream, StreamType: wishlist.StreamType,
		ExpectedVersion: int64(len(evs)), Events: []eventstore.NewEvent{{Type: wishlist.ItemAdded{}.EventType(), SchemaVersion: 1, Data: data}}}); err != nil {
		t.Fatal(err)
	}
}
