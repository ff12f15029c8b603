package queries

import (
	"encoding/json"
	"fmt"
)

// ProductImageView is one image of a product as queries read it: where it is delivered (the stored
// image, and Cloudinary transformation URLs of a thumbnail and a full size), its place and
// whether it is the cover.
type ProductImageView struct {
	ID           int64  `json:"id"`
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnail_url"`
	FullURL      string `json:"full_url"`
	Format       string `json:"format"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Bytes        int64  `json:"bytes"`
	Position     int    `json:"position"`
	Cover        bool   `json:"cover"`
}

// productImagesColumn reads a product's images (product_image, written by the products
// projector in the same transaction as products) as one JSON array, first to last: ProductColumns
// ends with it. It names products.id, so the products table is read unaliased.
const productImagesColumn = `(SELECT json_agg(json_build_object('id', i.id, 'url', i.url, 'thumbnail_url', i.thumbnail_url,
		'full_url', i.full_url, 'format', i.format, 'width', i.width, 'height', i.height, 'bytes', i.bytes,
		'position', i.position, 'cover', i.cover) ORDER BY i.position, i.id)
	FROM product_image i WHERE i.product_id = products.id) AS images`

// scanImages decodes productImagesColumn (NULL when the product has no image).
func scanImages(b []byte) ([]ProductImageView, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []ProductImageView
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decoding product images: %w", err)
	}
	return out, nil
}

// Cover returns the product's cover image (false when it has no image).
func (p ProductView) Cover() (ProductImageView, bool) {
	for _, img := range p.Images {
		if img.Cover {
			return img, true
		}
	}
	return ProductImageView{}, false
}
