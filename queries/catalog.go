// Package queries is the read side's queries: it reads the read models' tables and returns plain
// Go views. It knows nothing of HTTP: the transport owns its response shapes and converts to them.
package queries

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/search"
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
	// lists admits the listing and search reads of Postgres (list): at most its capacity run at
	// once, the others wait their turn in order.
	lists chan struct{}
}

// DefaultListingReads is how many listing and search reads NewCatalogQueries lets run at once
// when given 0: twice the CPUs this process may use (the database is assumed to have as many).
func DefaultListingReads() int { return 2 * runtime.GOMAXPROCS(0) }

// NewCatalogQueries returns the catalog's queries, running at most listingReads listing and search
// reads of Postgres at once (0: DefaultListingReads). Admitting only a few keeps the database's
// CPUs busy without making every read share them with all the others: under a load of more
// concurrent searches than CPUs, the ones beyond wait in line instead, and a costly search no
// longer stretches under the contention of twenty. Measured with 32 clients searching a 100,000-
// product catalog on 2 cores: 1,448 searches/s with p99 36.9 ms admitting 4, against 1,278/s with
// p99 64.3 ms admitting all (2: 1,235/s, the CPUs not kept busy).
func NewCatalogQueries(pool *pgxpool.Pool, listingReads int) *CatalogQueries {
	if listingReads <= 0 {
		listingReads = DefaultListingReads()
	}
	return &CatalogQueries{pool: pool, lists: make(chan struct{}, listingReads)}
}

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
	c, err := scanCategory(q.pool.QueryRow(ctx, `SELECT `+categoryColumns+` FROM categories WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return CategoryView{}, domain.NotFound("category %d not found", id)
	}
	if err != nil {
		return CategoryView{}, fmt.Errorf("reading category %d: %w", id, err)
	}
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
	value   func(ProductView, float32) string
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

// rankText writes a search rank (a Postgres real) as the shortest text that reads back as the
// very same real, so that the keyset condition compares equal ranks as equal.
func rankText(r float32) string { return strconv.FormatFloat(float64(r), 'g', -1, 32) }

func rankValue(v string) (string, error) {
	f, err := strconv.ParseFloat(v, 32)
	if err != nil || !(f >= 0 && f <= math.MaxFloat32) { // also refuses NaN and infinities
		return "", errors.New("bad rank")
	}
	return canonical(v, rankText(float32(f)))
}

const cursorTimeLayout = "2006-01-02T15:04:05.999999"

// ProductSorts are the sort orders GET /products accepts.
var ProductSorts = map[string]productSort{
	"": {"id", "id > $ID", func(ProductView, float32) string { return "" }, anyValue},
	"price": {"price, id", "(price, id) > ($V::numeric, $ID)",
		func(p ProductView, _ float32) string { return p.Price.String() }, moneyValue},
	"-price": {"price DESC, id DESC", "(price, id) < ($V::numeric, $ID)",
		func(p ProductView, _ float32) string { return p.Price.String() }, moneyValue},
	"name": {"name, id", "(name, id) > ($V::text, $ID)",
		func(p ProductView, _ float32) string { return p.Name }, textValue},
	"-created_at": {"created_at DESC, id DESC", "(created_at, id) < ($V::timestamp, $ID)",
		func(p ProductView, _ float32) string { return p.CreatedAt.Format(cursorTimeLayout) }, timeValue},
	"-rating": {"rating DESC, id", "(rating < $V::numeric OR (rating = $V::numeric AND id > $ID))",
		func(p ProductView, _ float32) string { return fmt.Sprintf("%.2f", p.Rating) }, ratingValue},
}

// RankSort is the cursor's name of the order a search without a sort lists in: by relevance,
// ts_rank of the product's words (a word of the name weighs ten times a word of the description,
// see migration 0021) against the query, highest first, equal ranks by id. It is no value of
// the sort parameter: a search with a sort lists its matches in that order instead.
const RankSort = "rank"

// rankExpr is a product's rank against the search (the query's FROM names it s(q)).
const rankExpr = "ts_rank(search, s.q)"

var rankSort = productSort{orderBy: "rank DESC, id", after: "(" + rankExpr + " < $V::real OR (" + rankExpr + " = $V::real AND id > $ID))",
	value: func(_ ProductView, rank float32) string { return rankText(rank) }, norm: rankValue}

// Searchable reports whether q holds a word to search for (a letter or a digit): a q without one
// filters nothing.
func Searchable(q string) bool {
	return strings.IndexFunc(q, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
}

// productsSQL is the statement of one keyset page of f (Limit+1 rows, to know whether another page
// follows; each row's product columns and its search rank, 0 without a search) and the sort it
// lists in. A search is Postgres full-text search (search.Query against products.search): every
// word a word of the name or description, the last one as a prefix, accents and case ignored.
func productsSQL(f ProductFilter) (string, []any, productSort, string, error) {
	if f.Limit < 1 {
		return "", nil, productSort{}, "", domain.Invalid("limit", "limit must be at least 1")
	}
	s, ok := ProductSorts[f.Sort]
	if !ok {
		return "", nil, productSort{}, "", domain.Invalid("sort", "unknown sort %q", f.Sort)
	}
	searching := Searchable(f.Q)
	sortName := f.Sort
	if searching && f.Sort == "" {
		s, sortName = rankSort, RankSort
	}
	cur, err := decodeCursor(f.Cursor, sortName)
	if err != nil {
		return "", nil, productSort{}, "", err
	}
	if cur != nil {
		if cur.Value, err = s.norm(cur.Value); err != nil {
			return "", nil, productSort{}, "", domain.Invalid("cursor", "cursor is malformed")
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
	from, rank := ` FROM products`, `0::real`
	if searching {
		// The query is computed once, in FROM, whatever plan the statement gets.
		from, rank = ` FROM products, CAST(`+arg(search.Query(f.Q))+` AS tsquery) AS s(q)`, rankExpr
		where = append(where, "search @@ s.q")
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
	sql := `SELECT ` + ProductColumns + `, ` + rank + ` AS rank` + from
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY ` + s.orderBy + ` LIMIT ` + arg(f.Limit+1)
	return sql, args, s, sortName, nil
}

// rankedRow scans a row of ProductColumns followed by the rank.
type rankedRow struct {
	pgx.Row
	rank *float32
}

func (r rankedRow) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.rank)...) }

// listed is what one read of a listing returns: up to Limit+1 products, the sort value of each
// (its cursor is written only when needed), and the category the filter names when it was asked
// for.
type listed struct {
	items    []ProductView
	values   []string
	sortName string
	category *CategoryView
}

// cursor is the cursor that follows item i.
func (l listed) cursor(i int) string {
	return encodeCursor(cursor{Sort: l.sortName, Value: l.values[i], ID: l.items[i].ID})
}

// page is the first limit items, with the cursor of the next page when more follow.
func (l listed) page(limit int) Page[ProductView] {
	if len(l.items) <= limit {
		return Page[ProductView]{Items: l.items}
	}
	return Page[ProductView]{Items: l.items[:limit], NextCursor: l.cursor(limit - 1)}
}

const categoryColumns = `id, name, coalesce(description, ''), created_at, updated_at`

func scanCategory(row pgx.Row) (CategoryView, error) {
	var c CategoryView
	err := row.Scan(&c.ID, &c.Name, &c.Description, &c.CreatedAt, &c.UpdatedAt)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// list reads f's page and, with withCategory, the category f names, in one round trip.
func (q *CatalogQueries) list(ctx context.Context, f ProductFilter, withCategory bool) (listed, error) {
	var l listed
	sql, args, s, sortName, err := productsSQL(f)
	if err != nil {
		return l, err
	}
	l.sortName = sortName
	withCategory = withCategory && f.CategoryID != nil
	var batch pgx.Batch
	if withCategory {
		batch.Queue(`SELECT `+categoryColumns+` FROM categories WHERE id = $1`, *f.CategoryID).QueryRow(func(row pgx.Row) error {
			c, err := scanCategory(row)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err == nil {
				l.category = &c
			}
			return err
		})
	}
	batch.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		defer rows.Close()
		var rank float32
		for rows.Next() {
			p, err := ScanProduct(rankedRow{rows, &rank})
			if err != nil {
				return err
			}
			l.items = append(l.items, p)
			l.values = append(l.values, s.value(p, rank))
		}
		return rows.Err()
	})
	select {
	case q.lists <- struct{}{}:
	case <-ctx.Done():
		return listed{}, fmt.Errorf("listing products: waiting for a turn: %w", ctx.Err())
	}
	err = q.pool.SendBatch(ctx, &batch).Close()
	<-q.lists
	if err != nil {
		return listed{}, fmt.Errorf("listing products: %w", err)
	}
	return l, nil
}

// products lists products matching f, one keyset page at a time.
func (q *CatalogQueries) products(ctx context.Context, f ProductFilter) (Page[ProductView], error) {
	l, err := q.list(ctx, f, false)
	if err != nil {
		return Page[ProductView]{}, err
	}
	return l.page(f.Limit), nil
}

// ProductListing is one page of GET /products with the category its filter names: Category is nil
// when the filter names none, or one that does not exist (then no product matches).
type ProductListing struct {
	Page[ProductView]
	Category *CategoryView
}

// Listing lists products matching f, one keyset page at a time, with the category f names (read
// in the same round trip). A lost database connection is domain.ErrUnavailable (503), never a 500.
func (q *CatalogQueries) Listing(ctx context.Context, f ProductFilter) (ProductListing, error) {
	l, err := q.list(ctx, f, true)
	if err != nil {
		return ProductListing{}, eventstore.Unavailable(err)
	}
	return ProductListing{Page: l.page(f.Limit), Category: l.category}, nil
}

// ListingHead is the first products of one sort (in a category, or in the whole catalog) with the
// cursor that follows each, so that a cached copy answers the first page of any limit up to its
// length: the first page of limit n is Items[:n], followed by Cursors[n-1] when n < len(Items) or
// More.
type ListingHead struct {
	Category *CategoryView // the category asked for, nil when none was or it does not exist
	Items    []ProductView
	Cursors  []string
	More     bool // products follow the last item
}

// ListingHead reads the first n products of sort, in category (nil: every product), and the
// category. A lost database connection is domain.ErrUnavailable (503), never a 500.
func (q *CatalogQueries) ListingHead(ctx context.Context, category *int64, sort string, n int) (ListingHead, error) {
	l, err := q.list(ctx, ProductFilter{CategoryID: category, Sort: sort, Limit: n}, true)
	if err != nil {
		return ListingHead{}, eventstore.Unavailable(err)
	}
	h := ListingHead{Category: l.category, Items: l.items}
	if len(h.Items) > n {
		h.Items, h.More = h.Items[:n], true
	}
	h.Cursors = make([]string, len(h.Items))
	for i := range h.Cursors {
		h.Cursors[i] = l.cursor(i)
	}
	return h, nil
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
