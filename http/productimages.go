package http

import (
	"fmt"
	nethttp "net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/queries"
)

// productImageView is one image of a product, in product reads and image command answers.
type productImageView struct {
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

// productImagesResponse answers an image command: the product's images after it, first to last,
// the image it was about (absent once removed), and the position of its last event.
type productImagesResponse struct {
	ProductID int64              `json:"product_id"`
	ImageID   int64              `json:"image_id"`
	Image     *productImageView  `json:"image,omitempty"`
	Deleted   bool               `json:"deleted,omitempty"`
	Images    []productImageView `json:"images"`
	Position  int64              `json:"position"`
}

type arrangeImageRequest struct {
	Position *int  `json:"position"`
	Cover    *bool `json:"cover"`
}

func toProductImageView(i queries.ProductImageView) productImageView {
	return productImageView{ID: i.ID, URL: i.URL, ThumbnailURL: i.ThumbnailURL, FullURL: i.FullURL, Format: i.Format,
		Width: i.Width, Height: i.Height, Bytes: i.Bytes, Position: i.Position, Cover: i.Cover}
}

func fromProductImage(i commands.ProductImage) productImageView {
	return productImageView{ID: i.ID, URL: i.URL, ThumbnailURL: i.ThumbnailURL, FullURL: i.FullURL, Format: i.Format,
		Width: i.Width, Height: i.Height, Bytes: i.Bytes, Position: i.Position, Cover: i.Cover}
}

func toProductImagesResponse(r commands.ProductImagesResult) productImagesResponse {
	out := productImagesResponse{ProductID: r.ProductID, ImageID: r.ImageID, Images: make([]productImageView, len(r.Images)),
		Position: r.Position}
	for i, img := range r.Images {
		out.Images[i] = fromProductImage(img)
	}
	if img, ok := r.Image(); ok {
		v := fromProductImage(img)
		out.Image = &v
	} else {
		out.Deleted = true
	}
	return out
}

func (s *Server) productImageRoutes(admin *gin.RouterGroup) {
	admin.POST("/products/:id/images", idempotentUpload(images.MaxProductBytes), s.addProductImage)
	admin.PATCH("/products/:id/images/:image_id", idempotent, s.arrangeProductImage)
	admin.DELETE("/products/:id/images/:image_id", bodiless, s.removeProductImage)
}

// addProductImage takes a multipart form: the file field image (JPEG, PNG or WebP by content, at
// most 5 MB) and the optional fields position (1 is the first; default: after the last) and
// cover (true or false).
func (s *Server) addProductImage(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	form, err := readImageForm(c, images.MaxProductBytes, []string{"position", "cover"})
	if err != nil {
		writeError(c, err)
		return
	}
	cmd := commands.AddProductImage{ProductID: id, Data: form.data}
	if v, ok := form.fields["position"]; ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			writeError(c, badRequest("position", "position must be a whole number"))
			return
		case n < 1:
			writeError(c, domain.Invalid("position", "position must be at least 1 (the first image)"))
			return
		}
		cmd.Position = n
	}
	if v, ok := form.fields["cover"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(c, badRequest("cover", "cover must be true or false"))
			return
		}
		cmd.Cover = b
	}
	res, err := s.cfg.ProductImages.AddProductImage(c, metadata(c), cmd)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Location", fmt.Sprintf("/api/v1/products/%d", id))
	c.JSON(nethttp.StatusCreated, toProductImagesResponse(res))
}

// arrangeProductImage moves an image ({"position": n}) and/or makes it the cover
// ({"cover": true}).
func (s *Server) arrangeProductImage(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	imageID, err := pathID(c, "image_id")
	if err != nil {
		writeError(c, err)
		return
	}
	var req arrangeImageRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.ProductImages.ArrangeProductImage(c, metadata(c), commands.ArrangeProductImage{
		ProductID: id, ImageID: imageID, Position: req.Position, Cover: req.Cover})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toProductImagesResponse(res))
}

func (s *Server) removeProductImage(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		writeError(c, err)
		return
	}
	imageID, err := pathID(c, "image_id")
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.ProductImages.RemoveProductImage(c, metadata(c), id, imageID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, toProductImagesResponse(res))
}
