package http_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/techvault/techvault/domain/review"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/stripetest"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/projections/reviewproj"
)

// reviewResult is the answer of a review command.
type reviewResult struct {
	ID           int64  `json:"id"`
	ProductID    int64  `json:"product_id"`
	UserID       int64  `json:"user_id"`
	Rating       int    `json:"rating"`
	Title        string `json:"title"`
	Text         string `json:"text"`
	Hidden       bool   `json:"hidden"`
	HelpfulCount int64  `json:"helpful_count"`
	Position     int64  `json:"position"`
}

// listedReview is a review as GET /products/{id}/reviews lists it.
type listedReview struct {
	ID               int64     `json:"id"`
	ProductID        int64     `json:"product_id"`
	UserID           int64     `json:"user_id"`
	Author           string    `json:"author"`
	Rating           int       `json:"rating"`
	Title            string    `json:"title"`
	Text             string    `json:"text"`
	VerifiedPurchase bool      `json:"verified_purchase"`
	HelpfulCount     int64     `json:"helpful_count"`
	Hidden           bool      `json:"hidden"`
	CreatedAt        time.Time `json:"created_at"`
}

// deletedResult is the answer of a deletion.
type deletedResult struct {
	ID       int64 `json:"id"`
	Deleted  bool  `json:"deleted"`
	Position int64 `json:"position"`
}

// ratedProduct is the rating part of a product's JSON.
type ratedProduct struct {
	ID              int64    `json:"id"`
	Rating          float64  `json:"rating"`
	RatingCount     int64    `json:"rating_count"`
	RatingHistogram [5]int64 `json:"rating_histogram"`
}

// reviewShop is a store with Stripe (stripe-mock) for the reviews' tests.
func reviewShop(t *testing.T) *shop {
	t.Helper()
	mock := stripetest.StartMock(t)
	h := newHarness(t, harnessOpts{limits: generousLimits(), configure: func(c *app.Config) {
		c.Stripe = stripeConfig(mock)
	}})
	s := &shop{h: h}
	s.gpu = s.product(t, "RTX 4070 SUPER", "599.99", 50)
	s.ssd = s.product(t, "990 PRO 2TB", "169.99", 50)
	return s
}

func reviewsPath(productID int64) string {
	return fmt.Sprintf("/api/v1/products/%d/reviews", productID)
}
func reviewPath(id int64) string { return fmt.Sprintf("/api/v1/reviews/%d", id) }

// writeReview has c review a product (body: POST /products/{id}/reviews's).
func writeReview(c *customer, productID int64, body string) reviewResult {
	c.h.t.Helper()
	var r reviewResult
	c.call("POST", reviewsPath(productID), body, 201).json(c.h.t, &r)
	return r
}

// rating reads a product's rating once the products projector has reached pos.
func rating(t *testing.T, h *harness, productID, pos int64) ratedProduct {
	t.Helper()
	var p ratedProduct
	h.with(t).read(fmt.Sprintf("/api/v1/products/%d", productID), pos).json(t, &p)
	return p
}

func wantRating(t *testing.T, h *harness, productID, pos int64, avg float64, hist [5]int64) {
	t.Helper()
	p := rating(t, h, productID, pos)
	var n int64
	for _, x := range hist {
		n += x
	}
	if p.Rating != avg || p.RatingCount != n || p.RatingHistogram != hist {
		t.Fatalf("product %d: rating %v, count %d, histogram %v; want %v, %d, %v", productID, p.Rating, p.RatingCount,
			p.RatingHistogram, avg, n, hist)
	}
}

// listReviews lists a product's reviews as the holder of token ("": anonymous) once every
// projector the list reads has reached pos.
func listReviews(t *testing.T, h *harness, productID int64, query string, pos int64, token string) page[listedReview] {
	t.Helper()
	headers := []string{"X-Min-Position", strconv.FormatInt(pos, 10)}
	if token != "" {
		headers = append(headers, "Authorization", "Bearer "+token)
	}
	r := h.with(t).do("GET", reviewsPath(productID)+query, "", headers...)
	if r.status != 200 || r.header.Get("X-Min-Position-Reached") != "true" {
		t.Fatalf("GET %s%s: %d %s", reviewsPath(productID), query, r.status, r.body)
	}
	var p page[listedReview]
	r.json(t, &p)
	return p
}

func reviewIDs(p page[listedReview]) []int64 {
	ids := make([]int64, 0, len(p.Items))
	for _, r := range p.Items {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestReviews is issue 14's reviews through HTTP: writing, editing, voting, hiding and deleting
// reviews and the product's rating following each step; verified purchases before and after
// payment; pagination and sorts; every kind of bad input; concurrent duplicates; and a rebuild
// of the projections equal to what they built live.
func TestReviews(t *testing.T) {
	s := reviewShop(t)
	h := s.h

	t.Run("the whole flow", func(t *testing.T) {
		h := h.with(t)
		ada, _, _ := s.shopper(t)
		bob, _, _ := s.shopper(t)
		p := s.product(t, "Flow Keyboard", "89.00", 10)
		wantRating(t, h, p.ID, p.Position, 0, [5]int64{})

		// A browser form sends its text's line ends as CR LF: kept as line feeds.
		a := writeReview(ada, p.ID, `{"rating":4,"title":"  Clicky  ","text":"Great keys.\r\nLoud, though."}`)
		if a.Rating != 4 || a.Title != "Clicky" || a.Text != "Great keys.\nLoud, though." || a.ProductID != p.ID || a.Position == 0 {
			t.Fatalf("created: %+v", a)
		}
		wantRating(t, h, p.ID, a.Position, 4, [5]int64{0, 0, 0, 1, 0})
		list := listReviews(t, h, p.ID, "", a.Position, "")
		if len(list.Items) != 1 || list.Items[0].Author != "Ada L." || list.Items[0].Title != "Clicky" ||
			list.Items[0].VerifiedPurchase || list.Items[0].Hidden || list.NextCursor != "" {
			t.Fatalf("listed: %+v", list)
		}

		b := writeReview(bob, p.ID, `{"rating":2}`)
		wantRating(t, h, p.ID, b.Position, 3, [5]int64{0, 1, 0, 1, 0})

		// Ada edits hers: the rating moves, the review keeps its id and creation time.
		var e reviewResult
		ada.call("PATCH", reviewPath(a.ID), `{"rating":5}`, 200).json(t, &e)
		if e.ID != a.ID || e.Rating != 5 || e.Title != "Clicky" {
			t.Fatalf("edited: %+v", e)
		}
		wantRating(t, h, p.ID, e.Position, 3.5, [5]int64{0, 1, 0, 0, 1})
		// An edit that changes nothing appends nothing.
		before := h.head()
		ada.call("PATCH", reviewPath(a.ID), `{"rating":5,"title":"Clicky"}`, 200)
		if h.head() != before {
			t.Fatal("an edit that changes nothing appended")
		}

		// Bob finds Ada's review helpful, once however often he says so.
		var v reviewResult
		bob.call("POST", reviewPath(a.ID)+"/helpful", "", 200).json(t, &v)
		if v.HelpfulCount != 1 {
			t.Fatalf("voted: %+v", v)
		}
		voted := v.Position
		before = h.head()
		bob.call("POST", reviewPath(a.ID)+"/helpful", "", 200).json(t, &v)
		if v.HelpfulCount != 1 || h.head() != before {
			t.Fatalf("a second vote: %+v, log %d → %d", v, before, h.head())
		}
		if got := listReviews(t, h, p.ID, "", voted, ""); got.Items[1].ID != a.ID || got.Items[1].HelpfulCount != 1 {
			t.Fatalf("after the vote: %+v", got.Items)
		}

		// An admin hides Bob's: it leaves the public list and the rating; admins and Bob still see it.
		var hid reviewResult
		h.admin("POST", reviewPath(b.ID)+"/hide", "", 200).json(t, &hid)
		if !hid.Hidden {
			t.Fatalf("hidden: %+v", hid)
		}
		wantRating(t, h, p.ID, hid.Position, 5, [5]int64{0, 0, 0, 0, 1})
		if got := reviewIDs(listReviews(t, h, p.ID, "", hid.Position, "")); !slices.Equal(got, []int64{a.ID}) {
			t.Fatalf("public list with a hidden review: %v", got)
		}
		if got := reviewIDs(listReviews(t, h, p.ID, "", hid.Position, ada.access)); !slices.Equal(got, []int64{a.ID}) {
			t.Fatalf("another customer's list with a hidden review: %v", got)
		}
		for _, tok := range []string{adminToken, bob.access} {
			got := listReviews(t, h, p.ID, "", hid.Position, tok)
			if !slices.Equal(reviewIDs(got), []int64{b.ID, a.ID}) || !got.Items[0].Hidden {
				t.Fatalf("the admin's or author's list with a hidden review: %+v", got.Items)
			}
		}
		before = h.head()
		h.admin("POST", reviewPath(b.ID)+"/hide", "", 200) // hiding twice changes nothing
		if h.head() != before {
			t.Fatal("hiding a hidden review appended")
		}
		h.admin("POST", reviewPath(b.ID)+"/unhide", "", 200).json(t, &hid)
		wantRating(t, h, p.ID, hid.Position, 3.5, [5]int64{0, 1, 0, 0, 1})
		if got := reviewIDs(listReviews(t, h, p.ID, "", hid.Position, "")); !slices.Equal(got, []int64{b.ID, a.ID}) {
			t.Fatalf("public list after unhiding: %v", got)
		}

		// Bob deletes his; he may then review the product again (a new review).
		var del deletedResult
		bob.call("DELETE", reviewPath(b.ID), "", 200).json(t, &del)
		if !del.Deleted || del.ID != b.ID {
			t.Fatalf("deleted: %+v", del)
		}
		wantRating(t, h, p.ID, del.Position, 5, [5]int64{0, 0, 0, 0, 1})
		b2 := writeReview(bob, p.ID, `{"rating":1,"text":"Changed my mind."}`)
		if b2.ID == b.ID {
			t.Fatal("a review after a deletion kept the deleted one's id")
		}
		wantRating(t, h, p.ID, b2.Position, 3, [5]int64{1, 0, 0, 0, 1})
		if got := reviewIDs(listReviews(t, h, p.ID, "", b2.Position, "")); !slices.Equal(got, []int64{b2.ID, a.ID}) {
			t.Fatalf("list after a deletion and a new review: %v", got)
		}

		// The product card served from Redis carries the rating too, and equals Postgres's.
		fresh := h.read(fmt.Sprintf("/api/v1/products/%d", p.ID), b2.Position)
		eventually(t, "the Redis card to carry the new rating", func() bool {
			r := h.do("GET", fmt.Sprintf("/api/v1/products/%d", p.ID), "")
			return r.header.Get("X-Read-Source") == "redis" && string(r.body) == string(fresh.body)
		})
	})

	t.Run("verified purchase", func(t *testing.T) {
		h := h.with(t)
		carol, addr, _ := s.shopper(t)
		// Carol reviews the SSD before buying it: not verified.
		early := writeReview(carol, s.ssd.ID, `{"rating":5}`)
		if got := listReviews(t, h, s.ssd.ID, "", early.Position, ""); got.Items[0].ID != early.ID || got.Items[0].VerifiedPurchase {
			t.Fatalf("before any order: %+v", got.Items)
		}
		add(carol, s.ssd.ID, 1)
		add(carol, s.gpu.ID, 1)
		placed := placeOrder(carol, addr)
		if got := listReviews(t, h, s.ssd.ID, "", placed.Position, ""); got.Items[0].VerifiedPurchase {
			t.Fatalf("an unpaid order verified the review: %+v", got.Items[0])
		}
		paid := payByWebhook(t, h, placed.Order.ID, placed.Payment.IntentID, placed.Order.Total.Cents())
		if got := listReviews(t, h, s.ssd.ID, "", paid, ""); got.Items[0].ID != early.ID || !got.Items[0].VerifiedPurchase {
			t.Fatalf("a review written before the payment is not verified after it: %+v", got.Items[0])
		}
		// A review written after the payment is verified at once.
		late := writeReview(carol, s.gpu.ID, `{"rating":3}`)
		if got := listReviews(t, h, s.gpu.ID, "", late.Position, ""); got.Items[0].ID != late.ID || !got.Items[0].VerifiedPurchase {
			t.Fatalf("a review after the payment: %+v", got.Items[0])
		}
		// Someone who bought nothing is not verified.
		dan, _, _ := s.shopper(t)
		other := writeReview(dan, s.ssd.ID, `{"rating":1}`)
		if got := listReviews(t, h, s.ssd.ID, "", other.Position, ""); got.Items[0].ID != other.ID || got.Items[0].VerifiedPurchase {
			t.Fatalf("a review without a purchase: %+v", got.Items[0])
		}
		// A refund takes the purchase back.
		var step struct {
			Position int64 `json:"position"`
		}
		h.admin("POST", fmt.Sprintf("/api/v1/orders/%d/refund", placed.Order.ID), "", 200).json(t, &step)
		got := listReviews(t, h, s.ssd.ID, "", step.Position, "")
		for _, r := range got.Items {
			if r.VerifiedPurchase {
				t.Fatalf("verified after the refund: %+v", r)
			}
		}
	})

	t.Run("pagination and sorts", func(t *testing.T) {
		h := h.with(t)
		p := s.product(t, "Paged Mouse", "19.99", 10)
		var ids []int64
		var last int64
		for i := range 7 {
			c, _ := h.member()
			c.lastPosition = max(c.lastPosition, p.Position)
			r := writeReview(c, p.ID, fmt.Sprintf(`{"rating":%d}`, i%5+1))
			ids, last = append(ids, r.ID), r.Position
		}
		// Newest first, three at a time.
		var got []int64
		query := "?limit=3"
		for pages := 0; ; pages++ {
			pg := listReviews(t, h, p.ID, query, last, "")
			if len(pg.Items) > 3 || pages > 3 {
				t.Fatalf("page %d: %d items", pages, len(pg.Items))
			}
			got = append(got, reviewIDs(pg)...)
			if pg.NextCursor == "" {
				break
			}
			query = "?limit=3&cursor=" + pg.NextCursor
		}
		want := slices.Clone(ids)
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Fatalf("newest first: %v, want %v", got, want)
		}
		// Most helpful first: votes for the third (3), the sixth (2) and the first (1) review.
		for i, votes := range map[int]int{2: 3, 5: 2, 0: 1} {
			for range votes {
				voter, _ := h.member()
				var res reviewResult
				voter.call("POST", reviewPath(ids[i])+"/helpful", "", 200).json(t, &res)
				last = max(last, res.Position)
			}
		}
		got, query = nil, "?sort=-helpful&limit=2"
		for pages := 0; ; pages++ {
			pg := listReviews(t, h, p.ID, query, last, "")
			if pages > 4 {
				t.Fatal("too many pages")
			}
			got = append(got, reviewIDs(pg)...)
			if pg.NextCursor == "" {
				break
			}
			query = "?sort=-helpful&limit=2&cursor=" + pg.NextCursor
		}
		want = []int64{ids[2], ids[5], ids[0], ids[6], ids[4], ids[3], ids[1]}
		if !slices.Equal(got, want) {
			t.Fatalf("most helpful first: %v, want %v", got, want)
		}
		// -created_at is the default order, by name.
		if a, b := listReviews(t, h, p.ID, "?sort=-created_at", last, ""), listReviews(t, h, p.ID, "", last, ""); !slices.Equal(reviewIDs(a), reviewIDs(b)) {
			t.Fatalf("sort=-created_at %v differs from the default %v", reviewIDs(a), reviewIDs(b))
		}
	})

	t.Run("sort=-rating", func(t *testing.T) {
		h := h.with(t)
		var cat category
		h.admin("POST", "/api/v1/categories", `{"name":"Rated"}`, 201).json(t, &cat)
		var prods []product
		for i, name := range []string{"Unrated", "Low", "High", "Middle"} {
			var p product
			h.admin("POST", "/api/v1/products", fmt.Sprintf(`{"name":%q,"price":"%d.00","stock":1,"category_id":%d}`, name, 10+i, cat.ID), 201).json(t, &p)
			prods = append(prods, p)
		}
		var last int64
		for i, ratings := range [][]int{nil, {1, 2}, {5, 4, 5}, {3, 4}} {
			for _, r := range ratings {
				c, _ := h.member()
				c.lastPosition = max(c.lastPosition, prods[i].Position)
				last = max(last, writeReview(c, prods[i].ID, fmt.Sprintf(`{"rating":%d}`, r)).Position)
			}
		}
		var got []string
		query := fmt.Sprintf("?category_id=%d&sort=-rating&limit=2", cat.ID)
		for pages := 0; ; pages++ {
			var pg page[struct {
				Name        string  `json:"name"`
				Rating      float64 `json:"rating"`
				RatingCount int64   `json:"rating_count"`
			}]
			h.read("/api/v1/products"+query, last).json(t, &pg)
			for _, p := range pg.Items {
				got = append(got, fmt.Sprintf("%s %.2f/%d", p.Name, p.Rating, p.RatingCount))
			}
			if pg.NextCursor == "" || pages > 3 {
				break
			}
			query = fmt.Sprintf("?category_id=%d&sort=-rating&limit=2&cursor=%s", cat.ID, pg.NextCursor)
		}
		want := []string{"High 4.67/3", "Middle 3.50/2", "Low 1.50/2", "Unrated 0.00/0"}
		if !slices.Equal(got, want) {
			t.Fatalf("sort=-rating: %v, want %v", got, want)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		h := h.with(t)
		eve, _, _ := s.shopper(t)
		fay, _, _ := s.shopper(t)
		p := s.product(t, "Bad Input Monitor", "299.00", 5)
		gone := s.product(t, "Discontinued Monitor", "199.00", 5)
		gus, _, _ := s.shopper(t)
		mine := writeReview(eve, p.ID, `{"rating":3}`)
		hidden := writeReview(fay, gone.ID, `{"rating":2}`)
		orphan := writeReview(gus, gone.ID, `{"rating":4}`)
		h.admin("POST", reviewPath(hidden.ID)+"/hide", "", 200)
		var del deletedResult
		h.admin("DELETE", fmt.Sprintf("/api/v1/products/%d", gone.ID), "", 200).json(t, &del)
		listReviews(t, h, p.ID, "", del.Position, "") // every projector has caught up

		as := func(c *customer) []string { return []string{"Authorization", "Bearer " + c.access} }
		admin := []string{"Authorization", "Bearer " + adminToken}
		post := reviewsPath(p.ID)
		runBadCases(t, h, []badCase{
			{name: "rating 0", method: "POST", path: post, body: `{"rating":0}`, headers: as(fay), status: 422, code: "invalid", field: "rating", message: "1 to 5"},
			{name: "rating 6", method: "POST", path: post, body: `{"rating":6}`, headers: as(fay), status: 422, code: "invalid", field: "rating", message: "1 to 5"},
			{name: "rating -1", method: "POST", path: post, body: `{"rating":-1}`, headers: as(fay), status: 422, code: "invalid", field: "rating"},
			{name: "rating 4.5", method: "POST", path: post, body: `{"rating":4.5}`, headers: as(fay), status: 400, code: "invalid", field: "rating", message: "whole number"},
			{name: `rating "five"`, method: "POST", path: post, body: `{"rating":"five"}`, headers: as(fay), status: 400, code: "invalid", field: "rating"},
			{name: `rating "5"`, method: "POST", path: post, body: `{"rating":"5"}`, headers: as(fay), status: 400, code: "invalid", field: "rating"},
			{name: "rating huge", method: "POST", path: post, body: `{"rating":99999999999999999999}`, headers: as(fay), status: 400, code: "invalid", field: "rating"},
			{name: "no rating", method: "POST", path: post, body: `{"title":"Meh"}`, headers: as(fay), status: 422, code: "invalid", field: "rating", message: "required"},
			{name: "null rating", method: "POST", path: post, body: `{"rating":null}`, headers: as(fay), status: 422, code: "invalid", field: "rating"},
			{name: "title too long", method: "POST", path: post, body: fmt.Sprintf(`{"rating":3,"title":%q}`, longText(review.MaxTitle+1)), headers: as(fay), status: 422, code: "invalid", field: "title"},
			{name: "title on two lines", method: "POST", path: post, body: `{"rating":3,"title":"a\nb"}`, headers: as(fay), status: 422, code: "invalid", field: "title"},
			{name: "text too long", method: "POST", path: post, body: fmt.Sprintf(`{"rating":3,"text":%q}`, longText(review.MaxText+1)), headers: as(fay), status: 422, code: "invalid", field: "text"},
			{name: "bidi text", method: "POST", path: post, body: `{"rating":3,"text":"evil \u202e txet"}`, headers: as(fay), status: 422, code: "invalid", field: "text"},
			{name: "unknown field", method: "POST", path: post, body: `{"rating":3,"stars":3}`, headers: as(fay), status: 400, code: "invalid", field: "stars"},
			{name: "not JSON", method: "POST", path: post, body: `rating=3`, headers: as(fay), status: 400, code: "invalid"},
			{name: "unknown product", method: "POST", path: reviewsPath(987654), body: `{"rating":3}`, headers: as(fay), status: 404, code: "not_found", field: "product_id"},
			{name: "deleted product", method: "POST", path: reviewsPath(gone.ID), body: `{"rating":3}`, headers: as(eve), status: 404, code: "not_found", field: "product_id"},
			{name: "bad product id", method: "POST", path: "/api/v1/products/01/reviews", body: `{"rating":3}`, headers: as(fay), status: 400, code: "invalid", field: "id"},
			{name: "anonymous", method: "POST", path: post, body: `{"rating":3}`, status: 401, code: "unauthenticated"},
			{name: "a second review", method: "POST", path: post, body: `{"rating":5}`, headers: as(eve), status: 409, code: "conflict", message: "edit that review"},

			{name: "someone else's review: edit", method: "PATCH", path: reviewPath(mine.ID), body: `{"rating":1}`, headers: as(fay), status: 403, code: "forbidden"},
			{name: "someone else's review: delete", method: "DELETE", path: reviewPath(mine.ID), headers: as(fay), status: 403, code: "forbidden"},
			{name: "an admin edits", method: "PATCH", path: reviewPath(mine.ID), body: `{"rating":1}`, headers: admin, status: 403, code: "forbidden"},
			{name: "an admin deletes", method: "DELETE", path: reviewPath(mine.ID), headers: admin, status: 403, code: "forbidden"},
			{name: "someone else's hidden review", method: "PATCH", path: reviewPath(hidden.ID), body: `{"rating":1}`, headers: as(eve), status: 404, code: "not_found"},
			{name: "edit of a deleted product's review", method: "PATCH", path: reviewPath(hidden.ID), body: `{"rating":1}`, headers: as(fay), status: 404, code: "not_found", field: "product_id"},
			{name: "a vote for a deleted product's review", method: "POST", path: reviewPath(orphan.ID) + "/helpful", headers: as(eve), status: 404, code: "not_found", field: "product_id"},
			{name: "hiding a deleted product's review", method: "POST", path: reviewPath(orphan.ID) + "/hide", headers: admin, status: 404, code: "not_found", field: "product_id"},
			{name: "unhiding a deleted product's review", method: "POST", path: reviewPath(hidden.ID) + "/unhide", headers: admin, status: 404, code: "not_found", field: "product_id"},
			{name: "unknown review: edit", method: "PATCH", path: reviewPath(987654), body: `{"rating":1}`, headers: as(eve), status: 404, code: "not_found"},
			{name: "unknown review: delete", method: "DELETE", path: reviewPath(987654), headers: as(eve), status: 404, code: "not_found"},
			{name: "empty patch", method: "PATCH", path: reviewPath(mine.ID), body: `{}`, headers: as(eve), status: 422, code: "invalid", message: "nothing to update"},
			{name: "patch rating 0", method: "PATCH", path: reviewPath(mine.ID), body: `{"rating":0}`, headers: as(eve), status: 422, code: "invalid", field: "rating"},
			{name: "patch rating 6", method: "PATCH", path: reviewPath(mine.ID), body: `{"rating":6}`, headers: as(eve), status: 422, code: "invalid", field: "rating"},
			{name: "patch rating 4.5", method: "PATCH", path: reviewPath(mine.ID), body: `{"rating":4.5}`, headers: as(eve), status: 400, code: "invalid", field: "rating"},
			{name: `patch rating "five"`, method: "PATCH", path: reviewPath(mine.ID), body: `{"rating":"five"}`, headers: as(eve), status: 400, code: "invalid", field: "rating"},

			{name: "voting for one's own review", method: "POST", path: reviewPath(mine.ID) + "/helpful", headers: as(eve), status: 403, code: "forbidden"},
			{name: "voting for a hidden review", method: "POST", path: reviewPath(hidden.ID) + "/helpful", headers: as(eve), status: 404, code: "not_found"},
			{name: "voting for an unknown review", method: "POST", path: reviewPath(987654) + "/helpful", headers: as(eve), status: 404, code: "not_found"},
			{name: "a customer hides", method: "POST", path: reviewPath(mine.ID) + "/hide", headers: as(fay), status: 403, code: "forbidden"},
			{name: "hiding an unknown review", method: "POST", path: reviewPath(987654) + "/hide", headers: admin, status: 404, code: "not_found"},
			{name: "unhiding an unknown review", method: "POST", path: reviewPath(987654) + "/unhide", headers: admin, status: 404, code: "not_found"},

			{name: "list: unknown product", method: "GET", path: reviewsPath(987654), status: 404, code: "not_found"},
			{name: "list: deleted product", method: "GET", path: reviewsPath(gone.ID), status: 404, code: "not_found"},
			{name: "list: bad sort", method: "GET", path: post + "?sort=rating", status: 400, code: "invalid", field: "sort"},
			{name: "list: bad limit", method: "GET", path: post + "?limit=0", status: 400, code: "invalid", field: "limit"},
			{name: "list: limit too high", method: "GET", path: post + "?limit=101", status: 400, code: "invalid", field: "limit"},
			{name: "list: bad cursor", method: "GET", path: post + "?cursor=nonsense", status: 400, code: "invalid", field: "cursor"},
			{name: "list: another sort's cursor", method: "GET", path: post + "?sort=-helpful&cursor=" + newestCursor(t, h, p.ID), status: 400, code: "invalid", field: "cursor"},
		})
		// Nothing above changed the review or the rating.
		got := listReviews(t, h, p.ID, "", h.head(), "")
		if len(got.Items) != 1 || got.Items[0].ID != mine.ID || got.Items[0].Rating != 3 || got.Items[0].HelpfulCount != 0 {
			t.Fatalf("after the bad requests: %+v", got.Items)
		}
		wantRating(t, h, p.ID, h.head(), 3, [5]int64{0, 0, 1, 0, 0})
	})

	t.Run("concurrent first reviews of one customer make one review", func(t *testing.T) {
		h := h.with(t)
		p := s.product(t, "Race Headset", "129.00", 5)
		gina, _, _ := s.shopper(t)
		h.read(fmt.Sprintf("/api/v1/products/%d", p.ID), p.Position)
		before := h.countEvents(review.Created{}.EventType())
		const n = 20
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses[i] = rawPost(h.srv.URL+reviewsPath(p.ID), gina.access, fmt.Sprintf(`{"rating":%d}`, i%5+1))
			}()
		}
		close(start)
		wg.Wait()
		created, conflicts := 0, 0
		for _, st := range statuses {
			switch st {
			case 201:
				created++
			case 409:
				conflicts++
			}
		}
		if created != 1 || conflicts != n-1 {
			t.Fatalf("statuses %v: %d created, %d conflicts; want 1 and %d", statuses, created, conflicts, n-1)
		}
		if got := h.countEvents(review.Created{}.EventType()) - before; got != 1 {
			t.Fatalf("%d ReviewCreated events appended, want 1", got)
		}
		if got := listReviews(t, h, p.ID, "", h.head(), ""); len(got.Items) != 1 {
			t.Fatalf("listed %d reviews", len(got.Items))
		}
		if p := rating(t, h, p.ID, h.head()); p.RatingCount != 1 {
			t.Fatalf("rating count %d", p.RatingCount)
		}
	})

	t.Run("a rebuild equals the live projections", func(t *testing.T) {
		h := h.with(t)
		waitAllCaughtUp(t, h)
		tables := []string{"reviews", "review_purchases", "products", "product_review_ratings"}
		live := map[string][]string{}
		for _, tb := range tables {
			live[tb] = tableRows(t, h, tb)
		}
		if len(live["reviews"]) < 10 || len(live["review_purchases"]) < 2 {
			t.Fatalf("too little to compare: %d reviews, %d purchases", len(live["reviews"]), len(live["review_purchases"]))
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		for _, p := range []projections.Projector{reviewproj.Reviews{}, catalogproj.Products{}} {
			if _, err := projections.Rebuild(context.Background(), h.db.Pool, p, log); err != nil {
				t.Fatalf("rebuilding %s: %v", p.Name(), err)
			}
		}
		for _, tb := range tables {
			got := tableRows(t, h, tb)
			if !slices.Equal(live[tb], got) {
				t.Fatalf("%s after the rebuild differs:\nlive    %v\nrebuilt %v", tb, live[tb], got)
			}
		}
	})
}

func longText(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// newestCursor is a cursor of the default order of a product's reviews (a list of one per page).
func newestCursor(t *testing.T, h *harness, productID int64) string {
	t.Helper()
	writer, _ := h.member()
	r := writeReview(writer, productID, `{"rating":4}`)
	pg := listReviews(t, h, productID, "?limit=1", r.Position, "")
	if pg.NextCursor == "" {
		t.Fatal("no cursor")
	}
	// Leave the product as it was: the cursor stays well-formed after the deletion.
	writer.call("DELETE", reviewPath(r.ID), "", 200)
	return pg.NextCursor
}

// waitAllCaughtUp waits until every projector has applied the whole log.
func waitAllCaughtUp(t *testing.T, h *harness) {
	t.Helper()
	var st struct {
		Items []struct {
			LagEvents int64 `json:"lag_events"`
			Position  int64 `json:"position"`
		} `json:"items"`
	}
	head := h.head()
	eventually(t, "every projector caught up", func() bool {
		h.admin("GET", "/api/v1/admin/projections", "", 200).json(t, &st)
		for _, s := range st.Items {
			if s.LagEvents != 0 {
				return false
			}
		}
		return len(st.Items) > 0 && h.head() == head
	})
}
