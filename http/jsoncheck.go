package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// checkJSON refuses, with a 400, what encoding/json would let through silently:
//   - bytes that are not UTF-8 and escaped lone surrogates ("\ud800"), which it replaces by U+FFFD;
//   - object keys that match a field of the target only case-insensitively ("NAME" for "name");
//   - keys that repeat within one object (it keeps the last).
//
// It walks the body's tokens once, guided by the type the body is decoded into: keys of an object
// decoded into a struct must be that struct's json names exactly, recursively; objects of any
// other type (json.RawMessage, maps) only must not repeat a key. It does not judge types or values
// (the decoder that runs next does) and reports syntax errors as the decoder would.
func checkJSON(body []byte, target reflect.Type) error {
	if !utf8.Valid(body) {
		return badRequest("", "request body is not valid UTF-8")
	}
	if loneSurrogate(body) {
		return badRequest("", `request body holds a lone UTF-16 surrogate escape (such as "\ud800"); strings must be valid Unicode`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	return walkJSON(dec, tok, target)
}

// walkJSON checks the value that starts with tok, read from dec, against t (nil: any value).
func walkJSON(dec *json.Decoder, tok json.Token, t reflect.Type) error {
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar: its type and value are the decoder's business
	}
	next := func() (json.Token, error) {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, jsonError(err)
		}
		return tok, nil
	}
	t = deref(t)
	switch delim {
	case '{':
		fields := structFields(t)
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := make(map[string]struct{}, 8)
		for dec.More() {
			kt, err := next()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			if _, dup := seen[key]; dup {
				return badRequest(key, fmt.Sprintf("field %q appears more than once", key))
			}
			seen[key] = struct{}{}
			ft := elem
			if fields != nil {
				f, ok := fields[key]
				if !ok {
					return unknownField(key, fields)
				}
				ft = f
			}
			vt, err := next()
			if err != nil {
				return err
			}
			if err := walkJSON(dec, vt, ft); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8 {
			elem = t.Elem()
		}
		for dec.More() {
			vt, err := next()
			if err != nil {
				return err
			}
			if err := walkJSON(dec, vt, elem); err != nil {
				return err
			}
		}
	}
	_, err := next() // the closing delimiter
	return err
}

func unknownField(key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return badRequest(key, fmt.Sprintf("unknown field %q (field names are case-sensitive; did you mean %q?)", key, name))
		}
	}
	return badRequest(key, fmt.Sprintf("unknown field %q", key))
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	fieldCache      sync.Map // reflect.Type → map[string]reflect.Type
)

// structFields maps the json names of struct t's fields to their types; nil when t is not a
// struct decoded field by field (not a struct, or one with its own UnmarshalJSON).
func structFields(t reflect.Type) map[string]reflect.Type {
	if t == nil || t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	addFields(fields, t)
	fieldCache.Store(t, fields)
	return fields
}

func addFields(fields map[string]reflect.Type, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if et := deref(f.Type); et.Kind() == reflect.Struct {
				addFields(fields, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
}

// loneSurrogate reports whether body escapes a UTF-16 surrogate that is not half of a pair
// (a high one, \uD800–\uDBFF, followed at once by a low one, \uDC00–\uDFFF). Backslashes occur
// only inside strings in JSON, so a scan of the raw bytes sees every string escape.
func loneSurrogate(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i+1 >= len(b) {
			return false
		}
		if b[i+1] != 'u' {
			b = b[i+2:] // \\, \", \n, …: the escaped byte is never the start of an escape
			continue
		}
		r, ok := hex4(b[i+2:])
		if !ok {
			b = b[i+2:] // not an escape the decoder accepts: its syntax error
			continue
		}
		b = b[i+6:]
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
				return true
			}
			if lo, ok := hex4(b[2:]); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			b = b[6:]
		}
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
