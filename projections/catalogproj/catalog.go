// Package catalogproj is the catalog read model: the apply functions of the categories and
// products projectors (pure: event batch → set-based SQL), their names and the NOTIFY channel on
// which the products projector announces changed products to the Redis view.
package catalogproj

import (
	"fmt"
	"maps"
	"math/big"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/domain/review"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/search"
	"github.com/techvault/techvault/projections"
)

// Projector names: consumer groups and checkpoint keys, fixed for ever.
const (
	CategoriesProjector = "categories"
	ProductsProjector   = "products"
)

// ProductCardsChannel is the NOTIFY channel on which the products projector announces changed
// product ids (after its commit) for the Redis view.
const ProductCardsChannel = "techvault_product_cards"

// CategoriesChannel is the NOTIFY channel on which the categories projector announces changed
// category ids (after its commit) for the Redis listings.
const CategoriesChannel = "techvault_categories"

// Categories projects the categories table.
type Categories struct{}

func (Categories) Name() string          { return CategoriesProjector }
func (Categories) Tables() []string      { return []string{"categories"} }
func (Categories) StreamTypes() []string { return []string{catalog.CategoryStreamType} }

// SkipTypes implements projections.Skipper: CategoryReferenced (one per product created in or
// moved into a category) changes nothing in the table, so the log's reads leave it out, and a
// rebuild reads a category's few events instead of one per product.
func (Categories) SkipTypes() []string { return []string{catalog.CategoryReferenced{}.EventType()} }

// categoryRow is a category's state at the end of a batch, folded from its events there.
type categoryRow struct {
	id                int64
	created           bool // the batch creates it: insert, with created_at
	deleted           bool
	name, description string
	version           int64
	createdAt, at     time.Time
}

// Apply implements Projector: the batch's events are folded per category in Go (each event
// carries the category's whole state), then written with one delete, one upsert and one update.
func (Categories) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	rows := map[int64]*categoryRow{}
	var order []int64
	row := func(id int64) *categoryRow {
		r, ok := rows[id]
		if !ok {
			r = &categoryRow{id: id}
			rows[id] = r
			order = append(order, id)
		}
		return r
	}
	for _, e := range batch {
		if e.StreamType != catalog.CategoryStreamType {
			continue
		}
		d, err := catalog.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", e.Position, err)
		}
		switch d := d.(type) {
		case catalog.CategoryCreated:
			r := row(d.CategoryID)
			r.created, r.name, r.description, r.version, r.createdAt, r.at = true, d.Name, d.Description, e.Version, e.RecordedAt, e.RecordedAt
		case catalog.CategoryUpdated:
			r := row(d.CategoryID)
			r.name, r.description, r.version, r.at = d.Name, d.Description, e.Version, e.RecordedAt
		case catalog.CategoryDeleted:
			row(d.CategoryID).deleted = true
		}
	}
	var (
		deleted             []int64
		insIDs, insVersions []int64
		insNames, insDescs  []string
		insCreated, insAt   []time.Time
		updIDs, updVersions []int64
		updNames, updDescs  []string
		updAt               []time.Time
	)
	for _, id := range order {
		r := rows[id]
		switch {
		case r.deleted:
			deleted = append(deleted, id)
		case r.created:
			insIDs, insNames, insDescs = append(insIDs, id), append(insNames, r.name), append(insDescs, r.description)
			insVersions, insCreated, insAt = append(insVersions, r.version), append(insCreated, r.createdAt), append(insAt, r.at)
		case r.version > 0:
			updIDs, updNames, updDescs = append(updIDs, id), append(updNames, r.name), append(updDescs, r.description)
			updVersions, updAt = append(updVersions, r.version), append(updAt, r.at)
		}
	}
	var out []projections.Stmt
	if len(deleted) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {categories} WHERE id = ANY($1::bigint[])`), Args: []any{deleted}})
	}
	if len(insIDs) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {categories} AS c (id, name, description, version, created_at, updated_at)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[])
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
				version = excluded.version, updated_at = excluded.updated_at
			WHERE c.version < excluded.version`),
			Args: []any{insIDs, insNames, insDescs, insVersions, utc(insCreated), utc(insAt)}})
	}
	if len(updIDs) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {categories} AS c SET name = u.name, description = u.description,
				version = u.version, updated_at = u.at
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[]) AS u(id, name, description, version, at)
			WHERE c.id = u.id AND c.version < u.version`),
			Args: []any{updIDs, updNames, updDescs, updVersions, utc(updAt)}})
	}
	return out, nil
}

// NotifyChannel implements Notifier.
func (Categories) NotifyChannel() string { return CategoriesChannel }

// Notifications implements Notifier: the categories a batch created, changed or deleted, each once.
func (Categories) Notifications(batch []eventstore.Event) []string {
	var ids []int64
	for _, e := range batch {
		if e.StreamType != catalog.CategoryStreamType {
			continue
		}
		// A category's stream id is catalog.CategoryStreamID(id): "category-<id>".
		if id, err := strconv.ParseInt(strings.TrimPrefix(e.StreamID, "category-"), 10, 64); err == nil && id > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}

// utc converts times to UTC wall-clock values for the read tables' timestamp columns.
func utc(ts []time.Time) []time.Time {
	for i, t := range ts {
		ts[i] = t.UTC()
	}
	return ts
}

// Products projects the products table. It also follows category deletions (products of a
// deleted category become uncategorised) without reading the categories table: it keeps the
// deleted category ids in a table of its own, so that a product created or moved into a category
// whose deletion came first in the log is projected uncategorised too. It keeps each product's
// rating from the review events (ratings.go).
type Products struct{}

func (Products) Name() string { return ProductsProjector }
func (Products) Tables() []string {
	return []string{"products", "products_deleted_categories", "product_review_ratings", ProductImageTable}
}
func (Products) StreamTypes() []string {
	return []string{catalog.ProductStreamType, catalog.CategoryStreamType, review.StreamType}
}

// SkipTypes implements projections.Skipper: of the category events, the products follow only
// CategoryDeleted (Apply ignores the others, and would ignore a new one too).
func (Products) SkipTypes() []string {
	return []string{catalog.CategoryCreated{}.EventType(), catalog.CategoryUpdated{}.EventType(),
		catalog.CategoryReferenced{}.EventType()}
}

// productRow is a product's state at the end of a run of events, folded from them. Every product
// event carries the absolute values of the fields it sets, so the fold needs no current row.
type productRow struct {
	id         int64
	created    bool
	deleted    bool
	hasDetails bool // name, description, price and category are set
	hasStock   bool
	name, desc string
	priceCents int64
	currency   string
	categoryID *int64
	stock      int64
	version    int64
	createdAt  time.Time
	at         time.Time
}

// productFold accumulates the products of a run of events between two category deletions (a
// deletion changes which category ids are live, so the rows before it are written first).
type productFold struct {
	rows  map[int64]*productRow
	order []int64
}

func (f *productFold) row(id int64) *productRow {
	if f.rows == nil {
		f.rows = map[int64]*productRow{}
	}
	r, ok := f.rows[id]
	if !ok {
		r = &productRow{id: id}
		f.rows[id] = r
		f.order = append(f.order, id)
	}
	return r
}

// liveCategory is the category id expression x unless the projector has seen that category deleted.
const liveCategory = `CASE WHEN %[1]s IS NULL OR EXISTS (
		SELECT 1 FROM {products_deleted_categories} d WHERE d.category_id = %[1]s) THEN NULL ELSE %[1]s END`

// statements writes the fold: one delete, one upsert for created products, one update for the
// rest. With copyDeleted (the categories deleted so far; non-nil only when the table was empty
// when the fold began and only it writes the table), the created products are copied instead,
// each in its category unless that was deleted, as the upsert's liveCategory would have it.
func (f *productFold) statements(t projections.Tables, copyDeleted map[int64]bool) []projections.Stmt {
	var (
		deleted []int64
		ins     struct {
			ids, prices, stocks, versions []int64
			names, descs, currencies      []string
			searches                      []pgtype.TSVector
			cats                          []*int64
			created, at                   []time.Time
		}
		upd struct {
			ids, prices, stocks, versions []int64
			hasDetails, hasStock          []bool
			names, descs                  []string
			searches                      []pgtype.TSVector
			cats                          []*int64
			at                            []time.Time
		}
	)
	var copied []*productRow
	for _, id := range f.order {
		r := f.rows[id]
		switch {
		case r.deleted:
			deleted = append(deleted, id)
		case r.created && copyDeleted != nil:
			copied = append(copied, r)
		case r.created:
			ins.ids, ins.names, ins.descs = append(ins.ids, id), append(ins.names, r.name), append(ins.descs, r.desc)
			ins.prices, ins.currencies, ins.cats = append(ins.prices, r.priceCents), append(ins.currencies, r.currency), append(ins.cats, r.categoryID)
			ins.stocks, ins.versions = append(ins.stocks, r.stock), append(ins.versions, r.version)
			ins.created, ins.at = append(ins.created, r.createdAt.UTC()), append(ins.at, r.at.UTC())
		case r.version > 0:
			upd.ids, upd.hasDetails, upd.hasStock = append(upd.ids, id), append(upd.hasDetails, r.hasDetails), append(upd.hasStock, r.hasStock)
			upd.names, upd.descs, upd.prices = append(upd.names, r.name), append(upd.descs, r.desc), append(upd.prices, r.priceCents)
			upd.cats, upd.stocks = append(upd.cats, r.categoryID), append(upd.stocks, r.stock)
			upd.versions, upd.at = append(upd.versions, r.version), append(upd.at, r.at.UTC())
		}
	}
	ins.searches = searchVectors(ins.names, ins.descs, nil)
	upd.searches = searchVectors(upd.names, upd.descs, upd.hasDetails) // NULL: the search stays as it is
	var out []projections.Stmt
	if len(deleted) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`DELETE FROM {products} WHERE id = ANY($1::bigint[])`), Args: []any{deleted}})
	}
	if len(copied) > 0 {
		// The rows' values, their search vectors above all, are computed as they are written,
		// while the fold goes on (with its own deletions).
		copyDeleted := maps.Clone(copyDeleted)
		out = append(out, projections.Stmt{Copy: &projections.Copy{Table: t.Name("products"),
			Columns: []string{"id", "name", "description", "price", "currency", "category_id", "stock", "version", "created_at", "updated_at", "search"},
			Rows:    len(copied),
			Row: func(i int) []any {
				r := copied[i]
				category := r.categoryID
				if category != nil && copyDeleted[*category] {
					category = nil
				}
				return []any{r.id, r.name, r.desc, pgtype.Numeric{Int: big.NewInt(r.priceCents), Exp: -2, Valid: true}, r.currency,
					category, r.stock, r.version, r.createdAt.UTC(), r.at.UTC(), search.Vector(r.name, r.desc)}
			}}})
	}
	if len(ins.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`INSERT INTO {products} AS p (id, name, description, price, currency, category_id, stock,
				version, created_at, updated_at, search)
			SELECT u.id, u.name, u.description, u.price::numeric / 100, u.currency, ` + fmt.Sprintf(liveCategory, "u.category_id") + `,
				u.stock, u.version, u.created_at, u.at, u.search
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[],
				$8::bigint[], $9::timestamptz[], $10::timestamptz[], $11::tsvector[])
				AS u(id, name, description, price, currency, category_id, stock, version, created_at, at, search)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
				price = excluded.price, category_id = excluded.category_id, stock = excluded.stock,
				version = excluded.version, updated_at = excluded.updated_at, search = excluded.search
			WHERE p.version < excluded.version`),
			Args: []any{ins.ids, ins.names, ins.descs, ins.prices, ins.currencies, ins.cats, ins.stocks, ins.versions, ins.created, ins.at,
				ins.searches},
			Rows: true})
	}
	if len(upd.ids) > 0 {
		out = append(out, projections.Stmt{SQL: t.Sub(`UPDATE {products} AS p SET
				name = CASE WHEN u.has_details THEN u.name ELSE p.name END,
				description = CASE WHEN u.has_details THEN u.description ELSE p.description END,
				price = CASE WHEN u.has_details THEN u.price::numeric / 100 ELSE p.price END,
				category_id = CASE WHEN u.has_details THEN ` + fmt.Sprintf(liveCategory, "u.category_id") + ` ELSE p.category_id END,
				stock = CASE WHEN u.has_stock THEN u.stock ELSE p.stock END,
				search = CASE WHEN u.has_details THEN u.search ELSE p.search END,
				version = u.version, updated_at = u.at
			FROM unnest($1::bigint[], $2::bool[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bool[],
				$8::bigint[], $9::bigint[], $10::timestamptz[], $11::tsvector[])
				AS u(id, has_details, name, description, price, category_id, has_stock, stock, version, at, search)
			WHERE p.id = u.id AND p.version < u.version`),
			Args: []any{upd.ids, upd.hasDetails, upd.names, upd.descs, upd.prices, upd.cats, upd.hasStock, upd.stocks, upd.versions, upd.at,
				upd.searches},
			Rows: true})
	}
	f.rows, f.order = nil, nil
	return out
}

// searchVectors returns the search vector of each name and description (NULL where want is
// false, when want is given), computed on every core when there are many (a rebuild's flush of
// 100,000 products spent half its time on them).
func searchVectors(names, descs []string, want []bool) []pgtype.TSVector {
	out := make([]pgtype.TSVector, len(names))
	workers := 1
	if len(out) >= 2000 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * len(out) / workers; i < (w+1)*len(out)/workers; i++ {
				if want == nil || want[i] {
					out[i] = search.Vector(names[i], descs[i])
				}
			}
		})
	}
	wg.Wait()
	return out
}

// Apply implements Projector.
func (Products) Apply(t projections.Tables, batch []eventstore.Event) ([]projections.Stmt, error) {
	f := productsFold{t: t}
	if err := f.Add(batch); err != nil {
		return nil, err
	}
	return f.Flush()
}

// Load implements projections.Loader: a rebuild folds the whole log with it, and the products it
// creates are copied into the empty table with their categories resolved in Go.
func (Products) Load(t projections.Tables) projections.Load {
	return &productsFold{t: t, fresh: true, deletedCategories: map[int64]bool{}}
}

// productsFold is the products projector's fold of a run of events: Apply's of one batch, or a
// rebuild's of the whole log (fresh).
type productsFold struct {
	t projections.Tables
	// fresh: the tables were empty when the fold began and only it writes them, so a product it
	// creates is new to the table (copied rather than upserted) and every category deletion is
	// in deletedCategories.
	fresh             bool
	deletedCategories map[int64]bool
	out               []projections.Stmt // what a category deletion made write first
	products          productFold
	ratings           ratingFold
	images            imageFold // product_image (images.go)
}

// Rows implements projections.Load.
func (f *productsFold) Rows() int {
	n := len(f.products.rows) + len(f.ratings.rows) + len(f.images.added) + len(f.images.arranged)
	for _, s := range f.out {
		n++
		if s.Copy != nil {
			n += s.Copy.Rows
		}
	}
	return n
}

// Add implements projections.Load.
func (f *productsFold) Add(events []eventstore.Event) error {
	for _, e := range events {
		if e.StreamType == review.StreamType {
			if err := f.ratings.add(e); err != nil {
				return err
			}
			continue
		}
		if e.StreamType != catalog.ProductStreamType && e.StreamType != catalog.CategoryStreamType {
			continue
		}
		if e.StreamType == catalog.CategoryStreamType && e.Type != (catalog.CategoryDeleted{}).EventType() {
			continue // the only category event the products follow
		}
		d, err := catalog.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return fmt.Errorf("event %d: %w", e.Position, err)
		}
		if productID, ok := f.images.fold(e, d); ok {
			// An image change is a change of the product: its version moves, so its card does.
			r := f.products.row(productID)
			r.version, r.at = e.Version, e.RecordedAt
			continue
		}
		switch d := d.(type) {
		case catalog.ProductCreated:
			r := f.products.row(d.ProductID)
			r.created, r.hasDetails, r.hasStock = true, true, true
			r.name, r.desc, r.priceCents, r.currency = d.Name, d.Description, d.Price.Cents(), d.Currency
			r.categoryID, r.stock, r.version, r.createdAt, r.at = d.CategoryID, d.Stock, e.Version, e.RecordedAt, e.RecordedAt
		case catalog.ProductUpdated:
			r := f.products.row(d.ProductID)
			r.hasDetails = true
			r.name, r.desc, r.priceCents, r.categoryID = d.Name, d.Description, d.Price.Cents(), d.CategoryID
			r.version, r.at = e.Version, e.RecordedAt
		case catalog.ProductStockAdjusted:
			r := f.products.row(d.ProductID)
			r.hasStock, r.stock, r.version, r.at = true, d.Stock, e.Version, e.RecordedAt
		case catalog.ProductStockReserved:
			r := f.products.row(d.ProductID)
			r.hasStock, r.stock, r.version, r.at = true, d.Stock, e.Version, e.RecordedAt
		case catalog.ProductStockReleased:
			r := f.products.row(d.ProductID)
			r.hasStock, r.stock, r.version, r.at = true, d.Stock, e.Version, e.RecordedAt
		case catalog.ProductDeleted:
			f.products.row(d.ProductID).deleted = true
		case catalog.CategoryDeleted:
			// The rows folded so far are written before the deletion, which then clears them.
			f.out = append(f.out, f.products.statements(f.t, f.copying())...)
			if f.fresh {
				f.deletedCategories[d.CategoryID] = true
			}
			f.out = append(f.out,
				projections.Stmt{SQL: f.t.Sub(`INSERT INTO {products_deleted_categories} (category_id) VALUES ($1) ON CONFLICT DO NOTHING`), Args: []any{d.CategoryID}},
				projections.Stmt{SQL: f.t.Sub(`UPDATE {products} SET category_id = NULL WHERE category_id = $1`), Args: []any{d.CategoryID}})
		}
	}
	return nil
}

// copying returns the deleted categories when the fold copies the products it creates, nil when
// it upserts them.
func (f *productsFold) copying() map[int64]bool {
	if f.fresh {
		return f.deletedCategories
	}
	return nil
}

// Flush implements projections.Load.
func (f *productsFold) Flush() ([]projections.Stmt, error) {
	out := f.out
	out = append(out, f.products.statements(f.t, f.copying())...)
	out = append(out, f.ratings.statements(f.t)...)
	out = append(out, f.images.statements(f.t)...)
	f.out, f.ratings, f.images = nil, ratingFold{}, imageFold{}
	return out, nil
}

// NotifyChannel implements Notifier.
func (Products) NotifyChannel() string { return ProductCardsChannel }

// Notifications implements Notifier: the products whose cards changed (their own events, or
// their rating's), each once, or "resync" when a category deletion touched many cards.
func (Products) Notifications(batch []eventstore.Event) []string {
	ids := ratingNotifications(batch)
	for _, e := range batch {
		switch e.StreamType {
		case catalog.ProductStreamType:
			id, ok := catalog.ProductIDFromStream(e.StreamID)
			if ok {
				ids = append(ids, id)
			}
		case catalog.CategoryStreamType:
			if e.Type == (catalog.CategoryDeleted{}).EventType() {
				return []string{projections.ResyncNotification}
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}

// ProductMatchesChannel is notified (payload "changed") in the products projector's transaction
// when a batch changed what products a search or filter matches or how a listing sorts them: a
// product created, edited (name, description, price, category) or deleted. A batch of stock,
// image or rating changes only is not: those change the cards on ProductCardsChannel, by id.
const ProductMatchesChannel = "product_matches"

// imageEventTypes change a product's card (its cover), never what it matches.
var imageEventTypes = map[string]struct{}{catalog.ProductImageAdded{}.EventType(): {},
	catalog.ProductImageRemoved{}.EventType(): {}, catalog.ProductImagesArranged{}.EventType(): {}}

// ExtraNotifications implements projections.ExtraNotifier (ProductMatchesChannel): any product
// event but a stock or image change notifies it, so an event type added later does too.
func (Products) ExtraNotifications(batch []eventstore.Event) []projections.Notification {
	for _, e := range batch {
		if e.StreamType != catalog.ProductStreamType {
			continue
		}
		switch e.Type {
		case catalog.ProductStockAdjusted{}.EventType(), catalog.ProductStockReserved{}.EventType(),
			catalog.ProductStockReleased{}.EventType():
		default:
			if _, image := imageEventTypes[e.Type]; !image {
				return []projections.Notification{{Channel: ProductMatchesChannel, Payload: "changed"}}
			}
		}
	}
	return nil
}

// Projectors returns the catalog's projectors, in a stable order.
func Projectors() []projections.Projector {
	return []projections.Projector{Categories{}, Products{}}
}
