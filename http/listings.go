package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/views/listings"
)

// GET /products answers with its page, headed by the category when the filter names one:
//
//	{"category": {...} | null, "items": [...], "next_cursor": "..."}
//
// ("category" only with category_id; "next_cursor" only when another page follows). The first
// page of a sort with no filter but category_id (the storefront's category pages and the whole
// catalog) comes from the listings view; the rest, and reads with X-Min-Position, from Postgres.
// Both build the same bytes (listingBody).

// cacheableListing reports whether f asks for a page the listings view holds.
func cacheableListing(f queries.ProductFilter) bool {
	return !queries.Searchable(f.Q) && f.MinPrice == nil && f.MaxPrice == nil && f.InStock == nil &&
		f.Cursor == "" && f.Limit <= listings.HeadLength
}

func (s *Server) answerListing(c *gin.Context, f queries.ProductFilter, waited bool) {
	if !waited && s.cfg.Listings != nil && cacheableListing(f) {
		key := listings.Key{Sort: f.Sort}
		if f.CategoryID != nil {
			key.Category = *f.CategoryID
		}
		page, src, err := s.cfg.Listings.Get(c, key, s.loadListing(f.CategoryID, f.Sort))
		if err != nil {
			writeError(c, asBadRequest(err))
			return
		}
		c.Header(ReadSourceHeader, map[listings.Source]string{listings.FromView: "redis", listings.FromPostgres: "postgres"}[src])
		c.Data(nethttp.StatusOK, "application/json; charset=utf-8", page.Body(f.Limit, func() []byte {
			return listingBody(f.CategoryID != nil, page.Header, page.Items[:min(f.Limit, len(page.Items))], page.Next(f.Limit))
		}))
		return
	}
	// Everything else is read from Postgres, through the in-process answer cache when the server
	// has one (views/searches; not for reads with X-Min-Position).
	var (
		key   string
		token uint64
	)
	if !waited && s.cfg.Searches != nil {
		key = listingKey(f)
		if body, ok := s.cfg.Searches.Get(key); ok {
			c.Header(ReadSourceHeader, "memory")
			c.Data(nethttp.StatusOK, "application/json; charset=utf-8", body)
			return
		}
		token = s.cfg.Searches.Begin()
	}
	l, err := s.cfg.Queries.Listing(c, f)
	if err != nil {
		writeError(c, asBadRequest(err))
		return
	}
	var header json.RawMessage
	if l.Category != nil {
		if header, err = json.Marshal(toCategoryView(*l.Category)); err != nil {
			writeError(c, err)
			return
		}
	}
	items := make([]json.RawMessage, len(l.Items))
	for i, p := range l.Items {
		if items[i], err = json.Marshal(toProductView(p)); err != nil {
			writeError(c, err)
			return
		}
	}
	body := listingBody(f.CategoryID != nil, header, items, l.NextCursor)
	if key != "" {
		ids := make([]int64, len(l.Items))
		for i, p := range l.Items {
			ids[i] = p.ID
		}
		s.cfg.Searches.Put(key, body, token, ids, f.InStock != nil || strings.TrimPrefix(f.Sort, "-") == "rating")
	}
	c.Header(ReadSourceHeader, "postgres")
	c.Data(nethttp.StatusOK, "application/json; charset=utf-8", body)
}

// listingKey names a GET /products answer in the answer cache: every field of the filter.
func listingKey(f queries.ProductFilter) string {
	opt := func(v any) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprint(v)
	}
	var cat, lo, hi, stock any
	if f.CategoryID != nil {
		cat = *f.CategoryID
	}
	if f.MinPrice != nil {
		lo = f.MinPrice.Cents()
	}
	if f.MaxPrice != nil {
		hi = f.MaxPrice.Cents()
	}
	if f.InStock != nil {
		stock = *f.InStock
	}
	return fmt.Sprintf("%q|%s|%s|%s|%s|%q|%d|%q", f.Q, opt(cat), opt(lo), opt(hi), opt(stock), f.Sort, f.Limit, f.Cursor)
}

// loadListing reads a listing of the view from Postgres, encoded as the API answers it.
func (s *Server) loadListing(category *int64, sort string) func(context.Context) (listings.Page, error) {
	return func(ctx context.Context) (listings.Page, error) {
		h, err := s.cfg.Queries.ListingHead(ctx, category, sort, listings.HeadLength)
		if err != nil {
			return listings.Page{}, err
		}
		p := listings.Page{Items: make([]json.RawMessage, len(h.Items)), Cursors: h.Cursors, More: h.More}
		if h.Category != nil {
			if p.Header, err = json.Marshal(toCategoryView(*h.Category)); err != nil {
				return p, err
			}
		}
		for i, v := range h.Items {
			if p.Items[i], err = json.Marshal(toProductView(v)); err != nil {
				return p, err
			}
		}
		return p, nil
	}
}

// listingBody writes a page of GET /products.
func listingBody(withCategory bool, category json.RawMessage, items []json.RawMessage, next string) []byte {
	size := 64 + len(category) + len(next)
	for _, it := range items {
		size += len(it) + 1
	}
	var b bytes.Buffer
	b.Grow(size)
	b.WriteByte('{')
	if withCategory {
		b.WriteString(`"category":`)
		if category == nil {
			b.WriteString("null")
		} else {
			b.Write(category)
		}
		b.WriteByte(',')
	}
	b.WriteString(`"items":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteByte(']')
	if next != "" {
		b.WriteString(`,"next_cursor":`)
		quoted, _ := json.Marshal(next)
		b.Write(quoted)
	}
	b.WriteByte('}')
	return b.Bytes()
}
