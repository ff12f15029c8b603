// Package queries is the read side's queries: it reads the read models' tables and returns plain
// Go views. It knows nothing of HTTP: the transport owns its response shapes and converts to them.
package queries

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
)

// CategoryView is a category as queries return it.
type CategoryView struct {
	ID          int64
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ProductView is a product as queries (and the Redis product cards) read it.
type ProductView struct {
	ID          int64
	Name        string
	Description string
	Price       domain.Money
	Currency    string
	CategoryID  *int64
	Stock       int64
	InStock     bool
	Rating      float64
	RatingCount int64
	CreatedAt   time.Time
	UpdatedAt   time.Time

	// RatingHistogram counts the product's counted reviews of 1 to 5 stars, in that order.
	RatingHistogram [5]int64
	// Images are the product's images, first to last (see Cover).
	Images []ProductImageView
}

// CatalogQueries reads the catalog's read tables.
type CatalogQueries struct {
	pool *pgxpool.Pool
}

// NewCatalogQueries returns the catalog's queries.
func NewCatalogQueries(pool *pgxpool.Pool) *CatalogQueries { return &CatalogQueries{pool: pool} }

// ProductColumns are the columns ScanProduct reads, in its order (the Redis product cards read
// products with them too).
const ProductColumns = `id, name, description, (price * 100)::bigint AS price_cents, currency, category_id, stock,
	rating::float8 AS rating_value, rating_count, created_at, updated_at, rating_histogram, ` + productImagesColumn

// ScanProduct reads a row of ProductColumns.
func ScanProduct(row pgx.Row) (ProductView, error) {
	var p ProductView
	var cents int64
	var (
		hist   []int64
		images []byte
	)
	err := row.Scan(&p.ID, &p.Name, &p.Description, &cents, &p.Currency, &p.CategoryID, &p.Stock,
		&p.Rating, &p.RatingCount, &p.CreatedAt, &p.UpdatedAt, &hist, &images)
	copy(p.RatingHistogram[:], hist)
	if err == nil {
		p.Images, err = scanImages(images)
	}
	p.Price = domain.Money(cents)
	p.InStock = p.Stock > 0
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, err
}

// product returns one product.
func (q *CatalogQueries) product(ctx context.Context, id int64) (ProductView, error) {
	p, err := ScanProduct(q.pool.QueryRow(ctx, `SELECT `+ProductColumns+` FROM products WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return ProductView{}, domain.NotFound("product %d not found", id)
	}
	if err != nil {
		return ProductView{}, fmt.Errorf("reading product %d: %w", id, err)
	}
	return p, nil
}

// category returns one category.
func (q *CatalogQueries) category(ctx context.Context, id int64) (CategoryView, error) {
	var c CategoryView
	err := q.pool.QueryRow(ctx, `SELECT id, name, coalesce(description, ''), created_at, updated_at
		FROM categories WHERE id = $1`, id).Scan(&c.ID, &c.Name, &c.Description, &c.CreatedAt, &c.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return CategoryView{}, domain.NotFound("category %d not found", id)
	}
	if err != nil {
		return CategoryView{}, fmt.Errorf("reading category %d: %w", id, err)
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

// Page is one page of a keyset-paginated list.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// cursor is the opaque position after the last item of a page.
type cursor struct {
	Sort  string `json:"s"`
	Value string `json:"v,omitempty"`
	ID    int64  `json:"id"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, sort string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err != nil || json.Unmarshal(b, &c) != nil || c.Sort != sort || c.ID < 0 {
		return nil, domain.Invalid("cursor", "cursor is malformed or belongs to another sort order")
	}
	return &c, nil
}

// categories lists categories by id.
func (q *CatalogQueries) categories(ctx context.Context, limit int, after string) (Page[CategoryView], error) {
	if limit < 1 {
		return Page[CategoryView]{}, domain.Invalid("limit", "limit must be at least 1")
	}
	cur, err := decodeCursor(after, "id")
	if err != nil {
		return Page[CategoryView]{}, err
	}
	var afterID int64
	if cur != nil {
		afterID = cur.ID
	}
	rows, err := q.pool.Query(ctx, `SELECT id, name, coalesce(description, ''), created_at, updated_at
		FROM categories WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit+1)
	if err != nil {
		return Page[CategoryView]{}, fmt.Errorf("listing categories: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CategoryView, error) {
		var c CategoryView
		err := r.Scan(&c.ID, &c.Name, &c.Description, &c.CreatedAt, &c.UpdatedAt)
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		return c, err
	})
	if err != nil {
		return Page[CategoryView]{}, fmt.Errorf("listing categories: %w", err)
	}
	page := Page[CategoryView]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		page.NextCursor = encodeCursor(cursor{Sort: "id", ID: items[limit-1].ID})
	}
	return page, nil
}

// ProductFilter selects and orders products.
type ProductFilter struct {
	Q          string
	CategoryID *int64
	MinPrice   *domain.Money
	MaxPrice   *domain.Money
	InStock    *bool
	// Sort is one of ProductSorts ("" is by id).
	Sort   string
	Limit  int
	Cursor string
}

// productSort describes one sort order: its ORDER BY, the keyset condition after a cursor, and
// how a row's sort value is written into a cursor.
type productSort struct {
	orderBy string
	after   string // uses $V (sort value) and $ID
	value   func(ProductView) string
	// norm validates a cursor's value: it must be exactly what value writes, so a hand-made
	// cursor never reaches SQL in a form Go's parsers accept and Postgres's do not.
	norm func(string) (string, error)
}

// canonical accepts v only when it is already in the canonical form out.
func canonical(v, out string) (string, error) {
	if v != out {
		return "", errors.New("not canonical")
	}
	return out, nil
}

func anyValue(v string) (string, error) { return v, nil }

func moneyValue(v string) (string, error) {
	m, err := domain.ParseMoney(v)
	if err != nil || m < 0 || m > domain.MaxMoney {
		return "", errors.New("bad amount")
	}
	return canonical(v, m.String())
}

func textValue(v string) (string, error) {
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return "", errors.New("bad text")
	}
	return v, nil
}

func timeValue(v string) (string, error) {
	t, err := time.Parse(cursorTimeLayout, v)
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return "", errors.New("bad time")
	}
	return canonical(v, t.Format(cursorTimeLayout))
}

func ratingValue(v string) (string, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 5) { // also refuses NaN
		return "", errors.New("bad rating")
	}
	return canonical(v, strconv.FormatFloat(f, 'f', 2, 64))
}

const cursorTimeLayout = "2006-01-02T15:04:05.999999"

// ProductSorts are the sort orders GET /products accepts.
var ProductSorts = map[string]productSort{
	"": {"id", "id > $ID", func(ProductView) string { return "" }, anyValue},
	"price": {"price, id", "(price, id) > ($V::numeric, $ID)",
		func(p ProductView) string { return p.Price.String() }, moneyValue},
	"-price": {"price DESC, id DESC", "(price, id) < ($V::numeric, $ID)",
		func(p ProductView) string { return p.Price.String() }, moneyValue},
	"name": {"name, id", "(name, id) > ($V::text, $ID)",
		func(p ProductView) string { return p.Name }, textValue},
	"-created_at": {"created_at DESC, id DESC", "(created_at, id) < ($V::timestamp, $ID)",
		func(p ProductView) string { return p.CreatedAt.Format(cursorTimeLayout) }, timeValue},
	"-rating": {"rating DESC, id", "(rating < $V::numeric OR (rating = $V::numeric AND id > $ID))",
		func(p ProductView) string { return fmt.Sprintf("%.2f", p.Rating) }, ratingValue},
}

// SearchQuery turns free text into a prefix-matching tsquery: "rtx 40" → "rtx:* & 40:*". It
// returns "" when the text has no searchable word. Words split on every character that is not a
// letter or digit, as the products.search column does ("DDR5-6000" is "ddr5" and "6000").
func SearchQuery(q string) string {
	words := strings.FieldsFunc(strings.ToLower(q), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for i, w := range words {
		words[i] = w + ":*"
	}
	return strings.Join(words, " & ")
}

// products lists products matching f, one keyset page at a time.
func (q *CatalogQueries) products(ctx context.Context, f ProductFilter) (Page[ProductView], error) {
	if f.Limit < 1 {
		return Page[ProductView]{}, domain.Invalid("limit", "limit must be at least 1")
	}
	s, ok := ProductSorts[f.Sort]
	if !ok {
		return Page[ProductView]{}, domain.Invalid("sort", "unknown sort %q", f.Sort)
	}
	cur, err := decodeCursor(f.Cursor, f.Sort)
	if err != nil {
		return Page[ProductView]{}, err
	}
	if cur != nil {
		if cur.Value, err = s.norm(cur.Value); err != nil {
			return Page[ProductView]{}, domain.Invalid("cursor", "cursor is malformed")
		}
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if tsq := SearchQuery(f.Q); tsq != "" {
		where = append(where, "search @@ to_tsquery('simple', "+arg(tsq)+")")
	}
	if f.CategoryID != nil {
		where = append(where, "category_id = "+arg(*f.CategoryID))
	}
	if f.MinPrice != nil {
		where = append(where, "price >= "+arg(f.MinPrice.String())+"::numeric")
	}
	if f.MaxPrice != nil {
		where = append(where, "price <= "+arg(f.MaxPrice.String())+"::numeric")
	}
	if f.InStock != nil {
		if *f.InStock {
			where = append(where, "stock > 0")
		} else {
			where = append(where, "stock = 0")
		}
	}
	if cur != nil {
		cond := strings.ReplaceAll(s.after, "$ID", arg(cur.ID))
		if strings.Contains(cond, "$V") {
			cond = strings.ReplaceAll(cond, "$V", arg(cur.Value))
		}
		where = append(where, cond)
	}
	sql := `SELECT ` + ProductColumns + ` FROM products`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY ` + s.orderBy + ` LIMIT ` + arg(f.Limit+1)
	rows, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return Page[ProductView]{}, fmt.Errorf("listing products: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProductView, error) { return ScanProduct(r) })
	if err != nil {
		return Page[ProductView]{}, fmt.Errorf("listing products: %w", err)
	}
	page := Page[ProductView]{Items: items}
	if len(items) > f.Limit {
		last := items[f.Limit-1]
		page.Items = items[:f.Limit]
		page.NextCursor = encodeCursor(cursor{Sort: f.Sort, Value: s.value(last), ID: last.ID})
	}
	return page, nil
}

// Product returns one product. A lost database connection is domain.ErrUnavailable (503), never a 500.
func (q *CatalogQueries) Product(ctx context.Context, id int64) (ProductView, error) {
	v, err := q.product(ctx, id)
	return v, eventstore.Unavailable(err)
}

// Category returns one category. A lost database connection is domain.ErrUnavailable (503), never a 500.
func (q *CatalogQueries) Category(ctx context.Context, id int64) (CategoryView, error) {
	v, err := q.category(ctx, id)
	return v, eventstore.Unavailable(err)
}

// Categories lists categories by id. A lost database connection is domain.ErrUnavailable (503), never a 500.
func (q *CatalogQueries) Categories(ctx context.Context, limit int, after string) (Page[CategoryView], error) {
	v, err := q.categories(ctx, limit, after)
	return v, eventstore.Unavailable(err)
}

// Products lists products matching f, one keyset page at a time. A lost database connection is domain.ErrUnavailable (503), never a 500.
func (q *CatalogQueries) Products(ctx context.Context, f ProductFilter) (Page[ProductView], error) {
	v, err := q.products(ctx, f)
	return v, eventstore.Unavailable(err)
}
