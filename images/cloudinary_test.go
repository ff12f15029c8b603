package images_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/internal/cloudinarytest"
)

const (
	cloud  = "techvault-test"
	key    = "123456789012345"
	secret = "s3cr3t-Do-Not-Leak"
)

func newStore(t *testing.T, srv *cloudinarytest.Server, edit func(*images.Config)) *images.Cloudinary {
	t.Helper()
	cfg := images.Config{CloudName: cloud, APIKey: key, APISecret: secret, UploadPrefix: srv.URL(), Folder: "tv/users"}
	if edit != nil {
		edit(&cfg)
	}
	store, err := images.NewCloudinary(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return body
}

func TestCloudinaryRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := cloudinarytest.New(t, cloud, key, secret)
	store := newStore(t, srv, nil)
	first, second := pngBytes(t), jpegBytes(t)

	up, err := store.Upload(ctx, "u1/avatar", first)
	if err != nil {
		t.Fatal(err)
	}
	const id = "tv/users/u1/avatar"
	if up.PublicID != id || up.Format != "png" || up.Bytes != len(first) || !strings.HasPrefix(up.URL, srv.URL()+"/"+cloud+"/image/upload/v") {
		t.Fatalf("Upload = %+v", up)
	}
	if got := fetch(t, up.URL); !bytes.Equal(got, first) {
		t.Fatal("the delivery URL serves other bytes")
	}

	// A new image under the same id replaces the old one, at a new URL.
	up2, err := store.Upload(ctx, "u1/avatar", second)
	if err != nil {
		t.Fatal(err)
	}
	if up2.PublicID != id || up2.Format != "jpg" || up2.URL == up.URL {
		t.Fatalf("replacing Upload = %+v (first %+v)", up2, up)
	}
	if assets := srv.Assets(); len(assets) != 1 || !bytes.Equal(assets[id], second) {
		t.Fatalf("assets after replace: %d, want the second image only", len(assets))
	}

	if err := store.Destroy(ctx, up2.PublicID); err != nil {
		t.Fatal(err)
	}
	if len(srv.Assets()) != 0 || !slices.Equal(srv.Destroyed(), []string{id}) {
		t.Fatalf("after Destroy: assets %d, destroyed %v", len(srv.Assets()), srv.Destroyed())
	}
	// Destroy is idempotent: a side effect may run it twice.
	if err := store.Destroy(ctx, up2.PublicID); err != nil {
		t.Fatalf("second Destroy = %v, want nil", err)
	}
	if err := store.Destroy(ctx, "tv/users/never-uploaded"); err != nil {
		t.Fatalf("Destroy of a missing id = %v, want nil", err)
	}
}

func TestCloudinaryWithoutFolder(t *testing.T) {
	srv := cloudinarytest.New(t, cloud, key, secret)
	store := newStore(t, srv, func(c *images.Config) { c.Folder = "" })
	up, err := store.Upload(context.Background(), "p1", webpLossless)
	if err != nil {
		t.Fatal(err)
	}
	if up.PublicID != "p1" || up.Format != "webp" || store.PublicID("p1") != "p1" {
		t.Fatalf("Upload = %+v", up)
	}
}

// The transformation URLs are built offline with cloudinary-go's asset URL builder: on
// Cloudinary's host by default, on the configured delivery host otherwise (where the stand-in
// serves them).
func TestCloudinaryTransformationURLs(t *testing.T) {
	ctx := context.Background()
	srv := cloudinarytest.New(t, cloud, key, secret)
	data := pngBytes(t)

	up, err := newStore(t, srv, nil).Upload(ctx, "p/7/12", data)
	if err != nil {
		t.Fatal(err)
	}
	base := "https://res.cloudinary.com/" + cloud + "/image/upload/"
	tail := "/v" + strconv.FormatInt(up.Version, 10) + "/tv/users/p/7/12.png"
	if up.Version <= 0 || up.Width <= 0 || up.Height <= 0 ||
		up.ThumbnailURL != base+images.ThumbnailTransformation+tail || up.FullURL != base+images.FullTransformation+tail {
		t.Fatalf("Upload = %+v", up)
	}

	up, err = newStore(t, srv, func(c *images.Config) { c.DeliveryURL = srv.URL() }).Upload(ctx, "p/7/13", data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(up.ThumbnailURL, srv.URL()+"/"+cloud+"/image/upload/"+images.ThumbnailTransformation+"/v") {
		t.Fatalf("thumbnail URL %s", up.ThumbnailURL)
	}
	for _, u := range []string{up.URL, up.ThumbnailURL, up.FullURL} {
		if got := fetch(t, u); !bytes.Equal(got, data) {
			t.Fatalf("%s serves other bytes", u)
		}
	}
}

func TestCloudinaryFailures(t *testing.T) {
	pngData := pngBytes(t)
	tests := []struct {
		name    string
		edit    func(*images.Config)
		prepare func(*cloudinarytest.Server)
		call    func(context.Context, *images.Cloudinary) error
		wantMsg string // part of the error's text
	}{
		{
			name:    "upload with a bad secret",
			edit:    func(c *images.Config) { c.APISecret = "wrong-secret" },
			call:    upload(pngData),
			wantMsg: "Invalid Signature",
		},
		{
			name:    "destroy with a bad secret",
			edit:    func(c *images.Config) { c.APISecret = "wrong-secret" },
			call:    destroy,
			wantMsg: "Invalid Signature",
		},
		{
			name:    "unknown API key",
			edit:    func(c *images.Config) { c.APIKey = "999" },
			call:    upload(pngData),
			wantMsg: "Invalid api_key 999",
		},
		{
			name:    "unknown cloud",
			edit:    func(c *images.Config) { c.CloudName = "elsewhere" },
			call:    upload(pngData),
			wantMsg: "Invalid cloud_name elsewhere",
		},
		{
			name:    "upload while Cloudinary fails",
			prepare: func(s *cloudinarytest.Server) { s.FailNext(1) },
			call:    upload(pngData),
			wantMsg: "General Error",
		},
		{
			name:    "destroy while Cloudinary fails",
			prepare: func(s *cloudinarytest.Server) { s.FailNext(1) },
			call:    destroy,
			wantMsg: "General Error",
		},
		{
			name:    "a format Cloudinary is told to refuse",
			call:    upload(gifBytes(t)),
			wantMsg: "Image file format gif not allowed",
		},
		{
			name:    "nothing listening",
			edit:    func(c *images.Config) { c.UploadPrefix = "http://127.0.0.1:1" },
			call:    upload(pngData),
			wantMsg: "cloudinary upload tv/users/u1",
		},
		{
			name: "an answer without the image's size",
			edit: func(c *images.Config) {
				odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"public_id":"tv/users/u1","secure_url":"https://res.example/u1.png","format":"png","version":1,"width":0,"height":0,"bytes":0}`))
				}))
				t.Cleanup(odd.Close)
				c.UploadPrefix = odd.URL
			},
			call:    upload(pngData),
			wantMsg: "0×0 pixels, 0 bytes",
		},
		{
			name: "canceled context",
			call: func(ctx context.Context, s *images.Cloudinary) error {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err := s.Upload(ctx, "u1", webpLossy)
				return err
			},
			wantMsg: "context canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := cloudinarytest.New(t, cloud, key, secret)
			store := newStore(t, srv, tt.edit)
			if tt.prepare != nil {
				tt.prepare(srv)
			}
			err := tt.call(context.Background(), store)
			if !errors.Is(err, domain.ErrUnavailable) || errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("err = %v, want domain.ErrUnavailable (not the client's fault)", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err %q does not say %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "wrong-secret") {
				t.Errorf("err %q holds the secret", err)
			}
			if len(srv.Assets()) != 0 {
				t.Error("a failed upload stored an image")
			}
		})
	}
}

func upload(data []byte) func(context.Context, *images.Cloudinary) error {
	return func(ctx context.Context, s *images.Cloudinary) error {
		_, err := s.Upload(ctx, "u1", data)
		return err
	}
}

func destroy(ctx context.Context, s *images.Cloudinary) error {
	return s.Destroy(ctx, "tv/users/u1")
}

func TestCloudinaryFailureIsTransient(t *testing.T) {
	ctx := context.Background()
	srv := cloudinarytest.New(t, cloud, key, secret)
	store := newStore(t, srv, nil)
	srv.FailNext(1)
	if _, err := store.Upload(ctx, "u1", webpLossy); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("first Upload = %v, want a failure", err)
	}
	if _, err := store.Upload(ctx, "u1", webpLossy); err != nil {
		t.Fatalf("repeated Upload = %v", err)
	}
}

func TestCloudinaryBadPublicID(t *testing.T) {
	srv := cloudinarytest.New(t, cloud, key, secret)
	store := newStore(t, srv, nil)
	for _, id := range []string{"", "/u1", "u1/", "a//b", "a/../b", "u1?x", "a b", "u1#"} {
		t.Run(id, func(t *testing.T) {
			if _, err := store.Upload(context.Background(), id, webpLossy); err == nil {
				t.Error("Upload accepted the id")
			}
			if err := store.Destroy(context.Background(), id); err == nil {
				t.Error("Destroy accepted the id")
			}
		})
	}
	if len(srv.Assets()) != 0 {
		t.Error("an image was stored")
	}
}

func TestConfigValidate(t *testing.T) {
	valid := images.Config{CloudName: cloud, APIKey: key, APISecret: secret}
	tests := []struct {
		name    string
		edit    func(*images.Config)
		wantErr string
	}{
		{"valid with defaults", func(*images.Config) {}, ""},
		{"valid with a prefix and a folder", func(c *images.Config) { c.UploadPrefix = "http://127.0.0.1:8080/"; c.Folder = "tv/users" }, ""},
		{"no cloud name", func(c *images.Config) { c.CloudName = "" }, "cloud name is required"},
		{"no key", func(c *images.Config) { c.APIKey = "" }, "API key is required"},
		{"no secret", func(c *images.Config) { c.APISecret = "" }, "API secret is required"},
		{"prefix without a scheme", func(c *images.Config) { c.UploadPrefix = "api.cloudinary.com" }, "must be an http(s) URL"},
		{"ftp prefix", func(c *images.Config) { c.UploadPrefix = "ftp://example.com" }, "must be an http(s) URL"},
		{"folder with a slash at its end", func(c *images.Config) { c.Folder = "tv/" }, "folder"},
		{"negative timeout", func(c *images.Config) { c.Timeout = -1 }, "timeout"},
		{"valid delivery host", func(c *images.Config) { c.DeliveryURL = "https://img.example.com" }, ""},
		{"delivery URL with a path", func(c *images.Config) { c.DeliveryURL = "https://img.example.com/x" }, "delivery URL"},
		{"delivery URL without a scheme", func(c *images.Config) { c.DeliveryURL = "img.example.com" }, "delivery URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.edit(&cfg)
			err := cfg.Validate()
			_, newErr := images.NewCloudinary(cfg)
			if tt.wantErr == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, NewCloudinary = %v", err, newErr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || newErr == nil {
				t.Fatalf("Validate = %v, NewCloudinary = %v; want %q", err, newErr, tt.wantErr)
			}
		})
	}
}

func TestConfigLogMasksSecrets(t *testing.T) {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "cloudinary", images.Config{CloudName: cloud, APIKey: key, APISecret: secret})
	out := b.String()
	if strings.Contains(out, secret) || strings.Contains(out, key) || !strings.Contains(out, "cloudinary.cloud_name="+cloud) {
		t.Fatalf("log line %q", out)
	}
}
