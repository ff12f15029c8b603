package http

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	nethttp "net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/commands"
)

// IdempotencyKeyHeader names the key under which a client may repeat a command safely.
const IdempotencyKeyHeader = "Idempotency-Key"

// maxIdempotencyKey bounds the key's length.
const maxIdempotencyKey = 255

// idempotent reads a command request's Idempotency-Key and hands it, with the hash of the request
// (method, path and canonical body), to the command through the request context. Requests without
// the header pass through untouched.
func idempotent(c *gin.Context) { idempotentWithin(c, MaxBodyBytes, nil) }

// bodiless is idempotent for a command that takes no body: a body that is anything but empty or
// an empty JSON object is refused (400), as an unknown field of a command with a body is.
func bodiless(c *gin.Context) {
	if c.Request.Body != nil && c.Request.ContentLength != 0 {
		body, err := io.ReadAll(nethttp.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
		var tooLarge *nethttp.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeError(c, jsonError(err))
			return
		case err != nil:
			writeError(c, badRequest("", "the request body could not be read"))
			return
		case len(bytes.TrimSpace(body)) > 0 && string(canonicalJSON(body)) != "{}":
			writeError(c, badRequest("", c.Request.Method+" "+c.FullPath()+" takes no body (send none, or {})"))
			return
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
	}
	idempotent(c)
}

// idempotentUpload is idempotent for a multipart image upload of at most limit bytes: the body
// hashed may be that large, and a larger one is the image's 413.
func idempotentUpload(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) { idempotentWithin(c, limit+multipartOverhead, imageTooLarge(limit)) }
}

// idempotentWithin is idempotent for bodies of at most bound bytes; tooLarge, when set, answers
// a larger one.
func idempotentWithin(c *gin.Context, bound int64, tooLarge error) {
	values := c.Request.Header.Values(IdempotencyKeyHeader)
	if len(values) == 0 {
		c.Next()
		return
	}
	if len(values) != 1 || !validIdempotencyKey(values[0]) {
		writeError(c, badRequest(IdempotencyKeyHeader, fmt.Sprintf(
			"%s must be one value of 1 to %d printable ASCII characters", IdempotencyKeyHeader, maxIdempotencyKey)))
		return
	}
	hash, err := requestHash(c, bound)
	if tooLarge != nil && errors.Is(err, errTooLarge) {
		err = tooLarge
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.Request = c.Request.WithContext(commands.WithIdempotency(c.Request.Context(),
		commands.Idempotency{Key: values[0], RequestHash: hash}))
	c.Next()
}

func validIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > maxIdempotencyKey {
		return false
	}
	for i := range len(k) {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestHash is sha256(method, path, canonical body). The body is read (bounded) and put back
// for the handler. A JSON body is canonical once decoded and encoded again (sorted keys, no
// insignificant space, numbers as written); a multipart form is its fields' names and contents
// (canonicalForm); any other body is hashed as it is.
func requestHash(c *gin.Context, bound int64) ([]byte, error) {
	var body []byte
	if c.Request.Body != nil {
		var err error
		body, err = io.ReadAll(nethttp.MaxBytesReader(c.Writer, c.Request.Body, bound))
		var tooLarge *nethttp.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, jsonError(err)
		}
		if err != nil {
			return nil, badRequest("", "the request body could not be read")
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
	}
	h := sha256.New()
	h.Write([]byte(c.Request.Method))
	h.Write([]byte{0})
	h.Write([]byte(c.Request.URL.Path))
	h.Write([]byte{0})
	if form, ok := canonicalForm(c.GetHeader("Content-Type"), body); ok {
		h.Write(form)
	} else {
		h.Write(canonicalJSON(body))
	}
	return h.Sum(nil), nil
}

// canonicalForm is a multipart/form-data body as the command reads it: each field's name and
// content, in the order of their names, whatever boundary the client drew for this send (curl,
// browsers and Go's multipart.Writer draw a new one every time, so a retried upload is never the
// same bytes), and whatever file name or part headers it gave. ok is false for any other body,
// and for a form that cannot be read (which its handler refuses).
func canonicalForm(contentType string, body []byte) (_ []byte, ok bool) {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil || media != "multipart/form-data" || params["boundary"] == "" {
		return nil, false
	}
	type field struct{ name, content []byte }
	var fields []field
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false
		}
		content, err := io.ReadAll(part)
		if err != nil {
			return nil, false
		}
		fields = append(fields, field{[]byte(part.FormName()), content})
	}
	slices.SortStableFunc(fields, func(a, b field) int { return bytes.Compare(a.name, b.name) })
	var out []byte
	for _, f := range fields { // each length-prefixed, so no two forms read alike
		out = binary.AppendUvarint(out, uint64(len(f.name)))
		out = append(out, f.name...)
		out = binary.AppendUvarint(out, uint64(len(f.content)))
		out = append(out, f.content...)
	}
	return out, true
}

func canonicalJSON(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return body
	}
	b, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return b
}
