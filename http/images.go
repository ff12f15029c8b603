package http

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	nethttp "net/http"
	"slices"
	"strings"
	"unicode/utf8"

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
	g.PUT("/users/me/image", idempotentUpload(images.MaxBytes), s.putMyImage)
	g.DELETE("/users/me/image", bodiless, s.deleteMyImage)
}

// multipartOverhead is what a multipart body may carry besides the image (boundaries, headers,
// small fields).
const multipartOverhead = 64 << 10

// maxFormField bounds a text field of an image form.
const maxFormField = 64

// imageForm is a multipart image upload: the image, judged by its content, and the form's text
// fields.
type imageForm struct {
	data   []byte
	format images.Format
	fields map[string]string
}

func imageTooLarge(limit int64) error {
	return &domain.Error{Kind: errTooLarge, Field: images.Field, Message: images.TooLargeMessage(limit)}
}

// readImagePart reads the multipart field "image" of at most images.MaxBytes (a picture),
// judged by its content; other fields are skipped.
func readImagePart(c *gin.Context) ([]byte, images.Format, error) {
	f, err := readImageForm(c, images.MaxBytes, nil)
	return f.data, f.format, err
}

// readImageForm reads a multipart/form-data body holding the file field "image" of at most limit
// bytes, judged by its content (never its name or Content-Type). The body is cut off past the
// limit, so a 50 MB upload is refused after about limit bytes read. With known nil, the form is
// read up to the image and other fields are skipped; otherwise the whole form is read, the known
// text fields (at most once each, maxFormField bytes) are returned, and any other field, a
// second image or a missing one is 400.
func readImageForm(c *gin.Context, limit int64, known []string) (imageForm, error) {
	var form imageForm
	ct := c.GetHeader("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "multipart/form-data") {
		return form, &domain.Error{Kind: errUnsupportedMedia, Field: images.Field,
			Message: "send the image as multipart/form-data in a field named image"}
	}
	if c.Request.ContentLength > limit+multipartOverhead {
		return form, imageTooLarge(limit)
	}
	c.Request.Body = nethttp.MaxBytesReader(c.Writer, c.Request.Body, limit+multipartOverhead)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return form, badRequest(images.Field, "the body is not a valid multipart form")
	}
	seen := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) && known != nil {
			if !seen {
				return form, badRequest(images.Field, "the form has no field named image")
			}
			return form, nil
		}
		if err != nil {
			var tooBig *nethttp.MaxBytesError
			if errors.As(err, &tooBig) {
				return form, imageTooLarge(limit)
			}
			if known != nil {
				return form, badRequest(images.Field, "the body is not a valid multipart form")
			}
			return form, badRequest(images.Field, "the form has no field named image")
		}
		name := part.FormName()
		switch {
		case name == images.Field && seen:
			_ = part.Close()
			return form, badRequest(images.Field, "the form has more than one field named image")
		case name == images.Field:
			seen = true
			if form.data, form.format, err = acceptPart(part, limit); err != nil || known == nil {
				return form, err
			}
		case known == nil:
			_ = part.Close()
		case slices.Contains(known, name) && form.fields[name] == "":
			v, err := io.ReadAll(io.LimitReader(part, maxFormField+1))
			_ = part.Close()
			if err != nil || len(v) == 0 || len(v) > maxFormField || !utf8.Valid(v) {
				return form, badRequest(name, fmt.Sprintf("%s must be a short text value", name))
			}
			if form.fields == nil {
				form.fields = map[string]string{}
			}
			form.fields[name] = string(v)
		case slices.Contains(known, name):
			_ = part.Close()
			return form, badRequest(name, fmt.Sprintf("the form has more than one field named %s", name))
		default:
			_ = part.Close()
			return form, badRequest(name, fmt.Sprintf("unknown field %q: the form takes %s and %s",
				name, images.Field, strings.Join(known, ", ")))
		}
	}
}

func acceptPart(part *multipart.Part, limit int64) ([]byte, images.Format, error) {
	defer func() { _ = part.Close() }()
	data, f, err := images.AcceptUpTo(part, limit)
	var tooBig *nethttp.MaxBytesError
	if errors.Is(err, images.ErrTooLarge) || errors.As(err, &tooBig) {
		return nil, "", imageTooLarge(limit)
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
