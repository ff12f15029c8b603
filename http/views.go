package http

import (
	"encoding/json"
	"time"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/queries"
)

// The response shapes of the queries. The queries return plain Go views; these are the JSON the
// API promises, converted from them by the named functions below.

type categoryView struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type productView struct {
	ID          int64        `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       domain.Money `json:"price"`
	Currency    string       `json:"currency"`
	CategoryID  *int64       `json:"category_id"`
	Stock       int64        `json:"stock"`
	InStock     bool         `json:"in_stock"`
	Rating      float64      `json:"rating"`
	RatingCount int64        `json:"rating_count"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`

	// RatingHistogram counts the product's reviews of 1 to 5 stars, in that order.
	RatingHistogram [5]int64 `json:"rating_histogram"`
	// Cover is the product's cover image (null when it has none): its URL and its thumbnail
	// and full-size transformation URLs.
	Cover *productImageView `json:"cover"`
}

// productDetailView is GET /products/{id}: the product and all its images, first to last.
type productDetailView struct {
	productView
	Images []productImageView `json:"images"`
}

type pageView[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func toCategoryView(c queries.CategoryView) categoryView {
	return categoryView{ID: c.ID, Name: c.Name, Description: c.Description, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

func toProductView(p queries.ProductView) productView {
	v := productView{ID: p.ID, Name: p.Name, Description: p.Description, Price: p.Price, Currency: p.Currency,
		CategoryID: p.CategoryID, Stock: p.Stock, InStock: p.InStock, Rating: p.Rating, RatingCount: p.RatingCount,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, RatingHistogram: p.RatingHistogram}
	if cover, ok := p.Cover(); ok {
		c := toProductImageView(cover)
		v.Cover = &c
	}
	return v
}

func toProductDetailView(p queries.ProductView) productDetailView {
	d := productDetailView{productView: toProductView(p), Images: make([]productImageView, len(p.Images))}
	for i, img := range p.Images {
		d.Images[i] = toProductImageView(img)
	}
	return d
}

func toPageView[T, V any](p queries.Page[T], conv func(T) V) pageView[V] {
	items := make([]V, len(p.Items))
	for i, x := range p.Items {
		items[i] = conv(x)
	}
	return pageView[V]{Items: items, NextCursor: p.NextCursor}
}

// ProductCard is the body of GET /products/{id}: the bytes the API answers when it reads the
// product from Postgres, and the card the Redis view stores (the wiring hands this encoder to
// the view), so both sources serve the same bytes.
func ProductCard(p queries.ProductView) ([]byte, error) {
	return json.Marshal(toProductDetailView(p))
}
