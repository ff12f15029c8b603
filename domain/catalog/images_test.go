package catalog_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
)

// testImage is an image as the image store would describe it.
func testImage(id int64) catalog.Image {
	base := fmt.Sprintf("https://res.cloudinary.com/demo/image/upload/%%sv1/products/12/%d.png", id)
	return catalog.Image{ID: id, PublicID: fmt.Sprintf("products/12/%d", id), URL: fmt.Sprintf(base, ""),
		ThumbnailURL: fmt.Sprintf(base, "c_fill,h_400,w_400/"), FullURL: fmt.Sprintf(base, "c_limit,h_1600,w_1600/"),
		Format: "png", Width: 8, Height: 8, Bytes: 100}
}

// newCamera is a product just created: its history and the product loaded from it.
func newCamera(t *testing.T) ([]domain.Event, *catalog.Product) {
	t.Helper()
	p, err := catalog.NewProduct(catalog.NewProductInput{ID: 12, Name: "Camera", Price: 49900, Stock: 1})
	if err != nil {
		t.Fatal(err)
	}
	history := slices.Clone(p.Changes())
	return history, catalog.RehydrateProduct(history)
}

// reload replays what p recorded on top of its history, as a load after the append would.
func reload(t *testing.T, history []domain.Event, p *catalog.Product) ([]domain.Event, *catalog.Product) {
	t.Helper()
	history = append(history, p.Changes()...)
	return history, catalog.RehydrateProduct(history)
}

func imageIDs(p *catalog.Product) []int64 {
	var ids []int64
	for _, img := range p.Images() {
		ids = append(ids, img.ID)
	}
	return ids
}

func TestProductImages(t *testing.T) {
	history, p := newCamera(t)

	// The first image becomes the cover; the next go last unless placed.
	step := func(do func(*catalog.Product) error) {
		t.Helper()
		if err := do(p); err != nil {
			t.Fatal(err)
		}
		history, p = reload(t, history, p)
	}
	step(func(p *catalog.Product) error { return p.AddImage(testImage(1), 0, false) })
	step(func(p *catalog.Product) error { return p.AddImage(testImage(2), 0, false) })
	step(func(p *catalog.Product) error { return p.AddImage(testImage(3), 1, false) })
	if got := imageIDs(p); !slices.Equal(got, []int64{3, 1, 2}) || p.CoverImageID() != 1 {
		t.Fatalf("images %v, cover %d; want [3 1 2], cover 1", got, p.CoverImageID())
	}
	step(func(p *catalog.Product) error { return p.AddImage(testImage(4), 0, true) })
	if p.CoverImageID() != 4 {
		t.Fatalf("cover %d, want 4 (added as cover)", p.CoverImageID())
	}
	step(func(p *catalog.Product) error { return p.ArrangeImage(2, ptr(1), ptr(true)) })
	if got := imageIDs(p); !slices.Equal(got, []int64{2, 3, 1, 4}) || p.CoverImageID() != 2 {
		t.Fatalf("after arranging: %v cover %d", got, p.CoverImageID())
	}
	// Removing the cover makes the first image left the cover.
	step(func(p *catalog.Product) error { return p.RemoveImage(2) })
	if got := imageIDs(p); !slices.Equal(got, []int64{3, 1, 4}) || p.CoverImageID() != 3 {
		t.Fatalf("after removing the cover: %v cover %d", got, p.CoverImageID())
	}
	// An arrangement that changes nothing records nothing.
	if err := p.ArrangeImage(3, ptr(1), ptr(true)); err != nil || len(p.Changes()) != 0 {
		t.Fatalf("no-op arrangement: %v, %d events", err, len(p.Changes()))
	}

	// Deleting the product removes each image first, one event each.
	if err := p.Delete(); err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, e := range p.Changes() {
		if r, ok := e.(catalog.ProductImageRemoved); ok {
			removed = append(removed, r.PublicID)
		}
	}
	last := p.Changes()[len(p.Changes())-1]
	if _, ok := last.(catalog.ProductDeleted); !ok || len(removed) != 3 {
		t.Fatalf("delete recorded %v, removed %v", p.Changes(), removed)
	}
	slices.Sort(removed)
	if !slices.Equal(removed, []string{"products/12/1", "products/12/3", "products/12/4"}) {
		t.Fatalf("removed uploads %v", removed)
	}
}

func TestProductImageRefusals(t *testing.T) {
	history, full := newCamera(t)
	for i := range catalog.MaxImages {
		if err := full.AddImage(testImage(int64(i+1)), 0, false); err != nil {
			t.Fatal(err)
		}
		history, full = reload(t, history, full)
	}
	oneHistory, one := newCamera(t)
	if err := one.AddImage(testImage(1), 0, false); err != nil {
		t.Fatal(err)
	}
	_, one = reload(t, oneHistory, one)
	deletedHistory, deleted := newCamera(t)
	if err := deleted.Delete(); err != nil {
		t.Fatal(err)
	}
	_, deleted = reload(t, deletedHistory, deleted)

	tests := []struct {
		name  string
		do    func() error
		kind  error
		field string
	}{
		{"a ninth image", func() error { return full.CanAddImage(0) }, domain.ErrConflict, "image"},
		{"a ninth image, added", func() error { return full.AddImage(testImage(99), 0, false) }, domain.ErrConflict, "image"},
		{"position past the end", func() error { return one.CanAddImage(3) }, domain.ErrInvalid, "position"},
		{"negative position", func() error { return one.CanAddImage(-1) }, domain.ErrInvalid, "position"},
		{"the same image twice", func() error { return one.AddImage(testImage(1), 0, false) }, domain.ErrConflict, ""},
		{"deleted product", func() error { return deleted.CanAddImage(0) }, domain.ErrNotFound, ""},
		{"unknown image", func() error { return one.RemoveImage(7) }, domain.ErrNotFound, "image_id"},
		{"arrange unknown image", func() error { return one.ArrangeImage(7, ptr(1), nil) }, domain.ErrNotFound, "image_id"},
		{"uncover", func() error { return one.ArrangeImage(1, nil, ptr(false)) }, domain.ErrInvalid, "cover"},
		{"move past the end", func() error { return one.ArrangeImage(1, ptr(2), nil) }, domain.ErrInvalid, "position"},
		{"nothing to arrange", func() error { return one.ArrangeImage(1, nil, nil) }, domain.ErrInvalid, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(full.Changes()) + len(one.Changes()) + len(deleted.Changes())
			err := tc.do()
			var de *domain.Error
			if !errors.Is(err, tc.kind) || (tc.field != "" && (!errors.As(err, &de) || de.Field != tc.field)) {
				t.Fatalf("err = %v, want %v on %q", err, tc.kind, tc.field)
			}
			if after := len(full.Changes()) + len(one.Changes()) + len(deleted.Changes()); after != before {
				t.Fatal("a refusal recorded an event")
			}
		})
	}

	// What the image store answers is checked too, but it is not the client's fault.
	bad := testImage(5)
	bad.URL = "ftp://example.com/x.png"
	if err := one.AddImage(bad, 0, false); err == nil || errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("bad store answer: %v", err)
	}
}

// The image events round-trip through Decode with their whole shape.
func TestImageEventsDecode(t *testing.T) {
	for _, e := range []domain.Event{
		catalog.ProductImageAdded{ProductID: 12, Image: testImage(3), Order: []int64{1, 3}, CoverImageID: 1},
		catalog.ProductImageRemoved{ProductID: 12, ImageID: 3, PublicID: "products/12/3", Order: []int64{1}, CoverImageID: 1},
		catalog.ProductImagesArranged{ProductID: 12, Order: []int64{3, 1}, CoverImageID: 3},
	} {
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
	}
	added, _ := json.Marshal(catalog.ProductImageAdded{ProductID: 12, Image: testImage(3), Order: []int64{3}, CoverImageID: 3})
	want := `{"product_id":12,"image_id":3,"public_id":"products/12/3","url":"https://res.cloudinary.com/demo/image/upload/v1/products/12/3.png",` +
		`"thumbnail_url":"https://res.cloudinary.com/demo/image/upload/c_fill,h_400,w_400/v1/products/12/3.png",` +
		`"full_url":"https://res.cloudinary.com/demo/image/upload/c_limit,h_1600,w_1600/v1/products/12/3.png",` +
		`"format":"png","width":8,"height":8,"bytes":100,"order":[3],"cover_image_id":3}`
	if string(added) != want {
		t.Fatalf("ProductImageAdded.v1 is\n%s\nwant\n%s", added, want)
	}
}
