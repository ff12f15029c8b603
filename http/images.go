package http

import (
	"errors"
	"fmt"
	"mime/multipart"
	nethttp "net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/images"
)

type imageResponse struct {
	URL      string `json:"url"`
	UserID   int64  `json:"user_id"`
	Position int64  `json:"position"`
}

func (s *Server) imageRoutes(g *gin.RouterGroup) {
	g.PUT("/users/me/image", idempotent, s.putMyImage)
	g.DELETE("/users/me/image", idempotent, s.deleteMyImage)
}

// multipartOverhead is what a multipart body may carry besides the image (boundaries, headers).
const multipartOverhead = 64 << 10

// readImagePart reads the multipart field "image" of at most images.MaxBytes, judged by its
// content. The body is cut off past the limit, so a 50 MB upload is refused after ~2 MB read.
func readImagePart(c *gin.Context) ([]byte, images.Format, error) {
	ct := c.GetHeader("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "multipart/form-data") {
		return nil, "", &domain.Error{Kind: errUnsupportedMedia, Field: images.Field,
			Message: "send the image as multipart/form-data in a field named image"}
	}
	if c.Request.ContentLength > images.MaxBytes+multipartOverhead {
		return nil, "", &domain.Error{Kind: errTooLarge, Field: images.Field,
			Message: fmt.Sprintf("image must be at most %d MB", images.MaxBytes>>20)}
	}
	c.Request.Body = nethttp.MaxBytesReader(c.Writer, c.Request.Body, images.MaxBytes+multipartOverhead)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return nil, "", badRequest(images.Field, "the body is not a valid multipart form")
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			var tooBig *nethttp.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, "", &domain.Error{Kind: errTooLarge, Field: images.Field,
					Message: fmt.Sprintf("image must be at most %d MB", images.MaxBytes>>20)}
			}
			return nil, "", badRequest(images.Field, "the form has no field named image")
		}
		if part.FormName() != images.Field {
			_ = part.Close()
			continue
		}
		return acceptPart(part)
	}
}

func acceptPart(part *multipart.Part) ([]byte, images.Format, error) {
	defer func() { _ = part.Close() }()
	data, f, err := images.Accept(part)
	if errors.Is(err, images.ErrTooLarge) {
		return nil, "", &domain.Error{Kind: errTooLarge, Field: images.Field,
			Message: fmt.Sprintf("image must be at most %d MB", images.MaxBytes>>20)}
	}
	var tooBig *nethttp.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, "", &domain.Error{Kind: errTooLarge, Field: images.Field,
			Message: fmt.Sprintf("image must be at most %d MB", images.MaxBytes>>20)}
	}
	return data, f, err
}

func (s *Server) putMyImage(c *gin.Context) {
	if s.cfg.Images == nil {
		writeError(c, &domain.Error{Kind: domain.ErrUnavailable, Message: "image uploads are not configured on this server"})
		return
	}
	data, _, err := readImagePart(c)
	if err != nil {
		writeError(c, err)
		return
	}
	uid := me(c).UserID
	// A fresh public id per upload: the old picture stays until the new one is recorded, and is
	// destroyed after the fact.
	up, err := s.cfg.Images.Upload(c, fmt.Sprintf("users/%d/%s", uid, uuid.Must(uuid.NewV7())), data)
	if err != nil {
		writeError(c, err)
		return
	}
	res, err := s.cfg.Users.SetImage(c, metadata(c), commands.SetImage{UserID: uid, PublicID: up.PublicID, URL: up.URL})
	if err != nil {
		// The upload is not the account's picture: remove it again (best effort).
		if derr := s.cfg.Images.Destroy(c, up.PublicID); derr != nil {
			logger(c).WarnContext(c, "destroying an unused upload", "public_id", up.PublicID, "err", derr)
		}
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, imageResponse{URL: up.URL, UserID: uid, Position: res.Position})
}

func (s *Server) deleteMyImage(c *gin.Context) {
	res, err := s.cfg.Users.RemoveImage(c, metadata(c), me(c).UserID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, accountResponse{UserID: res.UserID, Position: res.Position})
}
