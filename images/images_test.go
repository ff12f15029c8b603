package images_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/images"
)

// Two 1×1 WebP images: lossless (VP8L) and lossy (VP8).
var (
	webpLossless = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\r\x00\x00\x00/\x00\x00\x00\x10\a\x10\x11\x11\x88\x88\xfe\a\x00")
	webpLossy    = []byte("RIFF\"\x00\x00\x00WEBPVP8 \x16\x00\x00\x000\x01\x00\x9d\x01*\x01\x00\x01\x00\x0e\xc0\xfe%\xa4\x00\x03p\x00\x00\x00\x00")
)

// picture is a small image with enough detail that its encodings have a body to cut.
func picture() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 48, 32))
	for y := range 32 {
		for x := range 48 {
			img.Set(x, y, color.RGBA{uint8(x * 5), uint8(y * 7), uint8((x * y) % 256), 255})
		}
	}
	return img
}

func pngBytes(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, picture()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, picture(), &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gifBytes(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, picture(), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hugePNGHeader is a PNG signature and a valid IHDR declaring w×h pixels, and nothing else: what a
// decompression bomb shows before its data.
func hugePNGHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // 8-bit grey
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(ihdr)))
	chunk = append(chunk, "IHDR"...)
	chunk = append(chunk, ihdr...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	return append([]byte("\x89PNG\r\n\x1a\n"), chunk...)
}

func TestSniff(t *testing.T) {
	pngData, jpegData := pngBytes(t), jpegBytes(t)
	tests := []struct {
		name    string
		data    []byte
		want    images.Format
		wantMsg string // part of the refusal's message; "" if accepted
	}{
		{"png", pngData, images.PNG, ""},
		{"jpeg", jpegData, images.JPEG, ""},
		{"webp lossless", webpLossless, images.WebP, ""},
		{"webp lossy", webpLossy, images.WebP, ""},
		{"text named avatar.png", []byte("just some text, named avatar.png by its sender\n"), "", "its content is text/plain"},
		{"html", []byte("<!DOCTYPE html><html><body>hi</body></html>"), "", "its content is text/html"},
		{"gif", gifBytes(t), "", "its content is image/gif"},
		{"empty", nil, "", "image is empty"},
		{"png cut in its body", pngData[:len(pngData)/2], "", "not a readable PNG"},
		{"png cut in its header", pngData[:20], "", "not a readable PNG"},
		{"png signature then garbage", append([]byte("\x89PNG\r\n\x1a\n"), strings.Repeat("garbage ", 40)...), "", "not a readable PNG"},
		{"png without its end", pngData[:len(pngData)-12], "", "not a readable PNG"},
		{"jpeg cut short", jpegData[:len(jpegData)/2], "", "not a readable JPEG"},
		{"jpeg signature then garbage", append([]byte("\xff\xd8\xff\xe0"), strings.Repeat("garbage ", 40)...), "", "not a readable JPEG"},
		{"webp cut short", webpLossy[:len(webpLossy)-8], "", "not a readable WebP"},
		{"riff but not webp", []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"), "", "must be a JPEG, PNG or WebP image"},
		{"png of 100000×100000 pixels", hugePNGHeader(100_000, 100_000), "", "at most 16 megapixels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := images.Sniff(tt.data)
			if tt.wantMsg == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Sniff = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Sniff = %q, want a refusal", got)
			}
			var de *domain.Error
			if !errors.As(err, &de) || !errors.Is(err, domain.ErrInvalid) || de.Field != images.Field {
				t.Fatalf("err = %#v, want domain.Invalid on %q", err, images.Field)
			}
			if !strings.Contains(de.Message, tt.wantMsg) {
				t.Errorf("message %q does not say %q", de.Message, tt.wantMsg)
			}
			if errors.Is(err, images.ErrTooLarge) {
				t.Error("a refused format matches ErrTooLarge")
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		f               images.Format
		contentType, ex string
	}{
		{images.JPEG, "image/jpeg", ".jpg"},
		{images.PNG, "image/png", ".png"},
		{images.WebP, "image/webp", ".webp"},
	}
	for _, tt := range tests {
		t.Run(string(tt.f), func(t *testing.T) {
			if got := tt.f.ContentType(); got != tt.contentType {
				t.Errorf("ContentType = %q, want %q", got, tt.contentType)
			}
			if got := tt.f.Ext(); got != tt.ex {
				t.Errorf("Ext = %q, want %q", got, tt.ex)
			}
		})
	}
}

// zeros is a reader of n zero bytes that counts what was read of it.
type zeros struct{ n, read int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.read >= z.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), z.n-z.read))
	clear(p[:k])
	z.read += int64(k)
	return k, nil
}

func TestRead(t *testing.T) {
	tests := []struct {
		name    string
		size    int64
		max     int64
		tooBig  bool
		message string
	}{
		{"empty", 0, images.MaxBytes, false, ""},
		{"exactly 2 MB", images.MaxBytes, images.MaxBytes, false, ""},
		{"2 MB and one byte", images.MaxBytes + 1, images.MaxBytes, true, "image must be at most 2 MB"},
		{"50 MB", 50 << 20, images.MaxBytes, true, "image must be at most 2 MB"},
		{"max 0 means MaxBytes", images.MaxBytes + 1, 0, true, "image must be at most 2 MB"},
		{"a smaller max", 1001, 1000, true, "image must be at most 1000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &zeros{n: tt.size}
			data, err := images.Read(r, tt.max)
			limit := tt.max
			if limit <= 0 {
				limit = images.MaxBytes
			}
			if r.read > limit+1 {
				t.Errorf("read %d bytes of the body, want at most %d", r.read, limit+1)
			}
			if !tt.tooBig {
				if err != nil || int64(len(data)) != tt.size {
					t.Fatalf("Read = %d bytes, %v; want %d bytes", len(data), err, tt.size)
				}
				return
			}
			assertTooLarge(t, err, tt.message)
		})
	}
}

func assertTooLarge(t *testing.T, err error, message string) {
	t.Helper()
	if !errors.Is(err, images.ErrTooLarge) || !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("err = %v, want ErrTooLarge, matching domain.ErrInvalid", err)
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Field != images.Field || de.Message != message {
		t.Fatalf("err = %#v, want field %q and message %q", err, images.Field, message)
	}
}

func TestReadOuterLimit(t *testing.T) {
	// A handler that bounds the whole request body first: its limit counts as too large too.
	w := httptest.NewRecorder()
	body := http.MaxBytesReader(w, io.NopCloser(&zeros{n: 50 << 20}), 1<<20)
	_, err := images.Read(body, images.MaxBytes)
	assertTooLarge(t, err, "image must be at most 2 MB")
}

func TestReadBrokenBody(t *testing.T) {
	cause := errors.New("connection reset")
	_, err := images.Read(io.MultiReader(strings.NewReader("\x89PNG"), iotestErr{cause}), images.MaxBytes)
	if !errors.Is(err, domain.ErrInvalid) || !errors.Is(err, cause) || errors.Is(err, images.ErrTooLarge) {
		t.Fatalf("err = %v, want domain.ErrInvalid wrapping the cause", err)
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func TestAccept(t *testing.T) {
	pngData := pngBytes(t)
	tests := []struct {
		name    string
		body    io.Reader
		want    images.Format
		wantErr error
	}{
		{"png", bytes.NewReader(pngData), images.PNG, nil},
		{"text", strings.NewReader("not an image"), "", domain.ErrInvalid},
		{"50 MB", &zeros{n: 50 << 20}, "", images.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, f, err := images.Accept(tt.body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || f != tt.want || !bytes.Equal(data, pngData) {
				t.Fatalf("Accept = %d bytes, %q, %v", len(data), f, err)
			}
		})
	}
}

// AcceptUpTo takes an image of exactly its limit and refuses one byte more, saying the limit.
func TestAcceptUpTo(t *testing.T) {
	data := pngBytes(t)
	n := int64(len(data))
	if got, f, err := images.AcceptUpTo(bytes.NewReader(data), n); err != nil || f != images.PNG || !bytes.Equal(got, data) {
		t.Fatalf("at the limit: %q, %v", f, err)
	}
	_, _, err := images.AcceptUpTo(bytes.NewReader(data), n-1)
	if !errors.Is(err, images.ErrTooLarge) || !strings.Contains(err.Error(), images.TooLargeMessage(n-1)) {
		t.Fatalf("past the limit: %v", err)
	}
	if images.TooLargeMessage(images.MaxProductBytes) != "image must be at most 5 MB" {
		t.Fatalf("message %q", images.TooLargeMessage(images.MaxProductBytes))
	}
}
