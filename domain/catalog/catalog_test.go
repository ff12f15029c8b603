package catalog_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
)

func ptr[T any](v T) *T { return &v }

func mustCategory(t *testing.T, id int64, name string) *catalog.Category {
	t.Helper()
	c, err := catalog.NewCategory(id, name, "")
	if err != nil {
		t.Fatal(err)
	}
	return catalog.RehydrateCategory(c.Changes())
}

func TestNewCategoryValidation(t *testing.T) {
	tests := []struct {
		name, in, desc string
		field          string
	}{
		{"empty", "", "", "name"},
		{"blank", "   ", "", "name"},
		{"too long", strings.Repeat("x", 51), "", "name"},
		{"control character", "GPU\x00s", "", "name"},
		{"description too long", "GPUs", strings.Repeat("d", 501), "description"},
		{"only invisible characters", "\u200b\ufeff\u2060", "", "name"},
		{"bidi override", "GPU\u202es", "", "name"},
		{"bidi isolate in description", "GPUs", "fine\u2066print", "description"},
		{"bell in description", "GPUs", "a\ab", "description"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.NewCategory(1, tc.in, tc.desc)
			var de *domain.Error
			if !errors.As(err, &de) || !errors.Is(err, domain.ErrInvalid) || de.Field != tc.field {
				t.Fatalf("err = %v, want invalid %s", err, tc.field)
			}
		})
	}
	c, err := catalog.NewCategory(7, "  Graphics Cards ", "GPUs")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "Graphics Cards" || len(c.Changes()) != 1 {
		t.Fatalf("category = %q with %d changes", c.Name(), len(c.Changes()))
	}
}

func TestCategoryLifecycle(t *testing.T) {
	c := mustCategory(t, 1, "Storage")
	if c.Version() != 1 {
		t.Fatalf("version = %d", c.Version())
	}
	if err := c.Update(catalog.CategoryPatch{Name: ptr("Storage")}); err != nil || len(c.Changes()) != 0 {
		t.Fatalf("no-op update recorded %d changes (%v)", len(c.Changes()), err)
	}
	if err := c.Update(catalog.CategoryPatch{Description: ptr("SSDs and HDDs")}); err != nil {
		t.Fatal(err)
	}
	if got := c.Changes()[0].(catalog.CategoryUpdated); got.Name != "Storage" || got.Description != "SSDs and HDDs" {
		t.Fatalf("update event = %+v", got)
	}
	if err := c.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := c.Update(catalog.CategoryPatch{Name: ptr("x")}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("update after delete: %v", err)
	}
}

func TestCategoryReference(t *testing.T) {
	c := mustCategory(t, 1, "Storage")
	if err := c.Reference(7); err != nil {
		t.Fatal(err)
	}
	if got := c.Changes(); len(got) != 1 || got[0] != (catalog.CategoryReferenced{CategoryID: 1, ProductID: 7}) {
		t.Fatalf("changes = %+v", got)
	}
	if c.Name() != "Storage" || !c.Exists() {
		t.Fatalf("a reference changed the category: %q exists=%v", c.Name(), c.Exists())
	}
	deleted := mustCategory(t, 2, "Old")
	if err := deleted.Delete(); err != nil {
		t.Fatal(err)
	}
	var de *domain.Error
	if err := deleted.Reference(7); !errors.As(err, &de) || !errors.Is(err, domain.ErrInvalid) || de.Field != "category_id" {
		t.Fatalf("reference to a deleted category: %v", err)
	}
	var missing *catalog.Category
	if err := missing.Reference(7); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("reference to a missing category: %v", err)
	}
}

func TestNewProduct(t *testing.T) {
	cat := mustCategory(t, 3, "GPUs")
	deleted := mustCategory(t, 4, "Old")
	_ = deleted.Delete()
	deleted = catalog.RehydrateCategory(append(mustCategory(t, 4, "Old").Changes(), deleted.Changes()...))

	tests := []struct {
		name  string
		in    catalog.NewProductInput
		field string // "" when valid
	}{
		{"valid", catalog.NewProductInput{ID: 1, Name: "RTX 4070", Price: 59900, Category: cat, CategoryID: ptr(int64(3)), Stock: 5}, ""},
		{"no category", catalog.NewProductInput{ID: 1, Name: "Mouse", Price: 1999}, ""},
		{"empty name", catalog.NewProductInput{ID: 1, Name: "", Price: 1}, "name"},
		{"negative price", catalog.NewProductInput{ID: 1, Name: "x", Price: -1}, "price"},
		{"price too large", catalog.NewProductInput{ID: 1, Name: "x", Price: domain.MaxMoney + 1}, "price"},
		{"negative stock", catalog.NewProductInput{ID: 1, Name: "x", Stock: -1}, "stock"},
		{"unknown category", catalog.NewProductInput{ID: 1, Name: "x", CategoryID: ptr(int64(99))}, "category_id"},
		{"deleted category", catalog.NewProductInput{ID: 1, Name: "x", Category: deleted, CategoryID: ptr(int64(4))}, "category_id"},
		{"name too long", catalog.NewProductInput{ID: 1, Name: strings.Repeat("n", 256)}, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := catalog.NewProduct(tc.in)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.Name() != tc.in.Name || p.Stock() != tc.in.Stock {
					t.Fatalf("product = %+v", p)
				}
				return
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Field != tc.field || !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("err = %v, want invalid %s", err, tc.field)
			}
		})
	}
}

func TestProductStockAndUpdates(t *testing.T) {
	p0, err := catalog.NewProduct(catalog.NewProductInput{ID: 9, Name: "SSD 1TB", Price: 8999, Stock: 3})
	if err != nil {
		t.Fatal(err)
	}
	p := catalog.RehydrateProduct(p0.Changes())
	tests := []struct {
		name    string
		do      func() error
		kind    error
		stockTo int64
	}{
		{"add", func() error { return p.AdjustStock(5) }, nil, 8},
		{"remove too many", func() error { return p.AdjustStock(-9) }, domain.ErrConflict, 8},
		{"set", func() error { return p.SetStock(2) }, nil, 2},
		{"set negative", func() error { return p.SetStock(-1) }, domain.ErrInvalid, 2},
		{"set too large", func() error { return p.SetStock(catalog.MaxStock + 1) }, domain.ErrInvalid, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if tc.kind == nil && err != nil || tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if p.Stock() != tc.stockTo {
				t.Fatalf("stock = %d, want %d", p.Stock(), tc.stockTo)
			}
		})
	}
	if err := p.Update(catalog.ProductPatch{Price: ptr(domain.Money(7999))}); err != nil {
		t.Fatal(err)
	}
	last := p.Changes()[len(p.Changes())-1].(catalog.ProductUpdated)
	if last.Price != 7999 || last.Name != "SSD 1TB" {
		t.Fatalf("update event = %+v", last)
	}
	if err := p.Update(catalog.ProductPatch{CategoryID: ptr(int64(5))}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("unknown category accepted: %v", err)
	}
}

// Every event round-trips through Decode: what is appended can be read back.
func TestDecodeRoundTrip(t *testing.T) {
	events := []domain.Event{
		catalog.CategoryCreated{CategoryID: 1, Name: "a", Description: "b"},
		catalog.CategoryUpdated{CategoryID: 1, Name: "c"},
		catalog.CategoryDeleted{CategoryID: 1},
		catalog.CategoryReferenced{CategoryID: 1, ProductID: 2},
		catalog.ProductCreated{ProductID: 2, Name: "p", Price: 1234, Currency: "USD", CategoryID: ptr(int64(1)), Stock: 4},
		catalog.ProductUpdated{ProductID: 2, Name: "q", Price: 1},
		catalog.ProductStockAdjusted{ProductID: 2, Delta: -1, Stock: 3},
		catalog.ProductDeleted{ProductID: 2},
	}
	for _, e := range events {
		t.Run(e.EventType(), func(t *testing.T) {
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := catalog.Decode(e.EventType(), e.SchemaVersion(), b)
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			if string(gb) != string(b) {
				t.Fatalf("round trip: %s != %s", gb, b)
			}
		})
	}
	if _, err := catalog.Decode("ProductCreated", 99, []byte(`{}`)); !errors.Is(err, catalog.ErrUnknownEvent) {
		t.Fatalf("unknown version: %v", err)
	}
}
