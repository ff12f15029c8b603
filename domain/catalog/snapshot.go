package catalog

import (
	"errors"
	"fmt"
	"slices"

	"github.com/techvault/techvault/domain"
)

// Snapshot schema versions. A snapshot stores an aggregate's state so that a long stream need not
// be replayed from its first event; it is read back only when its schema version equals the
// constant here. Bump the constant whenever the state struct's shape or the aggregate's apply
// logic changes: older snapshots are then ignored (and rewritten) instead of being trusted.
const (
	ProductSnapshotSchemaVersion  = 2
	CategorySnapshotSchemaVersion = 1
)

// ProductState is a product's whole state, as a snapshot stores it.
type ProductState struct {
	ID          int64        `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Price       domain.Money `json:"price"`
	CategoryID  *int64       `json:"category_id"`
	Stock       int64        `json:"stock"`
	// Images are the product's images, first to last, and CoverImageID its cover (schema 2).
	Images       []Image `json:"images"`
	CoverImageID int64   `json:"cover_image_id"`
	Deleted      bool    `json:"deleted"`
}

// CategoryState is a category's whole state, as a snapshot stores it.
type CategoryState struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Deleted     bool   `json:"deleted"`
}

// Snapshot returns the product's state. Taken right after loading (no recorded changes), it is
// the state at Version().
func (p *Product) Snapshot() ProductState {
	var cat *int64
	if p.categoryID != nil {
		v := *p.categoryID
		cat = &v
	}
	return ProductState{ID: p.id, Name: p.name, Description: p.description, Price: p.price,
		CategoryID: cat, Stock: p.stock, Images: slices.Clone(p.images), CoverImageID: p.cover, Deleted: p.deleted}
}

// Snapshot returns the category's state. Taken right after loading (no recorded changes), it is
// the state at Version().
func (c *Category) Snapshot() CategoryState {
	return CategoryState{ID: c.id, Name: c.name, Description: c.description, Deleted: c.deleted}
}

// RehydrateProductFrom rebuilds a product from a snapshot of its state at version and the events
// recorded after it. A state that no product could be in is an error (the caller then loads the
// whole stream instead).
func RehydrateProductFrom(state ProductState, version int64, tail []domain.Event) (*Product, error) {
	if err := state.check(version); err != nil {
		return nil, err
	}
	p := &Product{id: state.ID, name: state.Name, description: state.Description, price: state.Price,
		stock: state.Stock, images: slices.Clone(state.Images), cover: state.CoverImageID, deleted: state.Deleted, version: version}
	if state.CategoryID != nil {
		v := *state.CategoryID
		p.categoryID = &v
	}
	for _, e := range tail {
		p.apply(e)
		p.version++
	}
	return p, nil
}

// RehydrateCategoryFrom rebuilds a category from a snapshot of its state at version and the
// events recorded after it. A state that no category could be in is an error.
func RehydrateCategoryFrom(state CategoryState, version int64, tail []domain.Event) (*Category, error) {
	if err := state.check(version); err != nil {
		return nil, err
	}
	c := &Category{id: state.ID, name: state.Name, description: state.Description, deleted: state.Deleted, version: version}
	for _, e := range tail {
		c.apply(e)
		c.version++
	}
	return c, nil
}

// ErrBadSnapshot reports a snapshot state that fails the aggregate's invariants.
var ErrBadSnapshot = errors.New("catalog: invalid snapshot")

func (s ProductState) check(version int64) error {
	switch {
	case version < 1:
		return fmt.Errorf("%w: product version %d", ErrBadSnapshot, version)
	case s.ID < 1:
		return fmt.Errorf("%w: product id %d", ErrBadSnapshot, s.ID)
	case s.CategoryID != nil && *s.CategoryID < 1:
		return fmt.Errorf("%w: product %d: category id %d", ErrBadSnapshot, s.ID, *s.CategoryID)
	}
	if err := sameText(s.Name, productName); err != nil {
		return badState("product", s.ID, err)
	}
	if err := sameText(s.Description, productDescription); err != nil {
		return badState("product", s.ID, err)
	}
	if err := checkPrice(s.Price); err != nil {
		return badState("product", s.ID, err)
	}
	if err := checkStock("stock", s.Stock); err != nil {
		return badState("product", s.ID, err)
	}
	return s.checkImages()
}

// checkImages checks the images of a product state: at most MaxImages, each well formed and
// listed once, and a cover among them exactly when there is any.
func (s ProductState) checkImages() error {
	if len(s.Images) > MaxImages {
		return fmt.Errorf("%w: product %d has %d images", ErrBadSnapshot, s.ID, len(s.Images))
	}
	seen := map[int64]bool{}
	for _, img := range s.Images {
		if err := checkImage(img); err != nil {
			return fmt.Errorf("%w: product %d: %s", ErrBadSnapshot, s.ID, err.Error())
		}
		if seen[img.ID] {
			return fmt.Errorf("%w: product %d lists image %d twice", ErrBadSnapshot, s.ID, img.ID)
		}
		seen[img.ID] = true
	}
	if (len(s.Images) == 0) != (s.CoverImageID == 0) || (s.CoverImageID != 0 && !seen[s.CoverImageID]) {
		return fmt.Errorf("%w: product %d: cover image %d is not one of its images", ErrBadSnapshot, s.ID, s.CoverImageID)
	}
	return nil
}

func (s CategoryState) check(version int64) error {
	switch {
	case version < 1:
		return fmt.Errorf("%w: category version %d", ErrBadSnapshot, version)
	case s.ID < 1:
		return fmt.Errorf("%w: category id %d", ErrBadSnapshot, s.ID)
	}
	if err := sameText(s.Name, categoryName); err != nil {
		return badState("category", s.ID, err)
	}
	if err := sameText(s.Description, categoryDescription); err != nil {
		return badState("category", s.ID, err)
	}
	return nil
}

// badState reports a state that fails a field check. The check's message is kept, not its
// error: an impossible snapshot is ErrBadSnapshot, never the client's ErrInvalid.
func badState(kind string, id int64, err error) error {
	return fmt.Errorf("%w: %s %d: %s", ErrBadSnapshot, kind, id, err.Error())
}

// sameText checks that s is text the aggregate could hold: already clean, within its limits.
func sameText(s string, rule domain.TextRule) error {
	clean, err := domain.CleanText(s, rule)
	if err != nil {
		return err
	}
	if clean != s {
		return fmt.Errorf("%s has surrounding space", rule.Field)
	}
	return nil
}
