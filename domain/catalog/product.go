package catalog

import (
	"fmt"

	"github.com/techvault/techvault/domain"
)

// Product is a sellable item. It changes only by recording events.
type Product struct {
	id          int64
	name        string
	description string
	price       domain.Money
	categoryID  *int64
	stock       int64
	images      []Image // first to last
	cover       int64   // the cover image's id; 0 when there are no images
	deleted     bool
	version     int64
	changes     []domain.Event
}

// NewProductInput is what creating a product needs. Category is the loaded category the product
// goes in (nil for none; it must exist when given).
type NewProductInput struct {
	ID          int64
	Name        string
	Description string
	Price       domain.Money
	Category    *Category
	CategoryID  *int64
	Stock       int64
}

// NewProduct validates and creates a product.
func NewProduct(in NewProductInput) (*Product, error) {
	name, err := domain.CleanText(in.Name, productName)
	if err != nil {
		return nil, err
	}
	desc, err := domain.CleanText(in.Description, productDescription)
	if err != nil {
		return nil, err
	}
	if err := checkPrice(in.Price); err != nil {
		return nil, err
	}
	if err := checkStock("stock", in.Stock); err != nil {
		return nil, err
	}
	catID, err := categoryRef(in.CategoryID, in.Category)
	if err != nil {
		return nil, err
	}
	p := &Product{}
	p.record(ProductCreated{ProductID: in.ID, Name: name, Description: desc, Price: in.Price,
		Currency: Currency, CategoryID: catID, Stock: in.Stock})
	return p, nil
}

// categoryRef checks that a referenced category exists.
func categoryRef(id *int64, c *Category) (*int64, error) {
	if id == nil {
		return nil, nil
	}
	if !c.Exists() || c.ID() != *id {
		return nil, &domain.Error{Kind: domain.ErrInvalid, Field: "category_id", Message: "category does not exist"}
	}
	v := *id
	return &v, nil
}

// RehydrateProduct rebuilds a product from its stream; nil when the stream is empty.
func RehydrateProduct(history []domain.Event) *Product {
	if len(history) == 0 {
		return nil
	}
	p := &Product{}
	for _, e := range history {
		p.apply(e)
		p.version++
	}
	return p
}

// ProductPatch lists the fields to change; nil leaves a field as it is. To move the product out
// of its category set ClearCategory.
type ProductPatch struct {
	Name          *string
	Description   *string
	Price         *domain.Money
	CategoryID    *int64
	Category      *Category // the loaded category named by CategoryID
	ClearCategory bool
}

// Update changes the product's details. A patch that changes nothing records nothing.
func (p *Product) Update(patch ProductPatch) error {
	if err := p.mustExist(); err != nil {
		return err
	}
	next := ProductUpdated{ProductID: p.id, Name: p.name, Description: p.description, Price: p.price, CategoryID: p.categoryID}
	var err error
	if patch.Name != nil {
		if next.Name, err = domain.CleanText(*patch.Name, productName); err != nil {
			return err
		}
	}
	if patch.Description != nil {
		if next.Description, err = domain.CleanText(*patch.Description, productDescription); err != nil {
			return err
		}
	}
	if patch.Price != nil {
		if err := checkPrice(*patch.Price); err != nil {
			return err
		}
		next.Price = *patch.Price
	}
	switch {
	case patch.ClearCategory:
		next.CategoryID = nil
	case patch.CategoryID != nil:
		if next.CategoryID, err = categoryRef(patch.CategoryID, patch.Category); err != nil {
			return err
		}
	}
	if next.Name == p.name && next.Description == p.description && next.Price == p.price && sameRef(next.CategoryID, p.categoryID) {
		return nil
	}
	p.record(next)
	return nil
}

func sameRef(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// AdjustStock moves stock by delta; the result must stay within 0 and MaxStock.
func (p *Product) AdjustStock(delta int64) error {
	if err := p.mustExist(); err != nil {
		return err
	}
	if delta == 0 {
		return nil
	}
	if delta > MaxStock || delta < -MaxStock {
		return domain.Invalid("delta", "delta must be between -%d and %d", MaxStock, MaxStock)
	}
	next := p.stock + delta
	if next < 0 {
		return domain.Conflict("stock of product %d is %d; it cannot go down by %d", p.id, p.stock, -delta)
	}
	if err := checkStock("delta", next); err != nil {
		return err
	}
	p.record(ProductStockAdjusted{ProductID: p.id, Delta: delta, Stock: next})
	return nil
}

// SetStock sets stock to quantity.
func (p *Product) SetStock(quantity int64) error {
	if err := p.mustExist(); err != nil {
		return err
	}
	if err := checkStock("quantity", quantity); err != nil {
		return err
	}
	return p.AdjustStock(quantity - p.stock)
}

// Reserve takes quantity of the stock for an order; the product must exist and have it.
func (p *Product) Reserve(orderID, quantity int64) error {
	if !p.Exists() {
		return &domain.Error{Kind: domain.ErrConflict, Field: "product_id", Message: "a product in the cart is no longer sold"}
	}
	if quantity < 1 {
		return domain.Invalid("quantity", "quantity must be positive")
	}
	if p.stock < quantity {
		return &domain.Error{Kind: domain.ErrConflict, Field: "quantity",
			Message: fmt.Sprintf("%s: only %d in stock", p.name, p.stock)}
	}
	p.record(ProductStockReserved{ProductID: p.id, OrderID: orderID, Quantity: quantity, Stock: p.stock - quantity})
	return nil
}

// Release gives back what an order reserved (a deleted product takes it back too, harmlessly).
func (p *Product) Release(orderID, quantity int64) {
	if p == nil || quantity < 1 {
		return
	}
	p.record(ProductStockReleased{ProductID: p.id, OrderID: orderID, Quantity: quantity, Stock: p.stock + quantity})
}

// Delete removes the product from the catalog. Its images are removed first, one event each, so
// that each upload is destroyed after the fact on its own.
func (p *Product) Delete() error {
	if err := p.mustExist(); err != nil {
		return err
	}
	for len(p.images) > 0 {
		p.removeImageAt(len(p.images) - 1)
	}
	p.record(ProductDeleted{ProductID: p.id})
	return nil
}

func (p *Product) mustExist() error {
	if p == nil || p.deleted {
		return domain.NotFound("product not found")
	}
	return nil
}

// Exists reports whether the product exists and is not deleted.
func (p *Product) Exists() bool { return p != nil && !p.deleted }

func (p *Product) ID() int64               { return p.id }
func (p *Product) Name() string            { return p.name }
func (p *Product) Description() string     { return p.description }
func (p *Product) Price() domain.Money     { return p.price }
func (p *Product) CategoryID() *int64      { return p.categoryID }
func (p *Product) Stock() int64            { return p.stock }
func (p *Product) Version() int64          { return p.version }
func (p *Product) Changes() []domain.Event { return p.changes }

func (p *Product) record(e domain.Event) {
	p.apply(e)
	p.changes = append(p.changes, e)
}

func (p *Product) apply(e domain.Event) {
	switch e := e.(type) {
	case ProductCreated:
		p.id, p.name, p.description, p.price, p.categoryID, p.stock = e.ProductID, e.Name, e.Description, e.Price, e.CategoryID, e.Stock
	case ProductUpdated:
		p.name, p.description, p.price, p.categoryID = e.Name, e.Description, e.Price, e.CategoryID
	case ProductStockAdjusted:
		p.stock = e.Stock
	case ProductStockReserved:
		p.stock = e.Stock
	case ProductStockReleased:
		p.stock = e.Stock
	case ProductImageAdded:
		img := e.Image
		p.arrange(e.Order, e.CoverImageID, &img)
	case ProductImageRemoved:
		p.arrange(e.Order, e.CoverImageID, nil)
	case ProductImagesArranged:
		p.arrange(e.Order, e.CoverImageID, nil)
	case ProductDeleted:
		p.deleted = true
	}
}
