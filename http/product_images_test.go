package http_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"mime/multipart"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/cloudinarytest"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
)

// productImage is an image as the API shows it.
type productImage struct {
	ID           int64  `json:"id"`
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnail_url"`
	FullURL      string `json:"full_url"`
	Format       string `json:"format"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Bytes        int64  `json:"bytes"`
	Position     int    `json:"position"`
	Cover        bool   `json:"cover"`
}

// imagesAnswer is the answer of an image command.
type imagesAnswer struct {
	ProductID int64          `json:"product_id"`
	ImageID   int64          `json:"image_id"`
	Image     *productImage  `json:"image"`
	Deleted   bool           `json:"deleted"`
	Images    []productImage `json:"images"`
	Position  int64          `json:"position"`
}

// shownProduct is a product read with its cover and images.
type shownProduct struct {
	product
	Cover  *productImage  `json:"cover"`
	Images []productImage `json:"images"`
}

func ids(imgs []productImage) []int64 {
	out := make([]int64, len(imgs))
	for i, img := range imgs {
		out[i] = img.ID
	}
	return out
}

// webpImage is a 1×1 lossless WebP.
var webpImage = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\r\x00\x00\x00/\x00\x00\x00\x10\a\x10\x11\x11\x88\x88\xfe\a\x00")

func jpegImage(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 9))
	for x := range 16 {
		img.Set(x, x%9, color.RGBA{G: 200, A: 255})
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageHarness is a harness whose uploads go to a cloudinarytest server, which also serves the
// transformation URLs (DeliveryURL).
func imageHarness(t *testing.T) (*harness, *cloudinarytest.Server) {
	t.Helper()
	cloud := cloudinarytest.New(t, cloudName, cloudKey, cloudSecret)
	h := newHarness(t, harnessOpts{configure: func(c *app.Config) {
		c.Cloudinary = images.Config{CloudName: cloudName, APIKey: cloudKey, APISecret: cloudSecret,
			UploadPrefix: cloud.URL(), DeliveryURL: cloud.URL()}
	}})
	return h, cloud
}

// uploadForm is a multipart body: the file field image (unless data is nil) and text fields
// (name, value pairs).
func uploadForm(t *testing.T, filename string, data []byte, fields ...string) (string, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := w.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if data != nil {
		part, err := w.CreateFormFile("image", filename)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String(), w.FormDataContentType()
}

// upload posts an image as admin.
func (h *harness) upload(productID int64, filename string, data []byte, fields ...string) response {
	h.t.Helper()
	body, ct := uploadForm(h.t, filename, data, fields...)
	return h.do("POST", fmt.Sprintf("/api/v1/products/%d/images", productID), body,
		"Authorization", "Bearer "+adminToken, "Content-Type", ct)
}

func (h *harness) mustUpload(productID int64, filename string, data []byte, fields ...string) imagesAnswer {
	h.t.Helper()
	r := h.upload(productID, filename, data, fields...)
	if r.status != 201 {
		h.t.Fatalf("upload %s: %d %s", filename, r.status, r.body)
	}
	var a imagesAnswer
	r.json(h.t, &a)
	return a
}

func (h *harness) newProduct(name string) product {
	h.t.Helper()
	var p product
	h.admin("POST", "/api/v1/products", fmt.Sprintf(`{"name":%q,"price":"99.00","stock":3}`, name), 201).json(h.t, &p)
	return p
}

func (h *harness) shown(id, position int64) shownProduct {
	h.t.Helper()
	var p shownProduct
	h.read(fmt.Sprintf("/api/v1/products/%d", id), position).json(h.t, &p)
	return p
}

func fetchBytes(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := nethttp.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

// tableRows is every row of a table as JSON, sorted.
func tableRows(t *testing.T, h *harness, table string) []string {
	t.Helper()
	rows, err := h.db.Pool.Query(context.Background(),
		`SELECT to_jsonb(t)::text AS row FROM `+pgx.Identifier{table}.Sanitize()+` t ORDER BY row`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rebuildEqualsLive rebuilds a projector once the live one has processed everything and checks
// that its tables hold the same rows as before.
func rebuildEqualsLive(t *testing.T, h *harness, p projections.Projector) {
	t.Helper()
	if ok, err := h.app.Checkpoints.WaitFor(context.Background(), h.store, p.Name(), h.head(), 10*time.Second); err != nil || !ok {
		t.Fatalf("%s did not catch up: %v", p.Name(), err)
	}
	live := map[string][]string{}
	for _, table := range p.Tables() {
		live[table] = tableRows(t, h, table)
	}
	if _, err := projections.Rebuild(context.Background(), h.db.Pool, p, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("rebuilding %s: %v", p.Name(), err)
	}
	for _, table := range p.Tables() {
		rebuilt := tableRows(t, h, table)
		if !slices.Equal(live[table], rebuilt) {
			t.Fatalf("%s after a rebuild of %s:\nlive    %v\nrebuilt %v", table, p.Name(), live[table], rebuilt)
		}
	}
}

// Upload, list, choose the cover, move, remove; the product read and listings carry the cover
// and its transformation URLs; the cached card follows every change; removed and deleted
// products' uploads are destroyed at the stand-in, once each.
func TestProductImages(t *testing.T) {
	h, cloud := imageHarness(t)
	cam := h.newProduct("Camera")
	png := pngImage(t)

	// The first image is the cover; its URLs deliver the upload (the thumbnail and full size
	// through Cloudinary transformations).
	first := h.mustUpload(cam.ID, "front.png", png)
	if first.Image == nil || !first.Image.Cover || first.Image.Position != 1 || first.Image.Format != "png" ||
		first.Image.Width != 8 || first.Image.Height != 8 || len(first.Images) != 1 || first.Position == 0 {
		t.Fatalf("first upload = %+v", first)
	}
	if !strings.Contains(first.Image.ThumbnailURL, "/image/upload/"+images.ThumbnailTransformation+"/v") ||
		!strings.Contains(first.Image.FullURL, "/image/upload/"+images.FullTransformation+"/v") {
		t.Fatalf("transformation URLs %s, %s", first.Image.ThumbnailURL, first.Image.FullURL)
	}
	for _, u := range []string{first.Image.URL, first.Image.ThumbnailURL, first.Image.FullURL} {
		if !bytes.Equal(fetchBytes(t, u), png) {
			t.Fatalf("%s does not deliver the upload", u)
		}
	}
	// An upload repeated under its Idempotency-Key (a client's retry draws a new multipart
	// boundary, as every client does) answers the first one without uploading again; the key
	// with another image is a conflict.
	keyed := func(data []byte) response {
		t.Helper()
		body, ct := uploadForm(t, "retry.png", data)
		return h.do("POST", fmt.Sprintf("/api/v1/products/%d/images", cam.ID), body,
			"Authorization", "Bearer "+adminToken, "Content-Type", ct, "Idempotency-Key", "upload-retry-1")
	}
	before := len(cloud.Assets())
	var once, again imagesAnswer
	if r := keyed(png); r.status != 201 {
		t.Fatalf("keyed upload: %d %s", r.status, r.body)
	} else {
		r.json(t, &once)
	}
	if r := keyed(png); r.status != 201 {
		t.Fatalf("the keyed upload repeated: %d %s", r.status, r.body)
	} else {
		r.json(t, &again)
	}
	if again.ImageID != once.ImageID || again.Position != once.Position || len(cloud.Assets()) != before+1 {
		t.Fatalf("repeat answered image %d at %d (first %d at %d); uploads %d, want %d",
			again.ImageID, again.Position, once.ImageID, once.Position, len(cloud.Assets()), before+1)
	}
	if r := keyed(jpegImage(t)); r.status != 409 || len(cloud.Assets()) != before+1 {
		t.Fatalf("the key with another image: %d %s, uploads %d", r.status, r.body, len(cloud.Assets()))
	}
	h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d/images/%d", cam.ID, once.ImageID), "", 200)

	// A JPEG placed first, then a WebP made the cover.
	second := h.mustUpload(cam.ID, "side.jpg", jpegImage(t), "position", "1")
	third := h.mustUpload(cam.ID, "top.webp", webpImage, "cover", "true")
	if got := ids(third.Images); !slices.Equal(got, []int64{second.ImageID, first.ImageID, third.ImageID}) ||
		!third.Image.Cover || third.Image.Format != "webp" || second.Image.Format != "jpg" {
		t.Fatalf("after three uploads: %+v", third)
	}

	// GET /products/{id} lists every image in order with the cover; GET /products carries the
	// cover.
	shown := h.shown(cam.ID, third.Position)
	if !slices.Equal(ids(shown.Images), ids(third.Images)) || shown.Cover == nil || shown.Cover.ID != third.ImageID ||
		shown.Cover.ThumbnailURL != third.Image.ThumbnailURL || shown.Cover.FullURL != third.Image.FullURL {
		t.Fatalf("product read = %+v", shown)
	}
	var list page[shownProduct]
	h.read("/api/v1/products", third.Position).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].Cover == nil || list.Items[0].Cover.ID != third.ImageID ||
		list.Items[0].Cover.ThumbnailURL == "" || list.Items[0].Images != nil {
		t.Fatalf("listing = %+v", list)
	}

	// The cached card (Redis, no X-Min-Position) follows image changes.
	cardCover := func(want int64) {
		t.Helper()
		eventually(t, fmt.Sprintf("the cached card showing cover %d", want), func() bool {
			r := h.do("GET", fmt.Sprintf("/api/v1/products/%d", cam.ID), "")
			var p shownProduct
			r.json(t, &p)
			return r.header.Get("X-Read-Source") == "redis" && p.Cover != nil && p.Cover.ID == want
		})
	}
	cardCover(third.ImageID)

	// Choose another cover and move it last.
	var moved imagesAnswer
	h.admin("PATCH", fmt.Sprintf("/api/v1/products/%d/images/%d", cam.ID, first.ImageID), `{"cover":true,"position":3}`, 200).json(t, &moved)
	if got := ids(moved.Images); !slices.Equal(got, []int64{second.ImageID, third.ImageID, first.ImageID}) ||
		!moved.Image.Cover || moved.Image.Position != 3 {
		t.Fatalf("after PATCH: %+v", moved)
	}
	cardCover(first.ImageID)

	// Removing the cover makes the first image left the cover; its upload is destroyed after
	// the fact.
	var removed imagesAnswer
	h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d/images/%d", cam.ID, first.ImageID), "", 200).json(t, &removed)
	if !removed.Deleted || removed.Image != nil || !slices.Equal(ids(removed.Images), []int64{second.ImageID, third.ImageID}) ||
		!removed.Images[0].Cover {
		t.Fatalf("after DELETE: %+v", removed)
	}
	firstID := publicID(t, first.Image.URL)
	eventually(t, "the removed image destroyed", func() bool { return slices.Contains(cloud.Destroyed(), firstID) })
	cardCover(second.ImageID)
	if shown = h.shown(cam.ID, removed.Position); len(shown.Images) != 2 || shown.Cover.ID != second.ImageID {
		t.Fatalf("product read after DELETE = %+v", shown)
	}

	// Deleting the product destroys its images at Cloudinary, after the fact, once each.
	kept := []string{publicID(t, second.Image.URL), publicID(t, third.Image.URL)}
	h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d", cam.ID), "", 200)
	eventually(t, "the deleted product's images destroyed", func() bool {
		d := cloud.Destroyed()
		return slices.Contains(d, kept[0]) && slices.Contains(d, kept[1])
	})

	// The same after a Cloudinary outage: the reactor retries what failed.
	lens := h.newProduct("Lens")
	a := h.mustUpload(lens.ID, "a.png", png)
	b := h.mustUpload(lens.ID, "b.png", png)
	outage := []string{publicID(t, a.Image.URL), publicID(t, b.Image.URL)}
	cloud.FailNext(2)
	h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d", lens.ID), "", 200)
	eventually(t, "the images destroyed after the outage", func() bool {
		d := cloud.Destroyed()
		return slices.Contains(d, outage[0]) && slices.Contains(d, outage[1])
	})
	if cloud.Refused() != 2 {
		t.Fatalf("the stand-in refused %d calls, want the 2 of the outage", cloud.Refused())
	}
	h.read("/api/v1/products?limit=1", h.head())
	for _, id := range append(append([]string{firstID}, kept...), outage...) {
		if n := cloud.DestroyCalls()[id]; n != 1 {
			t.Errorf("%s destroyed by %d calls, want exactly 1", id, n)
		}
	}
	if assets := cloud.Assets(); len(assets) != 0 {
		t.Fatalf("uploads left behind: %d", len(assets))
	}

	// A rebuild of the products projector (products and product_image) equals the live tables.
	tripod := h.newProduct("Tripod")
	var arranged imagesAnswer
	for _, name := range []string{"1.png", "2.png", "3.png"} {
		arranged = h.mustUpload(tripod.ID, name, png)
	}
	h.admin("PATCH", fmt.Sprintf("/api/v1/products/%d/images/%d", tripod.ID, arranged.ImageID), `{"cover":true,"position":1}`, 200)
	h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d/images/%d", tripod.ID, arranged.Images[1].ID), "", 200)
	h.read("/api/v1/products", h.head())
	if rows := tableRows(t, h, catalogproj.ProductImageTable); len(rows) != 2 {
		t.Fatalf("product_image holds %d rows, want 2", len(rows))
	}
	rebuildEqualsLive(t, h, catalogproj.Products{})
}

// publicID is the public id in a delivery URL: …/image/upload/v<version>/<public id>.<format>.
func publicID(t *testing.T, url string) string {
	t.Helper()
	_, rest, ok := strings.Cut(url, "/image/upload/v")
	_, id, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || !strings.Contains(id, ".") {
		t.Fatalf("no public id in %s", url)
	}
	return id[:strings.LastIndex(id, ".")]
}

// Every refused upload or arrangement is a clear 4xx JSON error that appends nothing and leaves
// nothing at Cloudinary: a ninth image, 6 MB, a text file named .png, a bad position or cover, an
// unknown field, product or image.
func TestProductImageBadInput(t *testing.T) {
	h, cloud := imageHarness(t)
	p := h.newProduct("Drone")
	png := pngImage(t)
	var last imagesAnswer
	for i := range 8 {
		last = h.mustUpload(p.ID, fmt.Sprintf("%d.png", i), png)
	}
	other := h.newProduct("Gimbal")
	one := h.mustUpload(other.ID, "g.png", png)
	imgPath := fmt.Sprintf("/api/v1/products/%d/images/%d", other.ID, one.ImageID)
	gone := h.newProduct("Gone")
	h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d", gone.ID), "", 200)
	uploads := func(id int64) string { return fmt.Sprintf("/api/v1/products/%d/images", id) }

	big := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 6<<20)...)
	form := func(filename string, data []byte, fields ...string) (string, []string) {
		body, ct := uploadForm(t, filename, data, fields...)
		return body, []string{"Content-Type", ct}
	}
	type badCase struct {
		name, method, path string
		body               string
		headers            []string
		status             int
		field, message     string
	}
	var cases []badCase
	add := func(name, method, path string, body string, headers []string, status int, field, message string) {
		cases = append(cases, badCase{name, method, path, body, headers, status, field, message})
	}
	b, hd := form("9.png", png)
	add("a ninth image", "POST", uploads(p.ID), b, hd, 409, "image", "at most 8 images")
	b, hd = form("big.png", big)
	add("6 MB", "POST", uploads(other.ID), b, hd, 413, "image", "at most 5 MB")
	add("6 MB with an Idempotency-Key", "POST", uploads(other.ID), b, append(hd, "Idempotency-Key", "big-1"), 413, "image", "at most 5 MB")
	b, hd = form("photo.png", []byte("just some text, named photo.png by its sender\n"))
	add("a text file named .png", "POST", uploads(other.ID), b, hd, 422, "image", "must be a JPEG, PNG or WebP image")
	b, hd = form("x.png", png, "position", "0")
	add("position 0", "POST", uploads(other.ID), b, hd, 422, "position", "at least 1")
	b, hd = form("x.png", png, "position", "3")
	add("position past the end", "POST", uploads(other.ID), b, hd, 422, "position", "from 1 to 2")
	b, hd = form("x.png", png, "position", "first")
	add("position not a number", "POST", uploads(other.ID), b, hd, 400, "position", "whole number")
	b, hd = form("x.png", png, "cover", "yes please")
	add("cover not a boolean", "POST", uploads(other.ID), b, hd, 400, "cover", "true or false")
	b, hd = form("x.png", png, "caption", "hi")
	add("unknown field", "POST", uploads(other.ID), b, hd, 400, "caption", "unknown field")
	b, hd = form("", nil, "cover", "true")
	add("no image", "POST", uploads(other.ID), b, hd, 400, "image", "no field named image")
	add("not multipart", "POST", uploads(other.ID), `{"image":"x"}`, nil, 415, "image", "multipart/form-data")
	b, hd = form("x.png", png)
	add("unknown product", "POST", uploads(999999), b, hd, 404, "", "not found")
	add("deleted product", "POST", uploads(gone.ID), b, hd, 404, "", "not found")
	add("uncover", "PATCH", imgPath, `{"cover":false}`, nil, 422, "cover", "make another image the cover")
	add("move past the end", "PATCH", imgPath, `{"position":2}`, nil, 422, "position", "from 1 to 1")
	add("nothing to change", "PATCH", imgPath, `{}`, nil, 422, "", "nothing to change")
	add("unknown JSON field", "PATCH", imgPath, `{"cover":true,"colour":"red"}`, nil, 400, "colour", "unknown field")
	add("position as text", "PATCH", imgPath, `{"position":"2"}`, nil, 400, "position", "")
	add("unknown image", "PATCH", fmt.Sprintf("/api/v1/products/%d/images/%d", other.ID, last.ImageID), `{"cover":true}`, nil, 404, "image_id", "has no image")
	add("remove an unknown image", "DELETE", fmt.Sprintf("/api/v1/products/%d/images/%d", other.ID, last.ImageID), "", nil, 404, "image_id", "has no image")
	add("bad image id", "DELETE", fmt.Sprintf("/api/v1/products/%d/images/01", other.ID), "", nil, 400, "image_id", "")

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, assets := h.head(), len(cloud.Assets())
			r := h.do(tc.method, tc.path, tc.body, append([]string{"Authorization", "Bearer " + adminToken}, tc.headers...)...)
			var e errorBody
			r.json(t, &e)
			if r.status != tc.status || e.Error.Field != tc.field || !strings.Contains(e.Error.Message, tc.message) {
				t.Fatalf("%d %s; want %d on %q saying %q", r.status, r.body, tc.status, tc.field, tc.message)
			}
			if after := h.head(); after != before {
				t.Fatalf("refused with %d, yet the log grew from %d to %d", r.status, before, after)
			}
			if n := len(cloud.Assets()); n != assets {
				t.Fatalf("refused with %d, yet the stand-in holds %d uploads, was %d", r.status, n, assets)
			}
		})
	}
	// A body sent without a length is cut off past the limit as it streams.
	body, ct := uploadForm(t, "big.png", big)
	req, err := nethttp.NewRequest("POST", h.srv.URL+uploads(other.ID), io.MultiReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", ct)
	before := h.head()
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 413 || req.ContentLength != 0 || h.head() != before {
		t.Fatalf("streamed 6 MB: %d (length %d)", resp.StatusCode, req.ContentLength)
	}

	// The ninth image was refused before any upload; the eight are intact.
	if shown := h.shown(p.ID, last.Position); len(shown.Images) != 8 {
		t.Fatalf("%d images after the refusals", len(shown.Images))
	}
	// A customer may not upload (the role matrix checks every route; this is the one that
	// uploads first when allowed).
	body, ct = uploadForm(t, "x.png", png)
	if r := h.do("POST", uploads(other.ID), body, "Authorization", "Bearer "+accessToken(5, "customer"), "Content-Type", ct); r.status != 403 {
		t.Fatalf("customer upload: %d %s", r.status, r.body)
	}
	if n := strconv.Itoa(len(cloud.Assets())); n != "9" {
		t.Fatalf("%s uploads at the stand-in, want 9", n)
	}
}
