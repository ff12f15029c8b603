package catalogproj_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/internal/cloudinarytest"
	"github.com/techvault/techvault/internal/projtest"
	"github.com/techvault/techvault/projections/catalogproj"
)

func tinyPNG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.Gray{Y: shade})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A reproducible history of image uploads, moves, cover changes and removals on a few products
// (among stock moves and a deletion): product_image holds each product's images in the order
// and with the cover its aggregate has, live (small batches), rebuilt, and with every event
// applied once or twice.
func TestProductImagesProjection(t *testing.T) {
	e := projtest.NewEnv(t)
	ctx := context.Background()
	cloud := cloudinarytest.New(t, "demo", "key", "secret")
	store, err := images.NewCloudinary(images.Config{CloudName: "demo", APIKey: "key", APISecret: "secret", UploadPrefix: cloud.URL()})
	if err != nil {
		t.Fatal(err)
	}
	imgs := commands.NewProductImages(e.Store, e.Store.Sequences(map[string]string{commands.ProductImageIDs: "product_image_ids"}), store)
	projtest.StartEngine(t, e, 3)

	var products []int64
	for _, name := range []string{"Camera", "Lens", "Tripod"} {
		p, err := e.Cat.CreateProduct(ctx, projtest.MD, commands.CreateProduct{Name: name, Price: 1000, Stock: 5})
		if err != nil {
			t.Fatal(err)
		}
		products = append(products, p.ID)
	}
	want := map[int64]commands.ProductImagesResult{} // each product's images after its last command
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 60 {
		pid := products[rng.IntN(len(products))]
		cur := want[pid]
		var (
			res commands.ProductImagesResult
			err error
		)
		switch op := rng.IntN(10); {
		case op < 5 || len(cur.Images) == 0:
			pos := 0
			if n := len(cur.Images); n > 0 && rng.IntN(2) == 0 {
				pos = 1 + rng.IntN(n+1)
			}
			res, err = imgs.AddProductImage(ctx, projtest.MD, commands.AddProductImage{ProductID: pid,
				Data: tinyPNG(t, uint8(i)), Position: pos, Cover: rng.IntN(4) == 0})
			if errors.Is(err, domain.ErrConflict) && len(cur.Images) == 8 {
				continue // full
			}
		case op < 7:
			img := cur.Images[rng.IntN(len(cur.Images))]
			pos, cover := 1+rng.IntN(len(cur.Images)), true
			res, err = imgs.ArrangeProductImage(ctx, projtest.MD, commands.ArrangeProductImage{ProductID: pid, ImageID: img.ID,
				Position: &pos, Cover: &cover})
		case op < 9:
			res, err = imgs.RemoveProductImage(ctx, projtest.MD, pid, cur.Images[rng.IntN(len(cur.Images))].ID)
		default:
			_, err = e.Cat.AdjustStock(ctx, projtest.MD, commands.AdjustStock{ID: pid, Delta: 1})
			res = cur
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want[pid] = res
	}
	if _, err := e.Cat.DeleteProduct(ctx, projtest.MD, products[2]); err != nil {
		t.Fatal(err)
	}
	delete(want, products[2])
	projtest.WaitCaughtUp(t, e, projtest.AllProjectors...)

	for pid, res := range want {
		rows, err := e.Pool.Query(ctx, `SELECT id, position, cover FROM product_image WHERE product_id = $1 ORDER BY position`, pid)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			id       int64
			position int
			cover    bool
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.id, &x.position, &x.cover)
		})
		if err != nil {
			t.Fatal(err)
		}
		var wantRows []row
		for _, img := range res.Images {
			wantRows = append(wantRows, row{img.ID, img.Position, img.Cover})
		}
		if !slices.Equal(got, wantRows) {
			t.Fatalf("product %d: product_image %v, aggregate %v", pid, got, wantRows)
		}
	}
	var total int
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM product_image`).Scan(&total); err != nil || total < 6 {
		t.Fatalf("the history left %d images (%v); it should exercise more", total, err)
	}
	var left int
	if err := e.Pool.QueryRow(ctx, `SELECT count(*) FROM product_image WHERE product_id = $1`, products[2]).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d images of the deleted product (%v)", left, err)
	}
	projtest.RequireLiveRebuiltAndTwiceAlike(t, e, catalogproj.Products{})
}
