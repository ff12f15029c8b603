package catalog_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
)

// productHistories are the product streams the catalog tests produce: creation, stock moves,
// sets, detail updates, category changes and deletion.
func productHistories(t *testing.T) map[string][]domain.Event {
	t.Helper()
	out := map[string][]domain.Event{}
	record := func(name string, p *catalog.Product, steps ...func(*catalog.Product) error) {
		evs := append([]domain.Event(nil), p.Changes()...)
		for _, step := range steps {
			cur := catalog.RehydrateProduct(evs)
			_ = step(cur) // failing steps (as in the tests) record nothing
			evs = append(evs, cur.Changes()...)
		}
		out[name] = evs
	}
	cat := mustCategory(t, 3, "GPUs")
	withCat, err := catalog.NewProduct(catalog.NewProductInput{ID: 1, Name: "RTX 4070", Price: 59900, Category: cat, CategoryID: ptr(int64(3)), Stock: 5})
	if err != nil {
		t.Fatal(err)
	}
	record("created in a category", withCat)
	record("moved out of its category and deleted", withCat,
		func(p *catalog.Product) error { return p.Update(catalog.ProductPatch{ClearCategory: true}) },
		func(p *catalog.Product) error { return p.AdjustStock(-5) },
		func(p *catalog.Product) error { return p.Delete() },
		func(p *catalog.Product) error { return p.AdjustStock(1) },
	)
	ssd, err := catalog.NewProduct(catalog.NewProductInput{ID: 9, Name: "SSD 1TB", Price: 8999, Stock: 3})
	if err != nil {
		t.Fatal(err)
	}
	record("stock and updates", ssd,
		func(p *catalog.Product) error { return p.AdjustStock(5) },
		func(p *catalog.Product) error { return p.AdjustStock(-9) },
		func(p *catalog.Product) error { return p.SetStock(2) },
		func(p *catalog.Product) error { return p.SetStock(-1) },
		func(p *catalog.Product) error { return p.SetStock(catalog.MaxStock + 1) },
		func(p *catalog.Product) error { return p.Update(catalog.ProductPatch{Price: ptr(domain.Money(7999))}) },
		func(p *catalog.Product) error {
			return p.Update(catalog.ProductPatch{Name: ptr("SSD 2TB"), Description: ptr("NVMe\nfast"), CategoryID: ptr(int64(3)), Category: cat})
		},
		func(p *catalog.Product) error { return p.SetStock(catalog.MaxStock) },
		func(p *catalog.Product) error { return p.Update(catalog.ProductPatch{CategoryID: ptr(int64(5))}) },
	)
	cam, err := catalog.NewProduct(catalog.NewProductInput{ID: 12, Name: "Camera", Price: 49900, Stock: 1})
	if err != nil {
		t.Fatal(err)
	}
	record("images added, arranged, removed and deleted with the product", cam,
		func(p *catalog.Product) error { return p.AddImage(testImage(101), 0, false) },
		func(p *catalog.Product) error { return p.AddImage(testImage(102), 1, false) },
		func(p *catalog.Product) error { return p.AddImage(testImage(103), 0, true) },
		func(p *catalog.Product) error { return p.ArrangeImage(101, ptr(1), nil) },
		func(p *catalog.Product) error { return p.RemoveImage(103) },
		func(p *catalog.Product) error { return p.AddImage(testImage(104), 2, false) },
		func(p *catalog.Product) error { return p.ArrangeImage(104, nil, ptr(true)) },
		func(p *catalog.Product) error { return p.Delete() },
	)
	return out
}

// categoryHistories are the category streams the catalog tests produce.
func categoryHistories(t *testing.T) map[string][]domain.Event {
	t.Helper()
	c, err := catalog.NewCategory(1, "Storage", "")
	if err != nil {
		t.Fatal(err)
	}
	evs := c.Changes()
	out := map[string][]domain.Event{"created": evs}
	for _, step := range []func(*catalog.Category) error{
		func(c *catalog.Category) error { return c.Update(catalog.CategoryPatch{Name: ptr("Storage")}) },
		func(c *catalog.Category) error {
			return c.Update(catalog.CategoryPatch{Description: ptr("SSDs and HDDs")})
		},
		func(c *catalog.Category) error { return c.Update(catalog.CategoryPatch{Name: ptr("Drives")}) },
		func(c *catalog.Category) error { return c.Delete() },
		func(c *catalog.Category) error { return c.Delete() },
	} {
		cur := catalog.RehydrateCategory(evs)
		_ = step(cur)
		evs = append(evs, cur.Changes()...)
	}
	out["lifecycle"] = evs
	return out
}

// roundTrip passes a state through JSON, as the snapshot store does.
func roundTrip[S any](t *testing.T, s S) S {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out S
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A product rebuilt from a snapshot taken at any version, plus the events after it, equals the
// product rebuilt from its whole stream.
func TestProductSnapshotEqualsFullRehydration(t *testing.T) {
	for name, evs := range productHistories(t) {
		t.Run(name, func(t *testing.T) {
			full := catalog.RehydrateProduct(evs)
			for at := 1; at <= len(evs); at++ {
				state := roundTrip(t, catalog.RehydrateProduct(evs[:at]).Snapshot())
				got, err := catalog.RehydrateProductFrom(state, int64(at), evs[at:])
				if err != nil {
					t.Fatalf("snapshot at %d: %v", at, err)
				}
				if !reflect.DeepEqual(got.Snapshot(), full.Snapshot()) || got.Version() != full.Version() || len(got.Changes()) != 0 {
					t.Fatalf("snapshot at %d: got %+v v%d, want %+v v%d", at, got.Snapshot(), got.Version(), full.Snapshot(), full.Version())
				}
				// The rebuilt product decides the same: the same command records the same events.
				a, b := got.AdjustStock(1), full.AdjustStock(1)
				if (a == nil) != (b == nil) || !reflect.DeepEqual(got.Changes(), full.Changes()) {
					t.Fatalf("snapshot at %d decides differently: %v %+v vs %v %+v", at, a, got.Changes(), b, full.Changes())
				}
				full = catalog.RehydrateProduct(evs)
			}
		})
	}
}

// The same for categories.
func TestCategorySnapshotEqualsFullRehydration(t *testing.T) {
	for name, evs := range categoryHistories(t) {
		t.Run(name, func(t *testing.T) {
			full := catalog.RehydrateCategory(evs)
			for at := 1; at <= len(evs); at++ {
				state := roundTrip(t, catalog.RehydrateCategory(evs[:at]).Snapshot())
				got, err := catalog.RehydrateCategoryFrom(state, int64(at), evs[at:])
				if err != nil {
					t.Fatalf("snapshot at %d: %v", at, err)
				}
				if got.Snapshot() != full.Snapshot() || got.Version() != full.Version() || got.Exists() != full.Exists() {
					t.Fatalf("snapshot at %d: got %+v v%d, want %+v v%d", at, got.Snapshot(), got.Version(), full.Snapshot(), full.Version())
				}
			}
		})
	}
}

// A state no aggregate could be in is refused, so the loader falls back to the whole stream.
func TestRehydrateFromRefusesImpossibleStates(t *testing.T) {
	good := catalog.ProductState{ID: 1, Name: "SSD", Price: 100, Stock: 1}
	products := []struct {
		name    string
		mutate  func(*catalog.ProductState)
		version int64
	}{
		{"zero value", func(s *catalog.ProductState) { *s = catalog.ProductState{} }, 1},
		{"no id", func(s *catalog.ProductState) { s.ID = 0 }, 1},
		{"version zero", func(*catalog.ProductState) {}, 0},
		{"empty name", func(s *catalog.ProductState) { s.Name = "" }, 1},
		{"untrimmed name", func(s *catalog.ProductState) { s.Name = " SSD" }, 1},
		{"long name", func(s *catalog.ProductState) { s.Name = strings.Repeat("n", catalog.MaxProductName+1) }, 1},
		{"negative price", func(s *catalog.ProductState) { s.Price = -1 }, 1},
		{"negative stock", func(s *catalog.ProductState) { s.Stock = -1 }, 1},
		{"stock too large", func(s *catalog.ProductState) { s.Stock = catalog.MaxStock + 1 }, 1},
		{"bad category", func(s *catalog.ProductState) { s.CategoryID = ptr(int64(0)) }, 1},
	}
	for _, tc := range products {
		t.Run("product "+tc.name, func(t *testing.T) {
			s := good
			tc.mutate(&s)
			if _, err := catalog.RehydrateProductFrom(s, tc.version, nil); !errors.Is(err, catalog.ErrBadSnapshot) {
				t.Fatalf("err = %v, want ErrBadSnapshot", err)
			}
		})
	}
	if _, err := catalog.RehydrateProductFrom(good, 1, nil); err != nil {
		t.Fatalf("good state refused: %v", err)
	}
	categories := []catalog.CategoryState{{}, {ID: 1}, {ID: 1, Name: "x\x00"}, {ID: 1, Name: "x", Description: strings.Repeat("d", 501)}}
	for _, s := range categories {
		if _, err := catalog.RehydrateCategoryFrom(s, 1, nil); !errors.Is(err, catalog.ErrBadSnapshot) {
			t.Fatalf("category state %+v: err = %v, want ErrBadSnapshot", s, err)
		}
	}
}

// The stored shape of each state is pinned to its schema version: changing a state struct without
// bumping its SnapshotSchemaVersion (and adding the new shape here) fails this test.
func TestSnapshotShapesArePinnedToTheirSchemaVersion(t *testing.T) {
	tests := []struct {
		name    string
		version int
		state   any
		shapes  map[int]string
	}{
		{"product", catalog.ProductSnapshotSchemaVersion, catalog.ProductState{}, map[int]string{
			1: `{"id":0,"name":"","description":"","price":"0.00","category_id":null,"stock":0,"deleted":false}`,
			2: `{"id":0,"name":"","description":"","price":"0.00","category_id":null,"stock":0,"images":null,"cover_image_id":0,"deleted":false}`,
		}},
		{"category", catalog.CategorySnapshotSchemaVersion, catalog.CategoryState{}, map[int]string{
			1: `{"id":0,"name":"","description":"","deleted":false}`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.state)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := tc.shapes[tc.version]
			if !ok || string(b) != want {
				t.Fatalf("%s state shape at schema version %d is %s; pinned: %q. Changed the state? Bump the schema version and pin the new shape.",
					tc.name, tc.version, b, want)
			}
		})
	}
}
