package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// DemoCategory is a category of the demo catalog with its products.
type DemoCategory struct {
	Name        string
	Description string
	Products    []DemoProduct
}

// DemoProduct is a product of the demo catalog.
type DemoProduct struct {
	Name        string
	Description string
	Price       string
	Stock       int64
}

// SeedResult reports a seeding.
type SeedResult struct {
	AlreadySeeded bool
	Categories    int
	Products      int
	Position      int64
}

// SeedDemoCatalog appends the demo catalog, with a marker event, in one atomic append. It runs
// once: when the marker stream exists (or another seeder wins the race) it changes nothing.
func (h *Catalog) SeedDemoCatalog(ctx context.Context, md domain.Metadata, data []DemoCategory) (SeedResult, error) {
	existing, err := h.store.Load(ctx, catalog.DemoStreamID)
	if err != nil {
		return SeedResult{}, fmt.Errorf("checking for an earlier seed: %w", err)
	}
	if len(existing) > 0 {
		return SeedResult{AlreadySeeded: true}, nil
	}
	var (
		changes []Change
		res     SeedResult
	)
	for _, dc := range data {
		id, err := h.ids.NextID(ctx, CategoryIDs)
		if err != nil {
			return SeedResult{}, err
		}
		c, err := catalog.NewCategory(id, dc.Name, dc.Description)
		if err != nil {
			return SeedResult{}, fmt.Errorf("demo category %q: %w", dc.Name, err)
		}
		changes = append(changes, categoryChange(c))
		res.Categories++
		cat := catalog.RehydrateCategory(c.Changes())
		for _, dp := range dc.Products {
			price, err := domain.ParseMoney(dp.Price)
			if err != nil {
				return SeedResult{}, fmt.Errorf("demo product %q: %w", dp.Name, err)
			}
			pid, err := h.ids.NextID(ctx, ProductIDs)
			if err != nil {
				return SeedResult{}, err
			}
			p, err := catalog.NewProduct(catalog.NewProductInput{ID: pid, Name: dp.Name, Description: dp.Description,
				Price: price, Category: cat, CategoryID: &id, Stock: dp.Stock})
			if err != nil {
				return SeedResult{}, fmt.Errorf("demo product %q: %w", dp.Name, err)
			}
			changes = append(changes, productChange(p))
			res.Products++
		}
	}
	changes = append(changes, Change{StreamID: catalog.DemoStreamID, StreamType: catalog.DemoStreamType,
		Events: []domain.Event{catalog.DemoCatalogSeeded{Categories: res.Categories, Products: res.Products}}})
	res.Position, err = appendChanges(ctx, h.store, md, nil, changes...)
	if errors.Is(err, eventstore.ErrConcurrency) {
		return SeedResult{AlreadySeeded: true}, nil
	}
	if err != nil {
		return SeedResult{}, err
	}
	return res, nil
}
