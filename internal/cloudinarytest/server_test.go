package cloudinarytest

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	cloud  = "demo"
	key    = "1234"
	secret = "abcd"
)

func TestSign(t *testing.T) {
	tests := []struct {
		name          string
		params        url.Values
		want, wantStr string
	}{
		{
			// The example of Cloudinary's "Generating authentication signatures" page.
			name: "cloudinary's documented example",
			params: url.Values{
				"eager":     {"w_400,h_300,c_pad|w_260,h_200,c_crop"},
				"public_id": {"sample_image"},
				"timestamp": {"1315060510"},
			},
			want:    "bfd09f95f331f558cbd1320e67aa8d488770583e",
			wantStr: "eager=w_400,h_300,c_pad|w_260,h_200,c_crop&public_id=sample_image&timestamp=1315060510",
		},
		{
			name: "unsigned and empty parameters left out, arrays joined, & escaped",
			params: url.Values{
				"file": {"x"}, "api_key": {"k"}, "resource_type": {"image"}, "cloud_name": {"c"}, "signature": {"s"},
				"folder": {""}, "tags[1]": {"b"}, "tags[0]": {"a&z"}, "timestamp": {"1"},
			},
			wantStr: "tags=a%26z,b&timestamp=1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, str := Sign(tt.params, secret)
			if str != tt.wantStr || (tt.want != "" && got != tt.want) {
				t.Fatalf("Sign = %s, %q; want %s, %q", got, str, tt.want, tt.wantStr)
			}
		})
	}
}

// pngData is a 3×2 grey PNG with one pixel of the given shade.
func pngData(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.Gray{Y: shade})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// post sends a signed (unless the params carry a signature) API call, multipart when file is set.
func post(t *testing.T, s *Server, path string, params url.Values, file []byte) (int, map[string]any) {
	t.Helper()
	if params.Get("signature") == "" {
		sig, _ := Sign(params, secret)
		params.Set("signature", sig)
	}
	var (
		body bytes.Buffer
		ct   = "application/x-www-form-urlencoded"
	)
	if file != nil {
		mw := multipart.NewWriter(&body)
		for k, vs := range params {
			_ = mw.WriteField(k, vs[0])
		}
		fw, err := mw.CreateFormFile("file", "file")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(file)
		_ = mw.Close()
		ct = mw.FormDataContentType()
	} else {
		body.WriteString(params.Encode())
	}
	resp, err := http.Post(s.URL()+path, ct, &body)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %q is not JSON: %v", raw, err)
	}
	return resp.StatusCode, out
}

func now() string { return strconv.FormatInt(time.Now().Unix(), 10) }

const (
	uploadPath     = "/v1_1/demo/image/upload"
	autoUploadPath = "/v1_1/demo/auto/upload" // where cloudinary-go posts
	destroyPath    = "/v1_1/demo/image/destroy"
)

// params is a form of key, value pairs with a fresh timestamp and the API key, unless given; an
// empty value leaves its key out.
func params(kv ...string) url.Values {
	v := url.Values{"timestamp": {now()}, "api_key": {key}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
			continue
		}
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func errorMessage(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestUploadAndDestroy(t *testing.T) {
	s := New(t, cloud, key, secret)
	data := pngData(t, 255)
	status, out := post(t, s, uploadPath, params("public_id", "a/b"), data)
	if status != http.StatusOK || out["public_id"] != "a/b" || out["format"] != "png" ||
		out["width"] != 3.0 || out["height"] != 2.0 || out["bytes"] != float64(len(data)) {
		t.Fatalf("upload: %d %v", status, out)
	}
	secureURL, _ := out["secure_url"].(string)
	resp, err := http.Get(secureURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(got, data) {
		t.Fatalf("GET %s: %s, %d bytes", secureURL, resp.Header.Get("Content-Type"), len(got))
	}

	status, out = post(t, s, destroyPath, params("public_id", "a/b"), nil)
	if status != http.StatusOK || out["result"] != "ok" {
		t.Fatalf("destroy: %d %v", status, out)
	}
	status, out = post(t, s, destroyPath, params("public_id", "a/b"), nil)
	if status != http.StatusOK || out["result"] != "not found" {
		t.Fatalf("second destroy: %d %v", status, out)
	}
	if d := s.Destroyed(); len(d) != 1 || d[0] != "a/b" || len(s.Assets()) != 0 {
		t.Fatalf("destroyed %v, assets %d", d, len(s.Assets()))
	}
}

// Transformation URLs serve the original bytes; destroy calls are counted per public id, found
// or not.
func TestTransformationsAndDestroyCalls(t *testing.T) {
	s := New(t, cloud, key, secret)
	data := pngData(t, 9)
	status, out := post(t, s, uploadPath, params("public_id", "products/7/1"), data)
	if status != http.StatusOK {
		t.Fatalf("upload: %d %v", status, out)
	}
	version := strconv.FormatInt(int64(out["version"].(float64)), 10)
	for _, path := range []string{
		"/demo/image/upload/c_fill,g_auto,h_400,w_400/f_auto,q_auto/v" + version + "/products/7/1.png",
		"/demo/image/upload/c_limit,h_1600,w_1600/products/7/1.png",
	} {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
			t.Fatalf("GET %s: %d, %d bytes", path, resp.StatusCode, len(got))
		}
	}
	for range 2 {
		if status, out := post(t, s, destroyPath, params("public_id", "products/7/1"), nil); status != http.StatusOK {
			t.Fatalf("destroy: %d %v", status, out)
		}
	}
	s.FailNext(1)
	if status, _ := post(t, s, destroyPath, params("public_id", "products/7/1"), nil); status != http.StatusInternalServerError {
		t.Fatalf("failing destroy: %d", status)
	}
	if calls := s.DestroyCalls(); len(calls) != 1 || calls["products/7/1"] != 2 || len(s.Destroyed()) != 1 || s.Refused() != 1 {
		t.Fatalf("destroy calls %v, destroyed %v", calls, s.Destroyed())
	}
}

func TestRefusals(t *testing.T) {
	data := pngData(t, 255)
	stale := strconv.FormatInt(time.Now().Add(-2*time.Hour).Unix(), 10)
	ts := now()
	tests := []struct {
		name       string
		path       string
		params     url.Values
		file       []byte
		failNext   int
		wantStatus int
		wantMsg    string
	}{
		{"bad signature", uploadPath, params("public_id", "x", "timestamp", ts, "signature", "0000"), data, 0,
			http.StatusUnauthorized, "Invalid Signature 0000. String to sign - 'public_id=x&timestamp=" + ts + "'."},
		{"unknown key", uploadPath, params("api_key", "99"), data, 0, http.StatusUnauthorized, "Invalid api_key 99"},
		{"no key", destroyPath, params("public_id", "x", "api_key", ""), nil, 0, http.StatusUnauthorized, "Must supply api_key"},
		{"other cloud", "/v1_1/other/image/upload", params(), data, 0, http.StatusUnauthorized, "Invalid cloud_name other"},
		{"stale timestamp", uploadPath, params("timestamp", stale), data, 0, http.StatusBadRequest, "Stale request"},
		{"no file", uploadPath, params(), nil, 0, http.StatusBadRequest, "Missing required parameter - file"},
		{"not an image", autoUploadPath, params(), []byte("hello"), 0, http.StatusBadRequest, "Invalid image file"},
		{"format not allowed", autoUploadPath, params("allowed_formats", "jpg,webp"), data, 0,
			http.StatusBadRequest, "Image file format png not allowed"},
		{"told to fail", uploadPath, params(), data, 1, http.StatusInternalServerError, "General Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, cloud, key, secret)
			s.FailNext(tt.failNext)
			status, out := post(t, s, tt.path, tt.params, tt.file)
			if status != tt.wantStatus || !strings.HasPrefix(errorMessage(out), tt.wantMsg) {
				t.Fatalf("answer %d %v, want %d %q…", status, out, tt.wantStatus, tt.wantMsg)
			}
			if len(s.Assets()) != 0 {
				t.Error("a refused upload was stored")
			}
		})
	}
}

func TestOverwriteFalseKeepsTheImage(t *testing.T) {
	s := New(t, cloud, key, secret)
	first := pngData(t, 255)
	if status, out := post(t, s, uploadPath, params("public_id", "p"), first); status != http.StatusOK {
		t.Fatalf("upload: %d %v", status, out)
	}
	status, out := post(t, s, uploadPath, params("public_id", "p", "overwrite", "false"), pngData(t, 7))
	if status != http.StatusOK || out["existing"] != true {
		t.Fatalf("upload with overwrite=false: %d %v", status, out)
	}
	if !bytes.Equal(s.Assets()["p"], first) {
		t.Fatal("overwrite=false replaced the image")
	}
}
