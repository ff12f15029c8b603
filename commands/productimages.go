package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/domain/catalog"
	"github.com/techvault/techvault/images"
)

// ImageStore is what the product image commands need of Cloudinary (package images).
type ImageStore interface {
	// Upload stores sniffed image bytes under publicID. A failure matches domain.ErrUnavailable.
	Upload(ctx context.Context, publicID string, data []byte) (images.Uploaded, error)
	// Destroy removes an upload (a missing one is no error). A failure matches
	// domain.ErrUnavailable.
	Destroy(ctx context.Context, publicID string) error
}

// ProductImageIDs is the id kind of product images.
const ProductImageIDs = "product_image"

// ProductImages handles the commands of product images: the upload happens before the append,
// and an upload the log did not take is destroyed again.
type ProductImages struct {
	store  EventStore
	ids    IDAllocator
	load   loader
	images ImageStore
}

// NewProductImages returns the product image commands. images may be nil: uploads then answer
// domain.ErrUnavailable (removing and arranging still work).
func NewProductImages(store EventStore, ids IDAllocator, images ImageStore, opts ...Option) *ProductImages {
	rs := resilientStore{store}
	l := newLoader(rs, resilientSnapshots(store), opts)
	return &ProductImages{store: l.observe(rs), ids: resilientIDs{ids}, load: l, images: images}
}

// ProductImage is one image of a product after a command.
type ProductImage struct {
	catalog.Image
	Position int // 1 is the first
	Cover    bool
}

// ProductImagesResult is a product's images after a command (first to last), the image the
// command was about, and where its last event landed.
type ProductImagesResult struct {
	ProductID int64
	ImageID   int64
	Images    []ProductImage
	Position  int64
}

func (r ProductImagesResult) withPosition(pos int64) ProductImagesResult { r.Position = pos; return r }

func imagesResult(p *catalog.Product, imageID int64) ProductImagesResult {
	res := ProductImagesResult{ProductID: p.ID(), ImageID: imageID}
	for i, img := range p.Images() {
		res.Images = append(res.Images, ProductImage{Image: img, Position: i + 1, Cover: img.ID == p.CoverImageID()})
	}
	return res
}

// Image returns the image the command was about (false when it is no longer there: removed).
func (r ProductImagesResult) Image() (ProductImage, bool) {
	for _, img := range r.Images {
		if img.ID == r.ImageID {
			return img, true
		}
	}
	return ProductImage{}, false
}

// loadLiveProduct loads a product that must exist (a deleted one is not found).
func (h *ProductImages) loadLiveProduct(ctx context.Context, id int64) (*catalog.Product, error) {
	p, err := loadAggregate(ctx, h.load, productKind, id)
	if err != nil {
		return nil, err
	}
	if !p.Exists() {
		return nil, domain.NotFound("product %d not found", id)
	}
	return p, nil
}

// AddProductImage is the command to add an image to a product. Data has been judged by
// images.Sniff; Position is where it goes (1 is the first; 0 after the last); Cover makes it the
// cover (the first image is the cover anyway).
type AddProductImage struct {
	ProductID int64
	Data      []byte
	Position  int
	Cover     bool
}

// AddProductImage checks that the product has room, uploads the image under a freshly
// allocated id (products/<product>/<image>), then records it (re-decided on a version clash). If
// the append fails, the upload is destroyed again; when its outcome is unknown (a lost
// connection), the product is read back first, and the upload is kept if the image was recorded.
func (h *ProductImages) AddProductImage(ctx context.Context, md domain.Metadata, cmd AddProductImage) (ProductImagesResult, error) {
	if h.images == nil {
		return ProductImagesResult{}, &domain.Error{Kind: domain.ErrUnavailable, Message: "image uploads are not configured on this server"}
	}
	var (
		imageID  int64
		uploaded string
	)
	res, err := keyed(ctx, h.store, md, "AddProductImage", func(ctx context.Context) (ProductImagesResult, error) {
		// Refuse before uploading: an unknown product, no room, a bad position.
		p, err := h.loadLiveProduct(ctx, cmd.ProductID)
		if err != nil {
			return ProductImagesResult{}, err
		}
		if err := p.CanAddImage(cmd.Position); err != nil {
			return ProductImagesResult{}, err
		}
		if imageID, err = h.ids.NextID(ctx, ProductImageIDs); err != nil {
			return ProductImagesResult{}, err
		}
		up, err := h.images.Upload(ctx, fmt.Sprintf("products/%d/%d", cmd.ProductID, imageID), cmd.Data)
		if err != nil {
			return ProductImagesResult{}, err
		}
		uploaded = up.PublicID
		img := catalog.Image{ID: imageID, PublicID: up.PublicID, URL: up.URL, ThumbnailURL: up.ThumbnailURL,
			FullURL: up.FullURL, Format: up.Format, Width: up.Width, Height: up.Height, Bytes: int64(up.Bytes)}
		return retryOnConflict(ctx, func(ctx context.Context) (ProductImagesResult, error) {
			p, err := h.loadLiveProduct(ctx, cmd.ProductID)
			if err != nil {
				return ProductImagesResult{}, err
			}
			if err := p.AddImage(img, cmd.Position, cmd.Cover); err != nil {
				return ProductImagesResult{}, err
			}
			res := imagesResult(p, imageID)
			pos, err := appendChanges(ctx, h.store, md, res, productChange(p))
			if err != nil {
				return ProductImagesResult{}, err
			}
			return res.withPosition(pos), nil
		})
	}, ProductImagesResult.withPosition)
	// A concurrent duplicate under the same Idempotency-Key answers with its own image: this
	// run's upload is not in the log either.
	if uploaded != "" && (err != nil || res.ImageID != imageID) {
		h.discard(ctx, cmd.ProductID, imageID, uploaded, err)
	}
	return res, err
}

// discard destroys an upload the log did not take (best effort: a failure is logged, and the
// upload stays behind).
func (h *ProductImages) discard(ctx context.Context, productID, imageID int64, publicID string, cause error) {
	ctx = context.WithoutCancel(ctx) // the client may be gone; the upload must go all the same
	log := h.load.log.With("product_id", productID, "image_id", imageID, "public_id", publicID)
	if errors.Is(cause, domain.ErrUnavailable) {
		// The append may have committed before the connection was lost: read the product back.
		p, err := loadAggregate(ctx, h.load, productKind, productID)
		if err != nil {
			log.WarnContext(ctx, "upload kept: cannot tell whether its image was recorded", "err", err)
			return
		}
		if p.HasImage(imageID) {
			return
		}
	}
	if err := h.images.Destroy(ctx, publicID); err != nil {
		log.WarnContext(ctx, "destroying an upload the log did not take", "err", err)
	}
}

// ArrangeProductImage is the command to move an image (Position, 1 is the first) and/or make it
// the cover (Cover must then be true).
type ArrangeProductImage struct {
	ProductID int64
	ImageID   int64
	Position  *int
	Cover     *bool
}

// ArrangeProductImage rearranges a product's images (re-decided on a version clash). An
// arrangement that changes nothing appends nothing.
func (h *ProductImages) ArrangeProductImage(ctx context.Context, md domain.Metadata, cmd ArrangeProductImage) (ProductImagesResult, error) {
	return execute(ctx, h.store, md, "ArrangeProductImage", redecideOnConflict, ProductImagesResult.withPosition,
		func(ctx context.Context) (ProductImagesResult, []Change, error) {
			p, err := h.loadLiveProduct(ctx, cmd.ProductID)
			if err != nil {
				return ProductImagesResult{}, nil, err
			}
			if err := p.ArrangeImage(cmd.ImageID, cmd.Position, cmd.Cover); err != nil {
				return ProductImagesResult{}, nil, err
			}
			return imagesResult(p, cmd.ImageID), []Change{productChange(p)}, nil
		})
}

// RemoveProductImage removes one of a product's images (re-decided on a version clash); the
// upload is destroyed after the fact (effects/catalogfx).
func (h *ProductImages) RemoveProductImage(ctx context.Context, md domain.Metadata, productID, imageID int64) (ProductImagesResult, error) {
	return execute(ctx, h.store, md, "RemoveProductImage", redecideOnConflict, ProductImagesResult.withPosition,
		func(ctx context.Context) (ProductImagesResult, []Change, error) {
			p, err := h.loadLiveProduct(ctx, productID)
			if err != nil {
				return ProductImagesResult{}, nil, err
			}
			if err := p.RemoveImage(imageID); err != nil {
				return ProductImagesResult{}, nil, err
			}
			return imagesResult(p, imageID), []Change{productChange(p)}, nil
		})
}
