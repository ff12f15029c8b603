package projections

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// Projector names: consumer groups and checkpoint keys, fixed for ever.
const (
	CategoriesProjector = "categories"
	ProductsProjector   = "products"
)

// ProductCardsChannel is the NOTIFY channel on which the products projector announces changed
// product ids (after its commit) for the Redis view.
const ProductCardsChannel = "techvault_product_cards"

// Categories projects the categories table.
type Categories struct{}

func (Categories) Name() string     { return CategoriesProjector }
func (Categories) Tables() []string { return []string{"categories"} }

// Apply implements Projector.
func (Categories) Apply(t Tables, e eventstore.Event) ([]Stmt, error) {
	if e.StreamType != catalog.CategoryStreamType {
		return nil, nil
	}
	d, err := catalog.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return nil, err
	}
	at := e.RecordedAt.UTC()
	switch d := d.(type) {
	case catalog.CategoryCreated:
		return []Stmt{{t.Sub(`INSERT INTO {categories} (id, name, description, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING`),
			[]any{d.CategoryID, d.Name, d.Description, e.Version, at}}}, nil
	case catalog.CategoryUpdated:
		return []Stmt{{t.Sub(`UPDATE {categories} SET name = $2, description = $3, version = $4, updated_at = $5
			WHERE id = $1 AND version < $4`),
			[]any{d.CategoryID, d.Name, d.Description, e.Version, at}}}, nil
	case catalog.CategoryDeleted:
		return []Stmt{{t.Sub(`DELETE FROM {categories} WHERE id = $1`), []any{d.CategoryID}}}, nil
	}
	return nil, nil
}

// Products projects the products table. It also follows category deletions (products of a
// deleted category become uncategorised) without reading the categories table: it keeps the
// deleted category ids in a table of its own, so that a product created or moved into a category
// whose deletion came first in the log (a command race) is projected uncategorised too.
type Products struct{}

func (Products) Name() string     { return ProductsProjector }
func (Products) Tables() []string { return []string{"products", "products_deleted_categories"} }

// liveCategory is the category id $n unless the projector has seen that category deleted.
func liveCategory(n int) string {
	return fmt.Sprintf(`(SELECT $%[1]d::integer WHERE NOT EXISTS (
		SELECT 1 FROM {products_deleted_categories} WHERE category_id = $%[1]d))`, n)
}

// Apply implements Projector.
func (Products) Apply(t Tables, e eventstore.Event) ([]Stmt, error) {
	switch e.StreamType {
	case catalog.ProductStreamType, catalog.CategoryStreamType:
	default:
		return nil, nil
	}
	d, err := catalog.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return nil, err
	}
	at := e.RecordedAt.UTC()
	switch d := d.(type) {
	case catalog.ProductCreated:
		return []Stmt{{t.Sub(`INSERT INTO {products} (id, name, description, price, currency, category_id, stock,
				version, created_at, updated_at)
			VALUES ($1, $2, $3, $4::numeric / 100, $5, ` + liveCategory(6) + `, $7, $8, $9, $9) ON CONFLICT (id) DO NOTHING`),
			[]any{d.ProductID, d.Name, d.Description, d.Price.Cents(), d.Currency, d.CategoryID, d.Stock, e.Version, at}}}, nil
	case catalog.ProductUpdated:
		return []Stmt{{t.Sub(`UPDATE {products} SET name = $2, description = $3, price = $4::numeric / 100,
				category_id = ` + liveCategory(5) + `, version = $6, updated_at = $7
			WHERE id = $1 AND version < $6`),
			[]any{d.ProductID, d.Name, d.Description, d.Price.Cents(), d.CategoryID, e.Version, at}}}, nil
	case catalog.ProductStockAdjusted:
		return []Stmt{{t.Sub(`UPDATE {products} SET stock = $2, version = $3, updated_at = $4
			WHERE id = $1 AND version < $3`),
			[]any{d.ProductID, d.Stock, e.Version, at}}}, nil
	case catalog.ProductDeleted:
		return []Stmt{{t.Sub(`DELETE FROM {products} WHERE id = $1`), []any{d.ProductID}}}, nil
	case catalog.CategoryDeleted:
		return []Stmt{
			{t.Sub(`INSERT INTO {products_deleted_categories} (category_id) VALUES ($1) ON CONFLICT DO NOTHING`), []any{d.CategoryID}},
			{t.Sub(`UPDATE {products} SET category_id = NULL WHERE category_id = $1`), []any{d.CategoryID}},
		}, nil
	}
	return nil, nil
}

// NotifyChannel implements Notifier.
func (Products) NotifyChannel() string { return ProductCardsChannel }

// Notifications implements Notifier: the product whose card changed, or "resync" when a category
// deletion touched many cards.
func (Products) Notifications(e eventstore.Event) []string {
	switch e.StreamType {
	case catalog.ProductStreamType:
		var id struct {
			ProductID int64 `json:"product_id"`
		}
		if err := json.Unmarshal(e.Data, &id); err != nil || id.ProductID == 0 {
			return nil
		}
		return []string{strconv.FormatInt(id.ProductID, 10)}
	case catalog.CategoryStreamType:
		if e.Type == (catalog.CategoryDeleted{}).EventType() {
			return []string{ResyncNotification}
		}
	}
	return nil
}

// ResyncNotification asks a view to rebuild itself from its table.
const ResyncNotification = "resync"

// All returns every projector, in a stable order.
func All() []Projector { return []Projector{Categories{}, Products{}} }

// ByName finds a projector.
func ByName(name string) (Projector, error) {
	for _, p := range All() {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no projector named %q", name)
}
