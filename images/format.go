package images

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"

	"golang.org/x/image/webp"

	"github.com/techvault/techvault/domain"
)

// Format is an accepted image format, judged by content.
type Format string

// The accepted formats.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	WebP Format = "webp"
)

// MaxPixels bounds an image's width × height (about 4096 × 4096). Sniff decodes the whole image,
// and a few KB of PNG can declare a picture that takes gigabytes to decode.
const MaxPixels = 1 << 24

// ContentType is the format's MIME type.
func (f Format) ContentType() string {
	switch f {
	case JPEG, PNG, WebP:
		return "image/" + string(f)
	}
	return "application/octet-stream"
}

// Ext is the format's file name extension, with its dot: ".jpg", ".png", ".webp".
func (f Format) Ext() string {
	switch f {
	case JPEG:
		return ".jpg"
	case PNG, WebP:
		return "." + string(f)
	}
	return ""
}

type codec struct {
	format Format
	name   string // for messages
	match  func([]byte) bool
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var codecs = []codec{
	{JPEG, "JPEG", isJPEG, jpeg.DecodeConfig, jpeg.Decode},
	{PNG, "PNG", isPNG, png.DecodeConfig, png.Decode},
	{WebP, "WebP", isWebP, webp.DecodeConfig, webp.Decode},
}

// The signatures: JPEG's SOI marker and the first marker's FF, PNG's eight bytes, and WebP's
// RIFF container of form type WEBP.
func isJPEG(b []byte) bool { return bytes.HasPrefix(b, []byte("\xff\xd8\xff")) }
func isPNG(b []byte) bool  { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }
func isWebP(b []byte) bool {
	return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
}

// Sniff tells an image's format by its content, never by a name: JPEG, PNG or WebP, by their
// signatures, and then decoded whole, so a file with the right first bytes and garbage after
// them, or one cut short, is refused. Every refusal is a domain.Invalid error on Field.
func Sniff(data []byte) (Format, error) {
	if len(data) == 0 {
		return "", domain.Invalid(Field, "image is empty; a JPEG, PNG or WebP image is required")
	}
	for _, c := range codecs {
		if !c.match(data) {
			continue
		}
		cfg, err := c.config(bytes.NewReader(data))
		if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
			return "", damaged(c.name)
		}
		if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
			return "", domain.Invalid(Field, "image is %d×%d pixels; at most %d megapixels are accepted",
				cfg.Width, cfg.Height, MaxPixels/1_000_000)
		}
		if _, err := c.decode(bytes.NewReader(data)); err != nil {
			return "", damaged(c.name)
		}
		return c.format, nil
	}
	detected, _, _ := mime.ParseMediaType(http.DetectContentType(data))
	return "", domain.Invalid(Field, "image must be a JPEG, PNG or WebP image; its content is %s", detected)
}

func damaged(name string) error {
	return domain.Invalid(Field, "image is not a readable %s image (damaged or cut short)", name)
}
