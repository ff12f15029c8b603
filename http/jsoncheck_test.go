package http

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	type inner struct {
		Street string `json:"street"`
	}
	type target struct {
		Name    string          `json:"name"`
		Price   json.RawMessage `json:"price"`
		Address *inner          `json:"address"`
		Lines   []inner         `json:"lines"`
		Tags    map[string]int  `json:"tags"`
		Plain   string
		Skipped string `json:"-"`
	}
	tests := []struct {
		name, body string
		ok         bool
		field      string
	}{
		{"plain", `{"name":"a","price":"1.00"}`, true, ""},
		{"surrogate pair", `{"name":"\ud83d\ude00 \uD83D\uDE00"}`, true, ""},
		{"escaped backslash before u", `{"name":"\\ud800"}`, true, ""},
		{"other escapes", `{"name":"\"\\\/\b\f\n\r\t\u00e9"}`, true, ""},
		{"nested known keys", `{"address":{"street":"x"},"lines":[{"street":"y"}],"tags":{"A":1,"a":2}}`, true, ""},
		{"untagged field by its Go name", `{"Plain":"x"}`, true, ""},
		{"raw value holds any keys", `{"price":{"Amount":1}}`, true, ""},
		{"scalar type mismatch left to the decoder", `{"name":5}`, true, ""},
		{"invalid UTF-8", "{\"name\":\"a\xff\xfe\"}", false, ""},
		{"invalid UTF-8 in a key", "{\"n\xffame\":\"a\"}", false, ""},
		{"encoded surrogate", "{\"name\":\"\xed\xa0\x80\"}", false, ""},
		{"lone high surrogate", `{"name":"\ud800"}`, false, ""},
		{"lone low surrogate", `{"name":"a\udc00b"}`, false, ""},
		{"high surrogate then a letter", `{"name":"\ud800\u0041"}`, false, ""},
		{"reversed pair", `{"name":"\ude00\ud83d"}`, false, ""},
		{"high surrogate at the end", `{"name":"\ud800`, false, ""},
		{"lone surrogate after an escaped backslash", `{"name":"\\\ud800"}`, false, ""},
		{"lone surrogate in a key", `{"\udc00":1}`, false, ""},
		{"miscased key", `{"NAME":"a"}`, false, "NAME"},
		{"miscased nested key", `{"address":{"Street":"x"}}`, false, "Street"},
		{"miscased key in a list", `{"lines":[{"STREET":"x"}]}`, false, "STREET"},
		{"unknown key", `{"colour":"red"}`, false, "colour"},
		{"skipped field", `{"Skipped":"x"}`, false, "Skipped"},
		{"duplicate key", `{"name":"a","name":"b"}`, false, "name"},
		{"duplicate nested key", `{"address":{"street":"a","street":"b"}}`, false, "street"},
		{"duplicate key in a raw value", `{"price":{"a":1,"a":2}}`, false, "a"},
		{"duplicate key in a map", `{"tags":{"a":1,"a":2}}`, false, "a"},
		{"truncated", `{"name":`, false, ""},
		{"empty", ``, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkJSON([]byte(tc.body), reflect.TypeFor[*target]())
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			status, body := errorResponse(err)
			if status != 400 || body.Error.Field != tc.field || body.Error.Message == "" {
				t.Fatalf("got %d %+v, want 400 on field %q", status, body.Error, tc.field)
			}
		})
	}
}

func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(`{"name":"RTX 4070 SUPER","description":"12 GB GDDR6X, DLSS 3","price":"599.99","category_id":3,"stock":12}`)
	typ := reflect.TypeFor[*createProductRequest]()
	b.ReportAllocs()
	for b.Loop() {
		if err := checkJSON(body, typ); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBaseline is what decodeJSON spent before checkJSON: one Decode of the same body.
func BenchmarkDecodeBaseline(b *testing.B) {
	body := []byte(`{"name":"RTX 4070 SUPER","description":"12 GB GDDR6X, DLSS 3","price":"599.99","category_id":3,"stock":12}`)
	b.ReportAllocs()
	for b.Loop() {
		var req createProductRequest
		if err := json.Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}
