// Package images accepts uploaded images (profile pictures, product photos) and keeps them in
// Cloudinary. Read bounds what is read of an upload, Sniff judges its content (never its name),
// and Cloudinary stores and destroys it. Bad input is reported in the domain's vocabulary: a
// domain.Invalid error on Field, and ErrTooLarge for an upload past the size limit.
package images

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/techvault/techvault/domain"
)

// MaxBytes is the largest picture accepted: 2 MB.
const MaxBytes = 2 << 20

// MaxProductBytes is the largest product image accepted: 5 MB.
const MaxProductBytes = 5 << 20

// Field is the field named by the errors of this package.
const Field = "image"

// ErrTooLarge reports an upload past the size limit. It matches domain.ErrInvalid too, so a
// caller that knows no better answers 422; HTTP can tell it apart and answer 413.
var ErrTooLarge = fmt.Errorf("image too large: %w", domain.ErrInvalid)

// Read reads an upload of at most limit bytes (MaxBytes if limit <= 0). It reads at most limit+1
// bytes of r, so a 50 MB body is refused without being read to its end; past limit it fails with an
// error matching ErrTooLarge (an http.MaxBytesError from an outer limit does too). Any other read
// failure (a client gone mid-upload) is a domain.ErrInvalid error wrapping the cause.
func Read(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = MaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes):
		return nil, tooLarge(limit)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", domain.Invalid(Field, "image could not be read to its end"), err)
	case int64(len(data)) > limit:
		return nil, tooLarge(limit)
	}
	return data, nil
}

// Accept reads an upload of at most MaxBytes and sniffs it: the bytes to store and their
// format, or the error to answer the client with.
func Accept(r io.Reader) ([]byte, Format, error) { return AcceptUpTo(r, MaxBytes) }

// AcceptUpTo is Accept with another size limit (MaxBytes if limit <= 0).
func AcceptUpTo(r io.Reader, limit int64) ([]byte, Format, error) {
	data, err := Read(r, limit)
	if err != nil {
		return nil, "", err
	}
	f, err := Sniff(data)
	if err != nil {
		return nil, "", err
	}
	return data, f, nil
}

func tooLarge(limit int64) error {
	return &domain.Error{Kind: ErrTooLarge, Field: Field, Message: TooLargeMessage(limit)}
}

// TooLargeMessage is the message of an upload past limit: "image must be at most 5 MB".
func TooLargeMessage(limit int64) string { return "image must be at most " + size(limit) }

// size spells a byte count for people: "2 MB", "1.5 MB", "300 KB", "17 bytes".
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
