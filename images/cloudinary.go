package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/cloudinary/cloudinary-go/v2/api"
	"github.com/cloudinary/cloudinary-go/v2/api/uploader"
	"github.com/cloudinary/cloudinary-go/v2/asset"
	"github.com/cloudinary/cloudinary-go/v2/config"
	"github.com/cloudinary/cloudinary-go/v2/logger"

	"github.com/techvault/techvault/domain"
)

// Store keeps images: what the application needs of Cloudinary.
type Store interface {
	// Upload stores data (already judged by Sniff) under publicID, replacing what was there.
	// A failure of the store matches domain.ErrUnavailable.
	Upload(ctx context.Context, publicID string, data []byte) (Uploaded, error)
	// Destroy removes the image with the public id Upload returned. Destroying a missing image
	// is no error. A failure of the store matches domain.ErrUnavailable.
	Destroy(ctx context.Context, publicID string) error
}

// Uploaded describes a stored image.
type Uploaded struct {
	PublicID string // the full public id (Folder included): the one Destroy takes
	URL      string // the https delivery URL; it names the version, so a replacement gets a new one
	Version  int64  // Cloudinary's version of the asset
	Bytes    int
	Format   string // Cloudinary's name: "jpg", "png", "webp"
	Width    int
	Height   int
	// ThumbnailURL and FullURL deliver the image through Cloudinary's transformations
	// ThumbnailTransformation and FullTransformation (built with cloudinary-go's asset URL
	// builder, offline).
	ThumbnailURL string
	FullURL      string
}

// The transformations of the delivered sizes: a square thumbnail cropped around the subject, and
// a full size that fits in 1600×1600 without enlarging; both in the best format and quality the
// browser takes (f_auto, q_auto).
const (
	ThumbnailTransformation = "c_fill,g_auto,h_400,w_400/f_auto,q_auto"
	FullTransformation      = "c_limit,h_1600,w_1600/f_auto,q_auto"
)

// DefaultUploadPrefix is Cloudinary's API base.
const DefaultUploadPrefix = "https://api.cloudinary.com"

// Config configures Cloudinary.
type Config struct {
	CloudName string
	APIKey    string
	APISecret string
	// UploadPrefix is the API base; DefaultUploadPrefix if empty. Tests point it at
	// cloudinarytest's server.
	UploadPrefix string
	// DeliveryURL is the scheme and host the transformation URLs are built on (a CNAME, or
	// cloudinarytest's server); empty: Cloudinary's own, https://res.cloudinary.com/<cloud>.
	DeliveryURL string
	// Folder, if set, prefixes every public id ("techvault/users"). It is joined here rather
	// than sent as Cloudinary's folder parameter, whose meaning depends on the account's folder
	// mode.
	Folder string
	// Timeout bounds each call; 30s if zero.
	Timeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.UploadPrefix == "" {
		c.UploadPrefix = DefaultUploadPrefix
	}
	c.UploadPrefix = strings.TrimRight(c.UploadPrefix, "/")
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	return c
}

// Validate reports a missing credential, a bad upload prefix or folder, or a negative timeout.
// Its messages never hold the secret.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.CloudName == "":
		return errors.New("cloudinary: cloud name is required")
	case c.APIKey == "":
		return errors.New("cloudinary: API key is required")
	case c.APISecret == "":
		return errors.New("cloudinary: API secret is required")
	case c.Timeout < 0:
		return errors.New("cloudinary: timeout must not be negative")
	}
	u, err := url.Parse(c.UploadPrefix)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("cloudinary: upload prefix %q must be an http(s) URL", c.UploadPrefix)
	}
	if c.Folder != "" {
		if err := checkPublicID(c.Folder); err != nil {
			return fmt.Errorf("cloudinary: folder: %w", err)
		}
	}
	if c.DeliveryURL != "" {
		d, err := url.Parse(c.DeliveryURL)
		if err != nil || (d.Scheme != "http" && d.Scheme != "https") || d.Host == "" || strings.Trim(d.Path, "/") != "" ||
			d.RawQuery != "" || d.User != nil {
			return fmt.Errorf("cloudinary: delivery URL %q must be an http(s) scheme and host only", c.DeliveryURL)
		}
	}
	return nil
}

// LogValue masks the secret and the key when the config is logged.
func (c Config) LogValue() slog.Value {
	c = c.withDefaults()
	return slog.GroupValue(
		slog.String("cloud_name", c.CloudName),
		slog.String("api_key", mask(c.APIKey)),
		slog.String("api_secret", mask(c.APISecret)),
		slog.String("upload_prefix", c.UploadPrefix),
		slog.String("folder", c.Folder),
		slog.String("delivery_url", c.DeliveryURL),
		slog.Duration("timeout", c.Timeout),
	)
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return "***"
}

// Cloudinary is a Store over Cloudinary's upload API (cloudinary-go).
type Cloudinary struct {
	cfg    Config
	upload *uploader.API
	// delivery is the configuration the asset URL builder reads (cloud name, host).
	delivery config.Configuration
}

var _ Store = (*Cloudinary)(nil)

// NewCloudinary validates cfg and returns a store. It makes no call.
func NewCloudinary(cfg Config) (*Cloudinary, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cc, err := config.NewFromParams(cfg.CloudName, cfg.APIKey, cfg.APISecret)
	if err != nil {
		return nil, fmt.Errorf("cloudinary: %w", err)
	}
	// cloudinary-go copies its configuration into each of its APIs when they are built: the
	// prefix must be in it before (setting it on a built client's Config has no effect).
	cc.API.UploadPrefix = cfg.UploadPrefix
	up, err := uploader.NewWithConfiguration(cc)
	if err != nil {
		return nil, fmt.Errorf("cloudinary: %w", err)
	}
	// Failures come back as errors; the library's own log lines (stdlib log) are not wanted.
	up.Logger.SetLevel(logger.NONE)
	delivery := *cc
	delivery.URL.Analytics = false // no SDK analytics query on the URLs we hand out
	if cfg.DeliveryURL != "" {
		d, _ := url.Parse(cfg.DeliveryURL) // checked by Validate
		delivery.URL.Secure = d.Scheme == "https"
		delivery.URL.SecureCName, delivery.URL.CName = d.Host, d.Host
	}
	return &Cloudinary{cfg: cfg, upload: up, delivery: delivery}, nil
}

// variant is the delivery URL of an uploaded image through a transformation, built with
// cloudinary-go's asset URL builder: <host>/<cloud>/image/upload/<transformation>/v<version>/<public id>.<format>.
func (c *Cloudinary) variant(publicID string, version int64, format, transformation string) (string, error) {
	a, err := asset.Image(publicID+"."+format, &c.delivery)
	if err != nil {
		return "", err
	}
	a.Version = int(version)
	a.Transformation = transformation
	return a.String()
}

// PublicID is the full public id Upload stores name under: Folder/name.
func (c *Cloudinary) PublicID(name string) string {
	if c.cfg.Folder == "" {
		return name
	}
	return c.cfg.Folder + "/" + name
}

// Upload stores data under PublicID(publicID), replacing an earlier image of that id and
// invalidating CDN copies of it. Data should have passed Sniff; Cloudinary is also told to accept
// JPEG, PNG and WebP only. A refusal or failure of Cloudinary matches domain.ErrUnavailable: the
// client's input was judged before, so what fails here is not its fault.
func (c *Cloudinary) Upload(ctx context.Context, publicID string, data []byte) (Uploaded, error) {
	if err := checkPublicID(publicID); err != nil {
		return Uploaded{}, fmt.Errorf("cloudinary upload: %w", err)
	}
	id := c.PublicID(publicID)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := c.upload.Upload(ctx, bytes.NewReader(data), uploader.UploadParams{
		PublicID:       id,
		Overwrite:      api.Bool(true),
		Invalidate:     api.Bool(true),
		AllowedFormats: api.CldAPIArray{"jpg", "png", "webp"},
	})
	switch {
	case err != nil:
		return Uploaded{}, unavailable("upload", id, err.Error())
	case res.Error.Message != "":
		return Uploaded{}, unavailable("upload", id, res.Error.Message)
	case res.PublicID == "" || res.SecureURL == "" || res.Format == "":
		return Uploaded{}, unavailable("upload", id, "the answer names no public id, URL or format")
	case res.Width <= 0 || res.Height <= 0 || res.Bytes <= 0:
		// Stored, by the answer, but not as an image the catalog can show: not kept.
		_ = c.Destroy(context.WithoutCancel(ctx), res.PublicID)
		return Uploaded{}, unavailable("upload", id, fmt.Sprintf("the answer gives the image %d×%d pixels, %d bytes", res.Width, res.Height, res.Bytes))
	}
	up := Uploaded{PublicID: res.PublicID, URL: res.SecureURL, Version: int64(res.Version), Bytes: res.Bytes,
		Format: res.Format, Width: res.Width, Height: res.Height}
	var terr, ferr error
	up.ThumbnailURL, terr = c.variant(up.PublicID, up.Version, up.Format, ThumbnailTransformation)
	up.FullURL, ferr = c.variant(up.PublicID, up.Version, up.Format, FullTransformation)
	if err := errors.Join(terr, ferr); err != nil {
		return Uploaded{}, fmt.Errorf("cloudinary: building the delivery URLs of %s: %w", up.PublicID, err)
	}
	return up, nil
}

// Destroy removes the image publicID (a full id, as Upload returned it) and invalidates CDN copies
// of it. An image that is not there is no error: destroying is idempotent, so a side effect may
// repeat it. A failure of Cloudinary matches domain.ErrUnavailable.
func (c *Cloudinary) Destroy(ctx context.Context, publicID string) error {
	if err := checkPublicID(publicID); err != nil {
		return fmt.Errorf("cloudinary destroy: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := c.upload.Destroy(ctx, uploader.DestroyParams{
		PublicID:     publicID,
		ResourceType: string(api.Image),
		Invalidate:   api.Bool(true),
	})
	switch {
	case err != nil:
		return unavailable("destroy", publicID, err.Error())
	case res.Error.Message != "":
		return unavailable("destroy", publicID, res.Error.Message)
	case res.Result == "ok", res.Result == "not found":
		return nil
	}
	return unavailable("destroy", publicID, fmt.Sprintf("unexpected result %q", res.Result))
}

func unavailable(op, publicID, msg string) error {
	return fmt.Errorf("cloudinary %s %s: %s: %w", op, publicID, msg, domain.ErrUnavailable)
}

// checkPublicID refuses ids Cloudinary would mangle or refuse: empty, slashes at an end, empty
// segments, and characters it reserves.
func checkPublicID(id string) error {
	switch {
	case id == "":
		return errors.New("public id is empty")
	case len(id) > 255:
		return errors.New("public id is longer than 255 bytes")
	case strings.HasPrefix(id, "/") || strings.HasSuffix(id, "/") || strings.Contains(id, "//"):
		return fmt.Errorf("public id %q has an empty segment", id)
	case strings.ContainsAny(id, `?&#\%<>+ `):
		return fmt.Errorf("public id %q holds a reserved character", id)
	}
	for _, seg := range strings.Split(id, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("public id %q has a %q segment", id, seg)
		}
	}
	return nil
}
