package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/techvault/techvault/domain"
)

// MaxImages bounds the images of one product.
const MaxImages = 8

// Limits of what an image event holds (the read table's columns).
const (
	maxImageURL   = 255  // url and public_id
	maxVariantURL = 2000 // thumbnail_url and full_url
)

// ImageFormats are the stored formats a product image may have (Cloudinary's names).
var ImageFormats = []string{"jpg", "png", "webp"}

// Image is one stored image of a product: where Cloudinary keeps it and what it is.
type Image struct {
	ID           int64  `json:"image_id"`
	PublicID     string `json:"public_id"`
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnail_url"`
	FullURL      string `json:"full_url"`
	Format       string `json:"format"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Bytes        int64  `json:"bytes"`
}

// ProductImageAdded.v1: an uploaded image became one of the product's images. Order lists every
// image of the product after the addition, first to last; CoverImageID is the product's cover
// (the first image added becomes the cover). The event carries the whole arrangement, so a
// reader needs no earlier state to place the images.
type ProductImageAdded struct {
	ProductID int64 `json:"product_id"`
	Image
	Order        []int64 `json:"order"`
	CoverImageID int64   `json:"cover_image_id"`
}

// ProductImageRemoved.v1: an image is no longer one of the product's; its upload (PublicID) is
// destroyed after the fact. Recorded for each image, before ProductDeleted, when the product is
// deleted. Order and CoverImageID are the arrangement after the removal (CoverImageID 0 when no
// image is left; when the cover was removed, the first image left is the cover).
type ProductImageRemoved struct {
	ProductID    int64   `json:"product_id"`
	ImageID      int64   `json:"image_id"`
	PublicID     string  `json:"public_id"`
	Order        []int64 `json:"order"`
	CoverImageID int64   `json:"cover_image_id"`
}

// ProductImagesArranged.v1: the product's images are now in Order, and CoverImageID is its cover.
type ProductImagesArranged struct {
	ProductID    int64   `json:"product_id"`
	Order        []int64 `json:"order"`
	CoverImageID int64   `json:"cover_image_id"`
}

func (ProductImageAdded) EventType() string      { return "ProductImageAdded" }
func (ProductImageRemoved) EventType() string    { return "ProductImageRemoved" }
func (ProductImagesArranged) EventType() string  { return "ProductImagesArranged" }
func (ProductImageAdded) SchemaVersion() int     { return 1 }
func (ProductImageRemoved) SchemaVersion() int   { return 1 }
func (ProductImagesArranged) SchemaVersion() int { return 1 }

// Images returns the product's images, first to last.
func (p *Product) Images() []Image { return slices.Clone(p.images) }

// CoverImageID is the id of the product's cover image (0 when it has none).
func (p *Product) CoverImageID() int64 { return p.cover }

// HasImage reports whether the product has the image.
func (p *Product) HasImage(imageID int64) bool { return p.imageIndex(imageID) >= 0 }

func (p *Product) imageIndex(imageID int64) int {
	return slices.IndexFunc(p.images, func(i Image) bool { return i.ID == imageID })
}

func (p *Product) imageOrder() []int64 {
	order := make([]int64, len(p.images))
	for i, img := range p.images {
		order[i] = img.ID
	}
	return order
}

// CanAddImage checks, before anything is uploaded, that an image may be added at position
// (1-based; 0 is after the last): the product exists and has room.
func (p *Product) CanAddImage(position int) error {
	if err := p.mustExist(); err != nil {
		return err
	}
	if len(p.images) >= MaxImages {
		return &domain.Error{Kind: domain.ErrConflict, Field: "image",
			Message: fmt.Sprintf("a product has at most %d images; remove one first", MaxImages)}
	}
	if position < 0 || position > len(p.images)+1 {
		return domain.Invalid("position", "position must be from 1 to %d", len(p.images)+1)
	}
	return nil
}

// AddImage adds a stored image at position (1-based; 0 is after the last). The first image
// becomes the cover; cover makes this one the cover.
func (p *Product) AddImage(img Image, position int, cover bool) error {
	if err := p.CanAddImage(position); err != nil {
		return err
	}
	if err := checkImage(img); err != nil {
		return err
	}
	if p.HasImage(img.ID) {
		return domain.Conflict("product %d already has image %d", p.id, img.ID)
	}
	order := p.imageOrder()
	if position == 0 {
		position = len(order) + 1
	}
	order = slices.Insert(order, position-1, img.ID)
	coverID := p.cover
	if cover || coverID == 0 {
		coverID = img.ID
	}
	p.record(ProductImageAdded{ProductID: p.id, Image: img, Order: order, CoverImageID: coverID})
	return nil
}

// checkImage checks what the image store answered: not the client's input, so a failure is an
// internal error, never the client's ErrInvalid.
func checkImage(img Image) error {
	switch {
	case img.ID <= 0:
		return fmt.Errorf("catalog: image id %d", img.ID)
	case img.PublicID == "" || len(img.PublicID) > maxImageURL:
		return fmt.Errorf("catalog: image public id %q is empty or longer than %d bytes", img.PublicID, maxImageURL)
	case !webURL(img.URL, maxImageURL):
		return fmt.Errorf("catalog: image URL %q is not an http(s) URL of at most %d bytes", img.URL, maxImageURL)
	case !webURL(img.ThumbnailURL, maxVariantURL) || !webURL(img.FullURL, maxVariantURL):
		return fmt.Errorf("catalog: image transformation URLs %q, %q are not http(s) URLs of at most %d bytes",
			img.ThumbnailURL, img.FullURL, maxVariantURL)
	case !slices.Contains(ImageFormats, img.Format):
		return fmt.Errorf("catalog: image format %q is not one of %v", img.Format, ImageFormats)
	case img.Width <= 0 || img.Height <= 0 || img.Bytes <= 0:
		return fmt.Errorf("catalog: image of %d×%d pixels, %d bytes", img.Width, img.Height, img.Bytes)
	}
	return nil
}

func webURL(s string, limit int) bool {
	return len(s) <= limit && (strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")) &&
		!strings.ContainsAny(s, " \t\r\n")
}

// RemoveImage removes one of the product's images; when it was the cover, the first image left
// becomes the cover.
func (p *Product) RemoveImage(imageID int64) error {
	if err := p.mustExist(); err != nil {
		return err
	}
	i := p.imageIndex(imageID)
	if i < 0 {
		return &domain.Error{Kind: domain.ErrNotFound, Field: "image_id",
			Message: fmt.Sprintf("product %d has no image %d", p.id, imageID)}
	}
	p.removeImageAt(i)
	return nil
}

func (p *Product) removeImageAt(i int) {
	img := p.images[i]
	order := slices.Delete(p.imageOrder(), i, i+1)
	coverID := p.cover
	if coverID == img.ID {
		coverID = 0
		if len(order) > 0 {
			coverID = order[0]
		}
	}
	p.record(ProductImageRemoved{ProductID: p.id, ImageID: img.ID, PublicID: img.PublicID, Order: order, CoverImageID: coverID})
}

// ArrangeImage moves an image to position (1-based; nil leaves it) and, with cover true, makes
// it the cover. A product always has a cover while it has images: cover false is refused
// (choose another image as the cover instead). An arrangement that changes nothing records
// nothing.
func (p *Product) ArrangeImage(imageID int64, position *int, cover *bool) error {
	if err := p.mustExist(); err != nil {
		return err
	}
	i := p.imageIndex(imageID)
	if i < 0 {
		return &domain.Error{Kind: domain.ErrNotFound, Field: "image_id",
			Message: fmt.Sprintf("product %d has no image %d", p.id, imageID)}
	}
	if position == nil && cover == nil {
		return domain.Invalid("", "nothing to change: give position and/or cover")
	}
	if cover != nil && !*cover {
		return domain.Invalid("cover", "a product keeps one cover image: make another image the cover instead")
	}
	order := p.imageOrder()
	if position != nil {
		if *position < 1 || *position > len(order) {
			return domain.Invalid("position", "position must be from 1 to %d", len(order))
		}
		order = slices.Insert(slices.Delete(order, i, i+1), *position-1, imageID)
	}
	coverID := p.cover
	if cover != nil {
		coverID = imageID
	}
	if coverID == p.cover && slices.Equal(order, p.imageOrder()) {
		return nil
	}
	p.record(ProductImagesArranged{ProductID: p.id, Order: order, CoverImageID: coverID})
	return nil
}

// arrange puts the product's images in order (known images, plus added when given) and sets
// the cover.
func (p *Product) arrange(order []int64, coverID int64, added *Image) {
	byID := make(map[int64]Image, len(p.images)+1)
	for _, img := range p.images {
		byID[img.ID] = img
	}
	if added != nil {
		byID[added.ID] = *added
	}
	images := make([]Image, 0, len(order))
	for _, id := range order {
		if img, ok := byID[id]; ok {
			images = append(images, img)
		}
	}
	p.images, p.cover = images, coverID
}
