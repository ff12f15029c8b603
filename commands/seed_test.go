package commands_test

import (
	"context"
	"sync"
	"testing"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func newCatalog(t *testing.T) (*commands.Catalog, *eventstore.Store) {
	t.Helper()
	db := testdb.New(t)
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	return commands.NewCatalog(store, store.Sequences(map[string]string{
		commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})), store
}

func TestDemoCatalogIsRealistic(t *testing.T) {
	products := 0
	names := map[string]bool{}
	for _, c := range commands.DemoCatalog {
		for _, p := range c.Products {
			products++
			if names[p.Name] {
				t.Errorf("duplicate product name %q", p.Name)
			}
			names[p.Name] = true
		}
	}
	if len(commands.DemoCatalog) < 8 || products < 60 {
		t.Fatalf("demo catalog has %d categories and %d products; want at least 8 and 60", len(commands.DemoCatalog), products)
	}
}

// Seeding runs once: a second run, or several racing runs, change nothing more.
func TestSeedRunsOnce(t *testing.T) {
	cat, store := newCatalog(t)
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		seeded  int
		skipped int
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cat.SeedDemoCatalog(ctx, domain.Metadata{ActorID: "seed"}, commands.DemoCatalog)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("seed: %v", err)
			case res.AlreadySeeded:
				skipped++
			default:
				seeded++
			}
		}()
	}
	wg.Wait()
	if seeded != 1 || skipped != 3 {
		t.Fatalf("%d seeded, %d skipped; want 1 and 3", seeded, skipped)
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cat.SeedDemoCatalog(ctx, domain.Metadata{}, commands.DemoCatalog)
	if err != nil || !res.AlreadySeeded {
		t.Fatalf("second seed: %+v %v", res, err)
	}
	if again, _ := store.Head(ctx); again != head {
		t.Fatalf("second seed moved the head from %d to %d", head, again)
	}
	marker, err := store.Load(ctx, catalog.DemoStreamID)
	if err != nil || len(marker) != 1 {
		t.Fatalf("marker stream: %d events, %v", len(marker), err)
	}
	// Counted directly: ReadAll holds back events while any write transaction on the server
	// (another package's test) is open, which is right for consumers but not for this count.
	var total, bySeed int
	if err := store.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE metadata->>'actor_id' = 'seed')
		FROM events`).Scan(&total, &bySeed); err != nil {
		t.Fatal(err)
	}
	wantEvents := 1
	for _, c := range commands.DemoCatalog {
		wantEvents += 1 + len(c.Products)
	}
	if total != wantEvents || bySeed != wantEvents {
		t.Fatalf("log holds %d events (%d by the seed), want %d", total, bySeed, wantEvents)
	}
}
