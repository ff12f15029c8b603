// Package catalog is the catalog's domain: categories and products, their events and rules.
package catalog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/techvault/techvault/domain"
)

// Stream types of the catalog's aggregates.
const (
	CategoryStreamType = "category"
	ProductStreamType  = "product"
)

// DemoStreamID is the stream that records the demo catalog was seeded (its only event).
const (
	DemoStreamID   = "seed-demo-catalog"
	DemoStreamType = "seed"
)

// CategoryStreamID is the event stream of one category.
func CategoryStreamID(id int64) string { return fmt.Sprintf("category-%d", id) }

// ProductStreamID is the event stream of one product.
func ProductStreamID(id int64) string { return fmt.Sprintf("product-%d", id) }

// ProductIDFromStream is the product id of a ProductStreamID; ok is false for another stream.
func ProductIDFromStream(streamID string) (id int64, ok bool) {
	rest, found := strings.CutPrefix(streamID, "product-")
	if !found {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// CategoryCreated.v1: a category was created.
type CategoryCreated struct {
	CategoryID  int64  `json:"category_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// CategoryUpdated.v1: a category's name and description are now these (the whole new state).
type CategoryUpdated struct {
	CategoryID  int64  `json:"category_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// CategoryDeleted.v1: a category was removed; its products become uncategorised.
type CategoryDeleted struct {
	CategoryID int64 `json:"category_id"`
}

// CategoryReferenced.v1: a product change named this category (a product created in it or moved
// into it, or changed while in it). It is recorded on the category's stream in the same append as
// the product's event, with both streams' expected versions, so that the reference and a deletion
// of the category are ordered in the log: whichever commits second was decided on the state after
// the first. It changes nothing a reader sees.
type CategoryReferenced struct {
	CategoryID int64 `json:"category_id"`
	ProductID  int64 `json:"product_id"`
}

// ProductCreated.v1: a product was added to the catalog.
type ProductCreated struct {
	ProductID   int64        `json:"product_id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       domain.Money `json:"price"`
	Currency    string       `json:"currency"`
	CategoryID  *int64       `json:"category_id"`
	Stock       int64        `json:"stock"`
}

// ProductUpdated.v1: a product's details are now these (the whole new state of the editable
// fields; stock changes separately).
type ProductUpdated struct {
	ProductID   int64        `json:"product_id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       domain.Money `json:"price"`
	CategoryID  *int64       `json:"category_id"`
}

// ProductStockAdjusted.v1: stock moved by Delta, to Stock.
type ProductStockAdjusted struct {
	ProductID int64 `json:"product_id"`
	Delta     int64 `json:"delta"`
	Stock     int64 `json:"stock"`
}

// ProductStockReserved.v1: an order took Quantity of the product's stock, which is now Stock.
type ProductStockReserved struct {
	ProductID int64 `json:"product_id"`
	OrderID   int64 `json:"order_id"`
	Quantity  int64 `json:"quantity"`
	Stock     int64 `json:"stock"`
}

// ProductStockReleased.v1: a cancelled order gave back Quantity; the stock is now Stock.
type ProductStockReleased struct {
	ProductID int64 `json:"product_id"`
	OrderID   int64 `json:"order_id"`
	Quantity  int64 `json:"quantity"`
	Stock     int64 `json:"stock"`
}

// ProductDeleted.v1: a product was removed from the catalog.
type ProductDeleted struct {
	ProductID int64 `json:"product_id"`
}

// DemoCatalogSeeded.v1: the demo catalog was appended (with these many categories and products,
// in the same atomic append).
type DemoCatalogSeeded struct {
	Categories int `json:"categories"`
	Products   int `json:"products"`
}

func (DemoCatalogSeeded) EventType() string     { return "DemoCatalogSeeded" }
func (DemoCatalogSeeded) SchemaVersion() int    { return 1 }
func (CategoryCreated) EventType() string       { return "CategoryCreated" }
func (CategoryUpdated) EventType() string       { return "CategoryUpdated" }
func (CategoryDeleted) EventType() string       { return "CategoryDeleted" }
func (CategoryReferenced) EventType() string    { return "CategoryReferenced" }
func (ProductCreated) EventType() string        { return "ProductCreated" }
func (ProductUpdated) EventType() string        { return "ProductUpdated" }
func (ProductStockAdjusted) EventType() string  { return "ProductStockAdjusted" }
func (ProductStockReserved) EventType() string  { return "ProductStockReserved" }
func (ProductStockReleased) EventType() string  { return "ProductStockReleased" }
func (ProductStockReserved) SchemaVersion() int { return 1 }
func (ProductStockReleased) SchemaVersion() int { return 1 }
func (ProductDeleted) EventType() string        { return "ProductDeleted" }

func (CategoryCreated) SchemaVersion() int      { return 1 }
func (CategoryUpdated) SchemaVersion() int      { return 1 }
func (CategoryDeleted) SchemaVersion() int      { return 1 }
func (CategoryReferenced) SchemaVersion() int   { return 1 }
func (ProductCreated) SchemaVersion() int       { return 1 }
func (ProductUpdated) SchemaVersion() int       { return 1 }
func (ProductStockAdjusted) SchemaVersion() int { return 1 }
func (ProductDeleted) SchemaVersion() int       { return 1 }

// ErrUnknownEvent is returned by Decode for a type or version this code does not know.
var ErrUnknownEvent = fmt.Errorf("unknown catalog event")

// Decode turns a stored event into its struct. Older schema versions are upcast here.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	var e domain.Event
	switch eventType + "." + fmt.Sprint(schemaVersion) {
	case "CategoryCreated.1":
		e = &CategoryCreated{}
	case "CategoryUpdated.1":
		e = &CategoryUpdated{}
	case "CategoryDeleted.1":
		e = &CategoryDeleted{}
	case "CategoryReferenced.1":
		e = &CategoryReferenced{}
	case "ProductCreated.1":
		e = &ProductCreated{}
	case "ProductUpdated.1":
		e = &ProductUpdated{}
	case "ProductStockAdjusted.1":
		e = &ProductStockAdjusted{}
	case "ProductDeleted.1":
		e = &ProductDeleted{}
	case "ProductStockReserved.1":
		e = &ProductStockReserved{}
	case "ProductStockReleased.1":
		e = &ProductStockReleased{}
	case "ProductImageAdded.1":
		e = &ProductImageAdded{}
	case "ProductImageRemoved.1":
		e = &ProductImageRemoved{}
	case "ProductImagesArranged.1":
		e = &ProductImagesArranged{}
	case "DemoCatalogSeeded.1":
		e = &DemoCatalogSeeded{}
	default:
		return nil, fmt.Errorf("%w: %s.v%d", ErrUnknownEvent, eventType, schemaVersion)
	}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("decoding %s.v%d: %w", eventType, schemaVersion, err)
	}
	return deref(e), nil
}

// deref returns the event by value, so callers switch on value types.
func deref(e domain.Event) domain.Event {
	switch v := e.(type) {
	case *CategoryCreated:
		return *v
	case *CategoryUpdated:
		return *v
	case *CategoryDeleted:
		return *v
	case *CategoryReferenced:
		return *v
	case *ProductCreated:
		return *v
	case *ProductUpdated:
		return *v
	case *ProductStockAdjusted:
		return *v
	case *ProductDeleted:
		return *v
	case *ProductStockReserved:
		return *v
	case *ProductStockReleased:
		return *v
	case *ProductImageAdded:
		return *v
	case *ProductImageRemoved:
		return *v
	case *ProductImagesArranged:
		return *v
	case *DemoCatalogSeeded:
		return *v
	}
	return e
}
