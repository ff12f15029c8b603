package catalog

import (
	"github.com/techvault/techvault/domain"
)

// Category groups products. It changes only by recording events.
type Category struct {
	id          int64
	name        string
	description string
	deleted     bool
	version     int64
	changes     []domain.Event
}

// NewCategory validates and creates a category with an id allocated by the caller.
func NewCategory(id int64, name, description string) (*Category, error) {
	name, err := domain.CleanText(name, categoryName)
	if err != nil {
		return nil, err
	}
	description, err = domain.CleanText(description, categoryDescription)
	if err != nil {
		return nil, err
	}
	c := &Category{}
	c.record(CategoryCreated{CategoryID: id, Name: name, Description: description})
	return c, nil
}

// RehydrateCategory rebuilds a category from its stream; nil when the stream is empty.
func RehydrateCategory(history []domain.Event) *Category {
	if len(history) == 0 {
		return nil
	}
	c := &Category{}
	for _, e := range history {
		c.apply(e)
		c.version++
	}
	return c
}

// CategoryPatch lists the fields to change; nil leaves a field as it is.
type CategoryPatch struct {
	Name        *string
	Description *string
}

// Update changes the name and/or description. A patch that changes nothing records nothing.
func (c *Category) Update(p CategoryPatch) error {
	if err := c.mustExist(); err != nil {
		return err
	}
	next := CategoryUpdated{CategoryID: c.id, Name: c.name, Description: c.description}
	var err error
	if p.Name != nil {
		if next.Name, err = domain.CleanText(*p.Name, categoryName); err != nil {
			return err
		}
	}
	if p.Description != nil {
		if next.Description, err = domain.CleanText(*p.Description, categoryDescription); err != nil {
			return err
		}
	}
	if next.Name == c.name && next.Description == c.description {
		return nil
	}
	c.record(next)
	return nil
}

// Delete removes the category.
func (c *Category) Delete() error {
	if err := c.mustExist(); err != nil {
		return err
	}
	c.record(CategoryDeleted{CategoryID: c.id})
	return nil
}

// Reference records that a change of product productID names this category. A deleted (or
// missing) category refuses: the product cannot be put in it. Appending the reference with the
// category's expected version is what orders the product's change against a concurrent deletion.
func (c *Category) Reference(productID int64) error {
	if !c.Exists() {
		return &domain.Error{Kind: domain.ErrInvalid, Field: "category_id", Message: "category does not exist"}
	}
	c.record(CategoryReferenced{CategoryID: c.id, ProductID: productID})
	return nil
}

func (c *Category) mustExist() error {
	if c == nil || c.deleted {
		return domain.NotFound("category not found")
	}
	return nil
}

// Exists reports whether the category exists and is not deleted.
func (c *Category) Exists() bool { return c != nil && !c.deleted }

func (c *Category) ID() int64           { return c.id }
func (c *Category) Name() string        { return c.name }
func (c *Category) Description() string { return c.description }

// Version is the stream version the category was loaded at (the expected version of an append).
func (c *Category) Version() int64 { return c.version }

// Changes are the events recorded since the category was loaded or created.
func (c *Category) Changes() []domain.Event { return c.changes }

func (c *Category) record(e domain.Event) {
	c.apply(e)
	c.changes = append(c.changes, e)
}

func (c *Category) apply(e domain.Event) {
	switch e := e.(type) {
	case CategoryCreated:
		c.id, c.name, c.description = e.CategoryID, e.Name, e.Description
	case CategoryUpdated:
		c.name, c.description = e.Name, e.Description
	case CategoryDeleted:
		c.deleted = true
	}
}
