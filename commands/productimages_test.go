package commands_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"sync"
	"testing"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/internal/cloudinarytest"
	"github.com/techvault/techvault/internal/testdb"
)

// hookedStore is the real Cloudinary store (against the stand-in) that runs afterUpload once
// an upload has succeeded, before the command goes on to append.
type hookedStore struct {
	*images.Cloudinary
	mu          sync.Mutex
	afterUpload func()
}

func (s *hookedStore) Upload(ctx context.Context, publicID string, data []byte) (images.Uploaded, error) {
	up, err := s.Cloudinary.Upload(ctx, publicID, data)
	s.mu.Lock()
	hook := s.afterUpload
	s.afterUpload = nil
	s.mu.Unlock()
	if err == nil && hook != nil {
		hook()
	}
	return up, err
}

func smallPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 2, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type imageEnv struct {
	store  *eventstore.Store
	cat    *commands.Catalog
	imgs   *commands.ProductImages
	cloud  *cloudinarytest.Server
	hooked *hookedStore
}

func newImageEnv(t *testing.T) imageEnv {
	t.Helper()
	db := testdb.New(t)
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		t.Fatal(err)
	}
	cloud := cloudinarytest.New(t, "demo", "key", "secret")
	cld, err := images.NewCloudinary(images.Config{CloudName: "demo", APIKey: "key", APISecret: "secret", UploadPrefix: cloud.URL()})
	if err != nil {
		t.Fatal(err)
	}
	hooked := &hookedStore{Cloudinary: cld}
	ids := store.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids",
		commands.ProductImageIDs: "product_image_ids"})
	return imageEnv{store: store, cat: commands.NewCatalog(store, ids), imgs: commands.NewProductImages(store, ids, hooked),
		cloud: cloud, hooked: hooked}
}

// When the append fails after the upload (here: the product was deleted in between), the
// upload is destroyed again and nothing is appended for it.
func TestAnUploadTheLogDidNotTakeIsDestroyed(t *testing.T) {
	ctx := context.Background()
	e := newImageEnv(t)
	admin := domain.Metadata{ActorID: "admin"}
	p, err := e.cat.CreateProduct(ctx, admin, commands.CreateProduct{Name: "Camera", Price: 100, Stock: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.hooked.afterUpload = func() {
		if _, err := e.cat.DeleteProduct(ctx, admin, p.ID); err != nil {
			t.Error(err)
		}
	}
	before := eventCount(t, e.store)
	_, err = e.imgs.AddProductImage(ctx, admin, commands.AddProductImage{ProductID: p.ID, Data: smallPNG(t)})
	if !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("upload to a product deleted meanwhile: %v", err)
	}
	if after := eventCount(t, e.store); after != before+1 { // ProductDeleted only
		t.Fatalf("events %d → %d, want the deletion only", before, after)
	}
	if assets, destroyed := e.cloud.Assets(), e.cloud.Destroyed(); len(assets) != 0 || len(destroyed) != 1 {
		t.Fatalf("assets %d, destroyed %v: the upload should be destroyed", len(assets), destroyed)
	}

	// A recorded upload stays; a concurrent duplicate under one Idempotency-Key keeps only the
	// winner's.
	q, err := e.cat.CreateProduct(ctx, admin, commands.CreateProduct{Name: "Lens", Price: 100, Stock: 1})
	if err != nil {
		t.Fatal(err)
	}
	keyed := commands.WithIdempotency(ctx, commands.Idempotency{Key: "upload-1", RequestHash: []byte("same")})
	var wg sync.WaitGroup
	results := make([]commands.ProductImagesResult, 4)
	for i := range results {
		wg.Go(func() {
			res, err := e.imgs.AddProductImage(keyed, admin, commands.AddProductImage{ProductID: q.ID, Data: smallPNG(t)})
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.ImageID != results[0].ImageID || len(r.Images) != 1 {
			t.Fatalf("answers differ: %+v vs %+v", r, results[0])
		}
	}
	assets := e.cloud.Assets()
	if len(assets) != 1 {
		t.Fatalf("%d uploads kept, want the recorded one only", len(assets))
	}
	if _, ok := assets[results[0].Images[0].PublicID]; !ok {
		t.Fatalf("kept %v, not the recorded %s", assets, results[0].Images[0].PublicID)
	}
}
