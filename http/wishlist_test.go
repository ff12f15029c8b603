package http_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/techvault/techvault/domain/wishlist"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/projections/wishlistproj"
)

// wishlistAnswer answers a wishlist command.
type wishlistAnswer struct {
	UserID     int64 `json:"user_id"`
	ProductID  int64 `json:"product_id"`
	OnWishlist bool  `json:"on_wishlist"`
	Changed    bool  `json:"changed"`
	Position   int64 `json:"position"`
}

type wishlistItem struct {
	ID      int64        `json:"id"`
	AddedAt string       `json:"added_at"`
	Product shownProduct `json:"product"`
}

// shopper is a signed-in customer's token.
type shopper struct {
	h     *harness
	id    int64
	token string
}

func (h *harness) shopper() shopper {
	c, id := h.member()
	return shopper{h: h, id: id, token: c.access}
}

func (s shopper) do(method, path string, want int, headers ...string) response {
	s.h.t.Helper()
	r := s.h.do(method, path, "", append([]string{"Authorization", "Bearer " + s.token}, headers...)...)
	if r.status != want {
		s.h.t.Fatalf("%s %s as user %d: %d, want %d: %s", method, path, s.id, r.status, want, r.body)
	}
	return r
}

func (s shopper) wish(method string, productID int64, want int) wishlistAnswer {
	s.h.t.Helper()
	var a wishlistAnswer
	r := s.do(method, fmt.Sprintf("/api/v1/wishlist/%d", productID), want)
	if want == 200 {
		r.json(s.h.t, &a)
	}
	return a
}

// list reads the shopper's wishlist once everything appended so far is projected.
func (s shopper) list(query string) page[wishlistItem] {
	s.h.t.Helper()
	var p page[wishlistItem]
	r := s.do("GET", "/api/v1/wishlist"+query, 200, "X-Min-Position", fmt.Sprint(s.h.head()))
	if r.header.Get("X-Min-Position-Reached") != "true" {
		s.h.t.Fatalf("GET /wishlist%s: position not reached", query)
	}
	r.json(s.h.t, &p)
	return p
}

func itemIDs(p page[wishlistItem]) []int64 {
	out := make([]int64, len(p.Items))
	for i, it := range p.Items {
		out[i] = it.Product.ID
	}
	return out
}

// The wishlist: adding twice is harmless, the list shows products as they are now (price,
// stock, cover), newest first and keyset paginated; a deleted product leaves every wishlist;
// nobody sees or changes another's; every bad input appends nothing; a rebuild equals live.
func TestWishlist(t *testing.T) {
	h, _ := imageHarness(t)
	ann, bob := h.shopper(), h.shopper()
	gpu, ssd, ram := h.newProduct("GPU"), h.newProduct("SSD"), h.newProduct("RAM")
	cover := h.mustUpload(ssd.ID, "ssd.png", pngImage(t))

	first := ann.wish("POST", gpu.ID, 200)
	before := h.head()
	again := ann.wish("POST", gpu.ID, 200)
	if !first.Changed || !first.OnWishlist || first.Position == 0 || again.Changed || !again.OnWishlist || h.head() != before {
		t.Fatalf("adding twice: %+v then %+v (log %d → %d)", first, again, before, h.head())
	}
	ann.wish("POST", ssd.ID, 200)
	ann.wish("POST", ram.ID, 200)
	bob.wish("POST", ssd.ID, 200)

	list := ann.list("")
	if got := itemIDs(list); fmt.Sprint(got) != fmt.Sprint([]int64{ram.ID, ssd.ID, gpu.ID}) || list.NextCursor != "" {
		t.Fatalf("ann's wishlist %v (cursor %q)", got, list.NextCursor)
	}
	if c := list.Items[1].Product.Cover; c == nil || c.ID != cover.ImageID || c.ThumbnailURL == "" {
		t.Fatalf("the SSD's card has no cover: %+v", list.Items[1].Product)
	}

	// Price and stock as they are now.
	h.admin("PATCH", fmt.Sprintf("/api/v1/products/%d", gpu.ID), `{"price":"79.50"}`, 200)
	h.admin("POST", fmt.Sprintf("/api/v1/products/%d/stock", gpu.ID), `{"quantity":0}`, 200)
	list = ann.list("")
	if p := list.Items[2].Product; p.ID != gpu.ID || p.Price != "79.50" || p.Stock != 0 || p.InStock {
		t.Fatalf("the GPU on the wishlist after the change: %+v", p)
	}

	// Keyset pages, newest first.
	page1 := ann.list("?limit=2")
	page2 := ann.list("?limit=2&cursor=" + url.QueryEscape(page1.NextCursor))
	if fmt.Sprint(itemIDs(page1)) != fmt.Sprint([]int64{ram.ID, ssd.ID}) || page1.NextCursor == "" ||
		fmt.Sprint(itemIDs(page2)) != fmt.Sprint([]int64{gpu.ID}) || page2.NextCursor != "" {
		t.Fatalf("pages %v (%q), %v (%q)", itemIDs(page1), page1.NextCursor, itemIDs(page2), page2.NextCursor)
	}

	// Someone else's wishlist is their own.
	if got := itemIDs(bob.list("")); fmt.Sprint(got) != fmt.Sprint([]int64{ssd.ID}) {
		t.Fatalf("bob sees %v", got)
	}

	// A deleted product leaves every wishlist, also an add that raced its deletion.
	h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d", ssd.ID), "", 200)
	if got := itemIDs(ann.list("")); fmt.Sprint(got) != fmt.Sprint([]int64{ram.ID, gpu.ID}) {
		t.Fatalf("ann's wishlist after the SSD's deletion: %v", got)
	}
	if got := bob.list(""); len(got.Items) != 0 {
		t.Fatalf("bob's wishlist after the SSD's deletion: %v", itemIDs(got))
	}
	late := h.shopper()
	raced(t, h, late.id, ssd.ID)
	if got := late.list(""); len(got.Items) != 0 {
		t.Fatalf("an add that raced the deletion shows: %v", itemIDs(got))
	}
	var rows int
	if err := h.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM wishlist WHERE product_id = $1`, ssd.ID).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d wishlist rows of the deleted product (%v)", rows, err)
	}

	// Removing: taken off; a second time, it is not there.
	removed := ann.wish("DELETE", gpu.ID, 200)
	if removed.OnWishlist || !removed.Changed {
		t.Fatalf("removed: %+v", removed)
	}
	if got := itemIDs(ann.list("")); fmt.Sprint(got) != fmt.Sprint([]int64{ram.ID}) {
		t.Fatalf("after removing: %v", got)
	}
	ann.wish("POST", gpu.ID, 200) // back again, with a new row
	if got := itemIDs(ann.list("")); fmt.Sprint(got) != fmt.Sprint([]int64{gpu.ID, ram.ID}) {
		t.Fatalf("after adding again: %v", got)
	}

	// Bad input: a clear 4xx, nothing appended.
	fan := h.newProduct("Fan")
	for _, tc := range []struct {
		name, method, path string
		as                 *shopper
		status             int
		field              string
	}{
		{"deleted product", "POST", fmt.Sprintf("/api/v1/wishlist/%d", ssd.ID), &ann, 404, "product_id"},
		{"unknown product", "POST", "/api/v1/wishlist/999999", &ann, 404, "product_id"},
		{"bad id", "POST", "/api/v1/wishlist/x1", &ann, 400, "product_id"},
		{"not on the wishlist", "DELETE", fmt.Sprintf("/api/v1/wishlist/%d", fan.ID), &ann, 404, "product_id"},
		{"someone else's item", "DELETE", fmt.Sprintf("/api/v1/wishlist/%d", ram.ID), &bob, 404, "product_id"},
		{"bad cursor", "GET", "/api/v1/wishlist?cursor=bogus", &ann, 400, "cursor"},
		{"another list's cursor", "GET", "/api/v1/wishlist?cursor=" + url.QueryEscape(pageCursor(t, h)), &ann, 400, "cursor"},
		{"limit too large", "GET", "/api/v1/wishlist?limit=101", &ann, 400, "limit"},
		{"signed out", "POST", fmt.Sprintf("/api/v1/wishlist/%d", ram.ID), nil, 401, ""},
		{"signed out list", "GET", "/api/v1/wishlist", nil, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.head()
			var headers []string
			if tc.as != nil {
				headers = []string{"Authorization", "Bearer " + tc.as.token}
			}
			r := h.do(tc.method, tc.path, "", headers...)
			var e errorBody
			r.json(t, &e)
			if r.status != tc.status || e.Error.Field != tc.field || e.Error.Message == "" {
				t.Fatalf("%d %s; want %d on %q", r.status, r.body, tc.status, tc.field)
			}
			if h.head() != before {
				t.Fatal("a refusal appended events")
			}
		})
	}

	// An erased account's wishlist goes with it.
	wisher := &customer{h: h}
	wisher.call("POST", "/api/v1/auth/register", registerBody("wisher@example.com"), 201)
	account := wisher.signIn("wisher@example.com", matrixPassword)
	wisher.call("POST", fmt.Sprintf("/api/v1/wishlist/%d", ram.ID), "", 200)
	if got := (shopper{h: h, id: account.User.ID, token: wisher.access}).list(""); len(got.Items) != 1 {
		t.Fatalf("the wisher's list: %v", itemIDs(got))
	}
	wisher.call("DELETE", "/api/v1/users/me", "", 200)
	if ok, err := h.app.Checkpoints.WaitFor(context.Background(), h.store, wishlistproj.WishlistProjector, h.head(), 10*time.Second); err != nil || !ok {
		t.Fatalf("the wishlist projector did not catch up: %v", err)
	}
	if err := h.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM wishlist WHERE user_id = $1`, account.User.ID).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d wishlist rows of the erased account (%v)", rows, err)
	}

	rebuildEqualsLive(t, h, wishlistproj.Wishlist{})
}

// raced appends, straight to the log, an add of a product to a user's wishlist as a command
// decided before the product's deletion would, delivered after it.
func raced(t *testing.T, h *harness, userID, productID int64) {
	t.Helper()
	ctx := context.Background()
	stream := wishlist.StreamID(userID)
	evs, err := h.store.Load(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	data := fmt.Appendf(nil, `{"user_id":%d,"product_id":%d}`, userID, productID)
	if _, err := h.store.Append(ctx, eventstore.Metadata{ActorID: fmt.Sprint(userID)}, eventstore.StreamAppend{
		StreamID: stream, StreamType: wishlist.StreamType, ExpectedVersion: int64(len(evs)),
		Events: []eventstore.NewEvent{{Type: wishlist.ItemAdded{}.EventType(), SchemaVersion: 1, Data: data}},
	}); err != nil {
		t.Fatal(err)
	}
}

// pageCursor is a cursor of GET /products, which the wishlist must refuse.
func pageCursor(t *testing.T, h *harness) string {
	t.Helper()
	var p page[shownProduct]
	h.read("/api/v1/products?limit=1", h.head()).json(t, &p)
	if p.NextCursor == "" {
		t.Fatal("no next page of products")
	}
	return p.NextCursor
}
