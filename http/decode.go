package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	nethttp "net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/domain"
)

// MaxBodyBytes bounds every JSON request body.
const MaxBodyBytes = 1 << 20

// decodeJSON reads exactly one JSON object into v, refusing unknown fields, trailing data and
// oversized bodies, and (checkJSON) bad UTF-8, lone surrogates, miscased and repeated keys. The
// body is parsed as JSON whatever its Content-Type says (curl -d sends a form type), except for
// multipart uploads, which are never JSON. Every handler decodes its body here.
func decodeJSON(c *gin.Context, v any) error {
	if mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); strings.HasPrefix(mt, "multipart/") {
		return &domain.Error{Kind: errUnsupportedMedia, Message: "request body must be JSON"}
	}
	body, err := io.ReadAll(nethttp.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *nethttp.MaxBytesError
		if errors.As(err, &tooLarge) {
			return jsonError(err)
		}
		return badRequest("", "reading the request body failed")
	}
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) { // decodes into nothing, silently
		return badRequest("", "request body must be a JSON object")
	}
	if err := checkJSON(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("", "request body must hold exactly one JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooLarge  *nethttp.MaxBytesError
		fieldName string
	)
	var own *domain.Error // a field's own decoder refused its value, naming it
	switch {
	case errors.As(err, &own):
		return own
	case errors.Is(err, io.EOF):
		return badRequest("", "request body is empty; a JSON object is required")
	case errors.As(err, &tooLarge):
		return &domain.Error{Kind: errTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "request body is not valid JSON")
	case errors.As(err, &typeErr):
		fieldName = typeErr.Field
		if fieldName == "" {
			return badRequest("", "request body must be a JSON object")
		}
		return badRequest(fieldName, fmt.Sprintf("%s must be a %s", fieldName, jsonKind(typeErr.Type.Kind().String())))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return badRequest(name, fmt.Sprintf("unknown field %q", name))
	}
	return badRequest("", "request body is not valid: "+err.Error())
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "whole number"
	case k == "string":
		return "string"
	case k == "bool":
		return "boolean"
	}
	return "value of another type"
}

// optionalMoney parses an optional JSON money value (string "19.99" or a number with at most
// two decimals) for field.
func optionalMoney(field string, raw json.RawMessage) (*domain.Money, error) {
	if raw == nil {
		return nil, nil
	}
	var m domain.Money
	if string(raw) == "null" {
		return nil, domain.Invalid(field, "%s must not be null", field)
	}
	if c := raw[0]; c != '"' && c != '-' && (c < '0' || c > '9') {
		// true, an object or an array: the wrong JSON type, a malformed request like any other.
		return nil, badRequest(field, fmt.Sprintf("%s must be a string such as \"19.99\"", field))
	}
	if err := m.UnmarshalJSON(raw); err != nil {
		return nil, domain.Invalid(field, "%s must be a decimal amount with at most two decimal places, such as \"19.99\"", field)
	}
	return &m, nil
}

// pathID reads a positive integer id from the path.
func pathID(c *gin.Context, name string) (int64, error) {
	return parseID(name, c.Param(name))
}

// parseID reads an id in its one canonical form: a positive decimal integer of ASCII digits, no
// sign, no leading zeros, no spaces, at most math.MaxInt64 (the read tables' bigint ids).
func parseID(field, s string) (int64, error) {
	bad := func() (int64, error) {
		return 0, badRequest(field, fmt.Sprintf("%s must be a positive integer written without sign or leading zeros", field))
	}
	if s == "" || len(s) > 19 || s[0] < '1' || s[0] > '9' || !allDigits(s) {
		return bad()
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return bad()
	}
	return id, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// strictQuery refuses a query string that does not parse (bad percent-encoding, a semicolon
// separator) with a 400, where net/url would drop the bad pairs and answer as if they were absent.
func strictQuery() gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := url.ParseQuery(c.Request.URL.RawQuery)
		if err != nil {
			writeError(c, badRequest("", "the query string is malformed: "+err.Error()))
			return
		}
		// Every parameter is one value: a second one would be silently dropped.
		for _, k := range slices.Sorted(maps.Keys(q)) {
			if len(q[k]) > 1 {
				writeError(c, badRequest(k, fmt.Sprintf("%s is given %d times; give it once", k, len(q[k]))))
				return
			}
		}
		c.Next()
	}
}
