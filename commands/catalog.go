package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
)

// Catalog handles the catalog's commands.
type Catalog struct {
	store EventStore
	ids   IDAllocator
	load  loader
}

// NewCatalog returns the catalog's command handlers. Transient database failures are retried
// once where that is safe and otherwise reported as domain.ErrUnavailable.
func NewCatalog(store EventStore, ids IDAllocator, opts ...Option) *Catalog {
	rs := resilientStore{store}
	l := newLoader(rs, resilientSnapshots(store), opts)
	return &Catalog{store: l.observe(rs), ids: resilientIDs{ids}, load: l}
}

// Id kinds allocated by IDAllocator.
const (
	CategoryIDs = "category"
	ProductIDs  = "product"
)

// CategoryResult is the category after a command, and where its last event landed.
type CategoryResult struct {
	ID          int64
	Name        string
	Description string
	Position    int64
}

// ProductResult is the product after a command, and where its last event landed.
type ProductResult struct {
	ID          int64
	Name        string
	Description string
	Price       domain.Money
	Currency    string
	CategoryID  *int64
	Stock       int64
	Position    int64
}

func categoryResult(c *catalog.Category, pos int64) CategoryResult {
	return CategoryResult{ID: c.ID(), Name: c.Name(), Description: c.Description(), Position: pos}
}

func productResult(p *catalog.Product, pos int64) ProductResult {
	return ProductResult{ID: p.ID(), Name: p.Name(), Description: p.Description(), Price: p.Price(),
		Currency: catalog.Currency, CategoryID: p.CategoryID(), Stock: p.Stock(), Position: pos}
}

func (h *Catalog) loadCategory(ctx context.Context, id int64) (*catalog.Category, error) {
	return loadAggregate(ctx, h.load, categoryKind, id)
}

// loadProduct loads a product to append to (every product command does).
func (h *Catalog) loadProduct(ctx context.Context, id int64) (*catalog.Product, error) {
	return loadForAppend(ctx, h.load, productKind, id)
}

func categoryChange(c *catalog.Category) Change {
	return Change{StreamID: catalog.CategoryStreamID(c.ID()), StreamType: catalog.CategoryStreamType,
		ExpectedVersion: c.Version(), Events: c.Changes()}
}

func productChange(p *catalog.Product) Change {
	return withState(Change{StreamID: catalog.ProductStreamID(p.ID()), StreamType: catalog.ProductStreamType,
		ExpectedVersion: p.Version(), Events: p.Changes()}, productKind, p)
}

// CreateCategory is the command to add a category.
type CreateCategory struct {
	Name        string
	Description string
}

// CreateCategory adds a category under a newly allocated id.
func (h *Catalog) CreateCategory(ctx context.Context, md domain.Metadata, cmd CreateCategory) (CategoryResult, error) {
	return execute(ctx, h.store, md, "CreateCategory", once, CategoryResult.withPosition,
		func(ctx context.Context) (CategoryResult, []Change, error) {
			// Validate before allocating, so bad input burns no id.
			if _, err := catalog.NewCategory(0, cmd.Name, cmd.Description); err != nil {
				return CategoryResult{}, nil, err
			}
			id, err := h.ids.NextID(ctx, CategoryIDs)
			if err != nil {
				return CategoryResult{}, nil, err
			}
			c, err := catalog.NewCategory(id, cmd.Name, cmd.Description)
			if err != nil {
				return CategoryResult{}, nil, err
			}
			return categoryResult(c, 0), []Change{categoryChange(c)}, nil
		})
}

// UpdateCategory is the command to change a category; nil fields stay as they are.
type UpdateCategory struct {
	ID          int64
	Name        *string
	Description *string
}

// UpdateCategory changes a category (retried on a version clash: the patch is re-applied to the
// fresh state).
func (h *Catalog) UpdateCategory(ctx context.Context, md domain.Metadata, cmd UpdateCategory) (CategoryResult, error) {
	return execute(ctx, h.store, md, "UpdateCategory", redecideOnConflict, CategoryResult.withPosition,
		func(ctx context.Context) (CategoryResult, []Change, error) {
			c, err := h.loadCategory(ctx, cmd.ID)
			if err != nil {
				return CategoryResult{}, nil, err
			}
			if err := c.Update(catalog.CategoryPatch{Name: cmd.Name, Description: cmd.Description}); err != nil {
				return CategoryResult{}, nil, withID(err, "category", cmd.ID)
			}
			return categoryResult(c, 0), []Change{categoryChange(c)}, nil
		})
}

// DeleteCategory removes a category; its products become uncategorised.
func (h *Catalog) DeleteCategory(ctx context.Context, md domain.Metadata, id int64) (int64, error) {
	return execute(ctx, h.store, md, "DeleteCategory", redecideOnConflict, positionOnly,
		func(ctx context.Context) (int64, []Change, error) {
			c, err := h.loadCategory(ctx, id)
			if err != nil {
				return 0, nil, err
			}
			if err := c.Delete(); err != nil {
				return 0, nil, withID(err, "category", id)
			}
			return 0, []Change{categoryChange(c)}, nil
		})
}

// CreateProduct is the command to add a product.
type CreateProduct struct {
	Name        string
	Description string
	Price       domain.Money
	CategoryID  *int64
	Stock       int64
}

// CreateProduct adds a product under a newly allocated id. When it names a category, the
// category records the reference in the same append (see referenceCategory), so a concurrent
// deletion of the category makes one of the two fail; the product is then re-decided on fresh
// state, under the id it was given first.
func (h *Catalog) CreateProduct(ctx context.Context, md domain.Metadata, cmd CreateProduct) (ProductResult, error) {
	var id int64
	return execute(ctx, h.store, md, "CreateProduct", redecideOnConflict, ProductResult.withPosition,
		func(ctx context.Context) (ProductResult, []Change, error) {
			in := catalog.NewProductInput{Name: cmd.Name, Description: cmd.Description, Price: cmd.Price,
				CategoryID: cmd.CategoryID, Stock: cmd.Stock}
			if cmd.CategoryID != nil {
				c, err := h.loadCategory(ctx, *cmd.CategoryID)
				if err != nil {
					return ProductResult{}, nil, err
				}
				in.Category = c
			}
			if id == 0 {
				// Validate before allocating, so bad input burns no id.
				if _, err := catalog.NewProduct(in); err != nil {
					return ProductResult{}, nil, err
				}
				var err error
				if id, err = h.ids.NextID(ctx, ProductIDs); err != nil {
					return ProductResult{}, nil, err
				}
			}
			in.ID = id
			p, err := catalog.NewProduct(in)
			if err != nil {
				return ProductResult{}, nil, err
			}
			changes, err := referenceCategory(p, in.Category)
			return productResult(p, 0), changes, err
		})
}

// referenceCategory returns the changes to append for a product that recorded events: the
// product's, and, when the product ends up in a category, a CategoryReferenced on that category
// (c, loaded in the same decision), so that the reference carries the category's expected version.
//
// The rule, for every command: a decision that depends on another aggregate records an event on
// it in the same append, with each stream's expected version.
func referenceCategory(p *catalog.Product, c *catalog.Category) ([]Change, error) {
	changes := []Change{productChange(p)}
	if len(p.Changes()) == 0 || p.CategoryID() == nil {
		return changes, nil
	}
	if c == nil || c.ID() != *p.CategoryID() {
		return nil, fmt.Errorf("product %d names category %d, which the command did not load", p.ID(), *p.CategoryID())
	}
	if err := c.Reference(p.ID()); err != nil {
		return nil, err
	}
	return append(changes, categoryChange(c)), nil
}

// UpdateProduct is the command to change a product's details; nil fields stay as they are.
type UpdateProduct struct {
	ID            int64
	Name          *string
	Description   *string
	Price         *domain.Money
	CategoryID    *int64
	ClearCategory bool
}

// UpdateProduct changes a product (retried on a version clash). When the product ends up in a
// category, the category records the reference in the same append (see referenceCategory).
func (h *Catalog) UpdateProduct(ctx context.Context, md domain.Metadata, cmd UpdateProduct) (ProductResult, error) {
	return execute(ctx, h.store, md, "UpdateProduct", redecideOnConflict, ProductResult.withPosition,
		func(ctx context.Context) (ProductResult, []Change, error) {
			p, err := h.loadProduct(ctx, cmd.ID)
			if err != nil {
				return ProductResult{}, nil, err
			}
			if !p.Exists() {
				return ProductResult{}, nil, domain.NotFound("product %d not found", cmd.ID)
			}
			patch := catalog.ProductPatch{Name: cmd.Name, Description: cmd.Description, Price: cmd.Price,
				CategoryID: cmd.CategoryID, ClearCategory: cmd.ClearCategory}
			var c *catalog.Category
			switch {
			case patch.ClearCategory:
			case patch.CategoryID != nil:
				if c, err = h.loadCategory(ctx, *patch.CategoryID); err != nil {
					return ProductResult{}, nil, err
				}
				patch.Category = c
			case p.CategoryID() != nil:
				// The patch keeps the product's category. A product's stream does not hear of its
				// category's deletion: a deleted category is dropped rather than named again.
				if c, err = h.loadCategory(ctx, *p.CategoryID()); err != nil {
					return ProductResult{}, nil, err
				}
				patch.ClearCategory = !c.Exists()
			}
			if err := p.Update(patch); err != nil {
				return ProductResult{}, nil, withID(err, "product", cmd.ID)
			}
			changes, err := referenceCategory(p, c)
			return productResult(p, 0), changes, err
		})
}

// AdjustStock is the command to change stock: by Delta, or to Quantity when that is set.
type AdjustStock struct {
	ID       int64
	Delta    int64
	Quantity *int64
}

// AdjustStock moves a product's stock (retried on a version clash: concurrent deltas all apply).
func (h *Catalog) AdjustStock(ctx context.Context, md domain.Metadata, cmd AdjustStock) (ProductResult, error) {
	return execute(ctx, h.store, md, "AdjustStock", redecideOnConflict, ProductResult.withPosition,
		func(ctx context.Context) (ProductResult, []Change, error) {
			p, err := h.loadProduct(ctx, cmd.ID)
			if err != nil {
				return ProductResult{}, nil, err
			}
			if cmd.Quantity != nil {
				err = p.SetStock(*cmd.Quantity)
			} else {
				err = p.AdjustStock(cmd.Delta)
			}
			if err != nil {
				return ProductResult{}, nil, withID(err, "product", cmd.ID)
			}
			return productResult(p, 0), []Change{productChange(p)}, nil
		})
}

// DeleteProduct removes a product from the catalog.
func (h *Catalog) DeleteProduct(ctx context.Context, md domain.Metadata, id int64) (int64, error) {
	return execute(ctx, h.store, md, "DeleteProduct", redecideOnConflict, positionOnly,
		func(ctx context.Context) (int64, []Change, error) {
			p, err := h.loadProduct(ctx, id)
			if err != nil {
				return 0, nil, err
			}
			if err := p.Delete(); err != nil {
				return 0, nil, withID(err, "product", id)
			}
			return 0, []Change{productChange(p)}, nil
		})
}

// withID names the resource in a not-found error.
func withID(err error, kind string, id int64) error {
	if errors.Is(err, domain.ErrNotFound) {
		return domain.NotFound("%s %d not found", kind, id)
	}
	return err
}
