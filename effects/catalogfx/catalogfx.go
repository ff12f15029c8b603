// Package catalogfx holds the side effects of catalog events: the destruction of product images
// the catalog let go of. Each is an effects.Reactor: run once per event by the projection engine,
// retried with backoff while its outside service is down, never from a command.
package catalogfx

import (
	"context"
	"fmt"

	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/eventstore"
)

// ImagesReactor is the reactor's name: its consumer group and checkpoint key, fixed for ever.
const ImagesReactor = "product_images"

// Destroyer destroys uploaded images (package images).
type Destroyer interface {
	Destroy(ctx context.Context, publicID string) error
}

// Images is the reactor that destroys, at Cloudinary, the upload of every product image removed
// from its product: one removed through the API, and each image of a deleted product (the
// deletion records one ProductImageRemoved per image before ProductDeleted, so each upload is
// destroyed once, by its own event, and a retry after an outage repeats only what failed).
type Images struct {
	Store Destroyer
}

func (Images) Name() string          { return ImagesReactor }
func (Images) StreamTypes() []string { return []string{catalog.ProductStreamType} }

// React destroys the upload a ProductImageRemoved let go of (destroying a missing upload
// succeeds, so a repeat is harmless).
func (r Images) React(ctx context.Context, e eventstore.Event) error {
	if e.Type != (catalog.ProductImageRemoved{}).EventType() {
		return nil
	}
	d, err := catalog.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return err
	}
	removed := d.(catalog.ProductImageRemoved)
	if err := r.Store.Destroy(ctx, removed.PublicID); err != nil {
		return fmt.Errorf("destroying image %d of product %d: %w", removed.ImageID, removed.ProductID, err)
	}
	return nil
}
