// Package cloudinarytest is a local HTTP server speaking the parts of Cloudinary's upload API that
// cloudinary-go calls (upload and destroy), for tests: it checks credentials and request
// signatures as Cloudinary does, keeps the uploaded bytes by public id, serves them back at the
// secure_url it answers with (and at transformation URLs, with the original bytes: it
// transforms nothing), counts the destroy calls per public id, and can be told to fail.
package cloudinarytest

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif"  // so an uploaded GIF is recognised (and refused by allowed_formats)
	_ "image/jpeg" // formats the server recognises
	_ "image/png"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "golang.org/x/image/webp" // and WebP
)

// MaxUploadBytes is the largest upload the server takes (Cloudinary's free plan: 10 MB).
const MaxUploadBytes = 10 << 20

// Server is a stand-in for Cloudinary's upload API. It is safe for concurrent use.
type Server struct {
	srv                       *httptest.Server
	cloudName, apiKey, secret string

	mu           sync.Mutex
	assets       map[string]asset
	destroyed    []string
	destroyCalls map[string]int
	failNext     int
	refused      int
	lastVersion  int64
}

type asset struct {
	data          []byte
	format        string // Cloudinary's name: jpg, png, webp, gif
	version       int64
	width, height int
}

// New starts a server for one cloud and one key pair; it is closed when the test ends. Point
// cloudinary-go at URL() (its upload prefix).
func New(t testing.TB, cloudName, apiKey, apiSecret string) *Server {
	t.Helper()
	s := &Server{cloudName: cloudName, apiKey: apiKey, secret: apiSecret, assets: map[string]asset{}, destroyCalls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1_1/{cloud}/{type}/upload", s.upload)
	mux.HandleFunc("POST /v1_1/{cloud}/{type}/destroy", s.destroy)
	mux.HandleFunc("GET /{cloud}/image/upload/{path...}", s.deliver)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the server's base URL: the API's upload prefix.
func (s *Server) URL() string { return s.srv.URL }

// Assets returns a copy of the stored images by public id.
func (s *Server) Assets() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.assets))
	for id, a := range s.assets {
		out[id] = slices.Clone(a.data)
	}
	return out
}

// Destroyed returns the public ids destroyed so far, in order; a destroy of a missing id is not
// among them.
func (s *Server) Destroyed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.destroyed)
}

// DestroyCalls returns how many authenticated destroy calls named each public id, whether or not
// the image was there (calls refused by FailNext are not counted: they are refused unread).
func (s *Server) DestroyCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.destroyCalls)
}

// Refused returns how many API calls FailNext has refused so far.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// FailNext makes the next n API calls (upload or destroy) answer 500 with Cloudinary's error JSON,
// before looking at them.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

func (s *Server) failing(r *http.Request) bool {
	s.mu.Lock()
	fail := s.failNext > 0
	if fail {
		s.failNext--
		s.refused++
	}
	s.mu.Unlock()
	if fail {
		drain(r)
	}
	return fail
}

// drain reads a refused request to its end, as Cloudinary does, so the client sees the answer
// rather than a broken pipe.
func drain(r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, MaxUploadBytes+1<<20))
}

// upload answers POST /v1_1/{cloud}/{image|auto}/upload (cloudinary-go posts to auto).
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if s.failing(r) {
		writeError(w, http.StatusInternalServerError, "General Error")
		return
	}
	if rt := r.PathValue("type"); rt != "image" && rt != "auto" {
		drain(r)
		writeError(w, http.StatusBadRequest, "Unsupported resource type "+rt+" (this stand-in keeps images only)")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxUploadBytes+1<<20)
	form, data, status, msg := s.parse(r)
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	if data == nil {
		writeError(w, http.StatusBadRequest, "Missing required parameter - file")
		return
	}
	if len(data) > MaxUploadBytes {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("File size too large. Got %d. Maximum is %d.", len(data), MaxUploadBytes))
		return
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid image file")
		return
	}
	if format == "jpeg" {
		format = "jpg"
	}
	if allowed := listParam(form, "allowed_formats"); len(allowed) > 0 && !slices.Contains(allowed, format) {
		writeError(w, http.StatusBadRequest, "Image file format "+format+" not allowed")
		return
	}
	id := form.Get("public_id")
	if id == "" {
		id = randomID()
	}
	if folder := strings.Trim(form.Get("folder"), "/"); folder != "" {
		id = folder + "/" + id
	}

	s.mu.Lock()
	old, exists := s.assets[id]
	keep := exists && form.Get("overwrite") == "false"
	a := old
	if !keep {
		s.lastVersion = max(s.lastVersion+1, time.Now().Unix())
		a = asset{data: slices.Clone(data), format: format, version: s.lastVersion, width: cfg.Width, height: cfg.Height}
		s.assets[id] = a
	}
	s.mu.Unlock()

	res := s.uploadResult(id, a)
	switch {
	case keep:
		res["existing"] = true
	case exists:
		res["overwritten"] = true
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) uploadResult(id string, a asset) map[string]any {
	version := strconv.FormatInt(a.version, 10)
	sum := md5.Sum(a.data)
	deliveryURL := fmt.Sprintf("%s/%s/image/upload/v%s/%s.%s", s.srv.URL, s.cloudName, version, id, a.format)
	return map[string]any{
		"asset_id":          hex.EncodeToString(sha1Sum(id)[:16]),
		"public_id":         id,
		"version":           a.version,
		"version_id":        hex.EncodeToString(sha1Sum(id + version)[:16]),
		"signature":         hex.EncodeToString(sha1Sum("public_id=" + id + "&version=" + version + s.secret)),
		"width":             a.width,
		"height":            a.height,
		"format":            a.format,
		"resource_type":     "image",
		"created_at":        time.Unix(a.version, 0).UTC().Format(time.RFC3339),
		"tags":              []string{},
		"bytes":             len(a.data),
		"type":              "upload",
		"etag":              hex.EncodeToString(sum[:]),
		"placeholder":       false,
		"url":               deliveryURL,
		"secure_url":        deliveryURL, // plain http: the stand-in has no certificate
		"asset_folder":      "",
		"display_name":      id[strings.LastIndex(id, "/")+1:],
		"original_filename": "file",
		"api_key":           s.apiKey,
	}
}

// destroy answers POST /v1_1/{cloud}/image/destroy.
func (s *Server) destroy(w http.ResponseWriter, r *http.Request) {
	if s.failing(r) {
		writeError(w, http.StatusInternalServerError, "General Error")
		return
	}
	form, _, status, msg := s.parse(r)
	if status != 0 {
		writeError(w, status, msg)
		return
	}
	id := form.Get("public_id")
	if id == "" {
		writeError(w, http.StatusBadRequest, "Missing required parameter - public_id")
		return
	}
	result := "not found"
	s.mu.Lock()
	s.destroyCalls[id]++
	if _, ok := s.assets[id]; ok && r.PathValue("type") == "image" {
		delete(s.assets, id)
		s.destroyed = append(s.destroyed, id)
		result = "ok"
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"result": result})
}

// transformationSegment matches a path segment of transformation parameters: "c_fill,h_400,w_400".
var transformationSegment = regexp.MustCompile(`^[a-z]{1,3}_[^,/]+(,[a-z]{1,3}_[^,/]+)*$`)

// deliver serves a stored image at its delivery URL:
// /{cloud}/image/upload/[{transformation}/...][v{version}/]{id}.{ext}. A transformation is
// accepted and ignored: the original bytes are served.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	for {
		seg, rest, ok := strings.Cut(p, "/")
		if !ok || !transformationSegment.MatchString(seg) {
			break
		}
		p = rest
	}
	if v, rest, ok := strings.Cut(p, "/"); ok && len(v) > 1 && v[0] == 'v' && isDigits(v[1:]) {
		p = rest
	}
	if i := strings.LastIndex(p, "."); i > strings.LastIndex(p, "/") {
		p = p[:i]
	}
	s.mu.Lock()
	a, ok := s.assets[p]
	s.mu.Unlock()
	if !ok || r.PathValue("cloud") != s.cloudName {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension("." + a.format)
	if a.format == "jpg" {
		ct = "image/jpeg"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(a.data)
}

// parse reads an API call's form (multipart with a file, or URL-encoded) and authenticates it as
// Cloudinary does: cloud name, API key, a fresh timestamp and the signature. It returns the form,
// the file's bytes (nil if none), and, on refusal, the status and message to answer with.
func (s *Server) parse(r *http.Request) (url.Values, []byte, int, string) {
	var data []byte
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, nil, http.StatusBadRequest, "Invalid multipart request: " + err.Error()
		}
		defer func() { _ = r.MultipartForm.RemoveAll() }()
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 {
			f, err := fhs[0].Open()
			if err != nil {
				return nil, nil, http.StatusBadRequest, "Invalid file: " + err.Error()
			}
			data, err = io.ReadAll(f)
			_ = f.Close()
			if err != nil {
				return nil, nil, http.StatusBadRequest, "Invalid file: " + err.Error()
			}
		}
	} else {
		// cloudinary-go posts URL-encoded forms without a Content-Type, so the body is parsed
		// whatever its type says.
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, nil, http.StatusBadRequest, "Invalid request: " + err.Error()
		}
		if r.PostForm, err = url.ParseQuery(string(body)); err != nil {
			return nil, nil, http.StatusBadRequest, "Invalid request: " + err.Error()
		}
	}
	form := r.PostForm
	if data == nil && form.Get("file") != "" {
		return nil, nil, http.StatusBadRequest, "This stand-in takes uploaded bytes only, not a URL or data URI"
	}

	if cloud := r.PathValue("cloud"); cloud != s.cloudName {
		return nil, nil, http.StatusUnauthorized, "Invalid cloud_name " + cloud
	}
	key := form.Get("api_key")
	if key == "" {
		return nil, nil, http.StatusUnauthorized, "Must supply api_key"
	}
	if key != s.apiKey {
		return nil, nil, http.StatusUnauthorized, "Invalid api_key " + key
	}
	ts := form.Get("timestamp")
	if ts == "" {
		return nil, nil, http.StatusBadRequest, "Missing required parameter - timestamp"
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, nil, http.StatusBadRequest, "Invalid timestamp " + ts
	}
	if now := time.Now().Unix(); unix < now-3600 {
		reported := time.Unix(unix, 0).UTC().Format("2006-01-02 15:04:05 -0700")
		return nil, nil, http.StatusBadRequest, "Stale request - reported time is " + reported + " which is more than 1 hour ago"
	}
	got := form.Get("signature")
	if got == "" {
		return nil, nil, http.StatusUnauthorized, "Missing required parameter - signature"
	}
	want, toSign := Sign(form, s.secret)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return nil, nil, http.StatusUnauthorized, fmt.Sprintf("Invalid Signature %s. String to sign - '%s'.", got, toSign)
	}
	return form, data, 0, ""
}

var arrayKey = regexp.MustCompile(`^(.+)\[(\d+)]$`)

// unsigned are the parameters Cloudinary leaves out of a signature.
var unsigned = map[string]bool{"file": true, "cloud_name": true, "resource_type": true, "api_key": true, "signature": true}

// Sign computes a request's signature the way Cloudinary checks it: every parameter but file,
// cloud_name, resource_type, api_key and signature, and none with an empty value; array
// parameters (name[0], name[1], …) as one name with their values joined by commas; "&" in a value
// written %26 (signature version 2); sorted "k=v" pairs joined by "&", the secret appended, and
// the SHA-1 of that in hex. It returns the signature and the string signed (without the secret).
func Sign(params url.Values, secret string) (signature, toSign string) {
	type item struct {
		index int
		value string
	}
	arrays := map[string][]item{}
	flat := map[string]string{}
	for k, vs := range params {
		if len(vs) == 0 || vs[0] == "" {
			continue
		}
		if m := arrayKey.FindStringSubmatch(k); m != nil {
			n, _ := strconv.Atoi(m[2])
			arrays[m[1]] = append(arrays[m[1]], item{n, vs[0]})
			continue
		}
		if !unsigned[k] {
			flat[k] = vs[0]
		}
	}
	for name, items := range arrays {
		if unsigned[name] {
			continue
		}
		sort.Slice(items, func(i, j int) bool { return items[i].index < items[j].index })
		vals := make([]string, len(items))
		for i, it := range items {
			vals[i] = it.value
		}
		flat[name] = strings.Join(vals, ",")
	}
	pairs := make([]string, 0, len(flat))
	for _, k := range slices.Sorted(maps.Keys(flat)) {
		pairs = append(pairs, k+"="+strings.ReplaceAll(flat[k], "&", "%26"))
	}
	toSign = strings.Join(pairs, "&")
	return hex.EncodeToString(sha1Sum(toSign + secret)), toSign
}

// listParam reads a list parameter sent either as one comma-separated value (as cloudinary-go
// sends it) or as name[0], name[1], ….
func listParam(form url.Values, name string) []string {
	if v := form.Get(name); v != "" {
		return strings.Split(v, ",")
	}
	var out []string
	for i := 0; ; i++ {
		v, ok := form[name+"["+strconv.Itoa(i)+"]"]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

func sha1Sum(s string) []byte {
	sum := sha1.Sum([]byte(s))
	return sum[:]
}

func randomID() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding the answer failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
