package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/pii"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/projections/catalogproj"
	"github.com/techvault/techvault/queries"
)

// openAPITokens sign the tokens of the server these tests build; openAPITestToken is an admin's.
var (
	openAPITokens = func() *auth.Tokens {
		t, err := auth.NewTokens(auth.TokenConfig{Seed: []byte("openapi-test-seed-openapi-test-s")})
		if err != nil {
			panic(err)
		}
		return t
	}()
	openAPITestToken = func() string {
		tok, _, err := openAPITokens.IssueAccess(auth.AccessClaims{UserID: 1, Role: roleAdmin, Session: "00000000-0000-7000-8000-000000000001"})
		if err != nil {
			panic(err)
		}
		return tok
	}()
)

// openAPITestServer builds the real router over dependencies that are never used for what these
// tests check: pgxpool.New does not connect until a connection is acquired (MinConns is 0), and the
// DSN names a port where nothing listens, so a handler that does reach the database fails fast.
func openAPITestServer(t *testing.T) *Server {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://techvault@127.0.0.1:1/techvault?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatalf("pgxpool.New: %v", err)
	}
	t.Cleanup(pool.Close)
	store, err := eventstore.New(eventstore.Config{Pool: pool})
	if err != nil {
		t.Fatalf("eventstore.New: %v", err)
	}
	ids := store.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
	checkpoints := projections.NewCheckpoints(pool)
	vault, err := pii.New(pool, []byte("openapi-test-lookup-openapi-test-lookup"))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(auth.Params{Memory: 64, Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{
		Logger:          slog.New(slog.DiscardHandler),
		Pool:            pool,
		Positions:       checkpoints.Waiter(store),
		Catalog:         commands.NewCatalog(store, ids),
		Queries:         queries.NewCatalogQueries(pool, 0),
		Checkpoints:     checkpoints,
		Projectors:      catalogproj.Projectors(),
		Users:           commands.NewUsers(store, store, store.Sequences(nil), vault, pw),
		UserQueries:     queries.NewUserQueries(pool),
		Tokens:          openAPITokens,
		Shop:            commands.NewShop(store, store.Sequences(nil), nil, nil),
		PromoExpiry:     queries.NewPromoExpiry(pool),
		OrderQueries:    queries.NewOrderQueries(pool, nil),
		ProductImages:   commands.NewProductImages(store, store.Sequences(nil), nil),
		Wishlists:       commands.NewWishlists(store),
		WishlistQueries: queries.NewWishlistQueries(pool),
		Reviews:         commands.NewReviews(store, store.Sequences(nil)),
		ReviewQueries:   queries.NewReviewQueries(pool),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// openAPIMethods are the keys of an OpenAPI path item that name operations.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type openAPIOperation struct {
	Method, Path string
	Op           map[string]any
	PathItem     map[string]any
}

func loadOpenAPIDocument(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(openAPIDocument))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("openapi.json has data after the document")
	}
	return doc
}

// openAPIOperations lists the document's operations, sorted by path and method.
func openAPIOperations(t *testing.T, doc map[string]any) []openAPIOperation {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.json has no paths object")
	}
	var ops []openAPIOperation
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Errorf("path %s is not an object", path)
			continue
		}
		for _, m := range openAPIMethods {
			if op, ok := item[m].(map[string]any); ok {
				ops = append(ops, openAPIOperation{Method: strings.ToUpper(m), Path: path, Op: op, PathItem: item})
			}
		}
	}
	slices.SortFunc(ops, func(a, b openAPIOperation) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	return ops
}

// ginPathToOpenAPI turns Gin's :name and *name segments into OpenAPI's {name}.
func ginPathToOpenAPI(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	srv := openAPITestServer(t)
	doc := loadOpenAPIDocument(t)

	registered := map[string]bool{}
	for _, r := range srv.Routes() {
		registered[r.Method+" "+ginPathToOpenAPI(r.Path)] = true
	}
	documented := map[string]bool{}
	for _, op := range openAPIOperations(t, doc) {
		documented[op.Method+" "+op.Path] = true
	}

	var missing, extra []string
	for r := range registered {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !registered[d] {
			extra = append(extra, d)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	for _, r := range missing {
		t.Errorf("route %s is registered but not documented in openapi.json", r)
	}
	for _, d := range extra {
		t.Errorf("operation %s is documented in openapi.json but no such route is registered", d)
	}
	if len(registered) == 0 {
		t.Error("the server registered no routes")
	}
}

func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	doc := loadOpenAPIDocument(t)

	if v, _ := doc["openapi"].(string); !regexp.MustCompile(`^3\.0\.\d+$`).MatchString(v) {
		t.Errorf(`openapi = %q, want "3.0.x"`, v)
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Error("info needs a title and a version")
	}

	tags := map[string]bool{}
	for _, v := range oasSlice(doc["tags"]) {
		if m, ok := v.(map[string]any); ok {
			tags[fmt.Sprint(m["name"])] = true
		}
	}
	schemes := oasMap(oasMap(doc["components"])["securitySchemes"])

	ids := map[string]string{}
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	for _, o := range openAPIOperations(t, doc) {
		name := o.Method + " " + o.Path
		id, _ := o.Op["operationId"].(string)
		switch {
		case id == "":
			t.Errorf("%s has no operationId", name)
		case ids[id] != "":
			t.Errorf("%s and %s share the operationId %q", ids[id], name, id)
		default:
			ids[id] = name
		}
		if responses, _ := o.Op["responses"].(map[string]any); len(responses) == 0 {
			t.Errorf("%s has no responses", name)
		}
		for _, tag := range oasSlice(o.Op["tags"]) {
			if !tags[fmt.Sprint(tag)] {
				t.Errorf("%s uses tag %v, which the document does not declare", name, tag)
			}
		}
		if len(oasSlice(o.Op["tags"])) == 0 {
			t.Errorf("%s has no tag", name)
		}
		for _, req := range oasSlice(o.Op["security"]) {
			for scheme := range oasMap(req) {
				if schemes[scheme] == nil {
					t.Errorf("%s requires security scheme %q, which is not declared", name, scheme)
				}
			}
		}

		// Every {param} in the path is declared as a required path parameter, and nothing else is.
		declared := map[string]bool{}
		for _, p := range append(oasSlice(o.PathItem["parameters"]), oasSlice(o.Op["parameters"])...) {
			p = oasResolve(doc, p)
			if m := oasMap(p); m["in"] == "path" {
				declared[fmt.Sprint(m["name"])] = true
				if m["required"] != true {
					t.Errorf("%s: path parameter %v must be required", name, m["name"])
				}
			}
		}
		for _, m := range pathParam.FindAllStringSubmatch(o.Path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} is not declared", name, m[1])
			}
			delete(declared, m[1])
		}
		for p := range declared {
			t.Errorf("%s declares path parameter %q, which is not in the path", name, p)
		}
	}

	// Every $ref resolves.
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"]; ok {
				s, _ := ref.(string)
				if _, err := oasPointer(doc, s); err != nil {
					t.Errorf("%s: $ref %q does not resolve: %v", at, s, err)
				}
			}
			for k, x := range v {
				walk(at+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s/%d", at, i), x)
			}
		}
	}
	walk("#", doc)
}

// TestOpenAPISecurityMatchesAdminRoutes checks the documented security against the router: an
// operation that requires the bearer token must refuse a request without one (401, before any
// handler runs), and a public one must not.
func TestOpenAPISecurityMatchesAdminRoutes(t *testing.T) {
	srv := openAPITestServer(t)
	doc := loadOpenAPIDocument(t)
	global := oasSlice(doc["security"])
	for _, o := range openAPIOperations(t, doc) {
		security, ok := o.Op["security"]
		secured := len(global) > 0
		if ok {
			secured = len(oasSlice(security)) > 0
		}
		path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(o.Path, "1")
		if strings.Contains(o.Path, "{name}") {
			path = strings.ReplaceAll(o.Path, "{name}", catalogproj.ProductsProjector)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req := httptest.NewRequestWithContext(ctx, o.Method, path, strings.NewReader("{}"))
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		cancel()
		// A route that wants a token says so with WWW-Authenticate; a public one may still answer
		// 401 for bad credentials in its body (sign-in, refresh), never for a missing token.
		challenged := rec.Code == nethttp.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") != ""
		switch {
		case secured && !challenged:
			t.Errorf("%s %s is documented as needing an access token, but without one it answered %d", o.Method, o.Path, rec.Code)
		case !secured && challenged:
			t.Errorf("%s %s is documented as public, but without a token it answered 401 asking for one", o.Method, o.Path)
		}
		if secured && rec.Code == nethttp.StatusUnauthorized {
			if _, ok := oasMap(oasResolve(doc, oasMap(o.Op["responses"])["401"]))["description"]; !ok {
				t.Errorf("%s %s needs the admin token but documents no 401 response", o.Method, o.Path)
			}
		}
	}
}

func TestOpenAPIServedDocument(t *testing.T) {
	srv := openAPITestServer(t)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(nethttp.MethodGet, "/openapi.json", nil))
	if rec.Code != nethttp.StatusOK {
		t.Fatalf("GET /openapi.json: status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /openapi.json: Content-Type %q, want application/json", ct)
	}
	if rec.Header().Get(RequestIDHeader) == "" {
		t.Errorf("GET /openapi.json: no %s header", RequestIDHeader)
	}
	if !bytes.Equal(rec.Body.Bytes(), openAPIDocument) {
		t.Error("GET /openapi.json does not serve the embedded document")
	}
}

func TestDocsPageIsServedAndSelfContained(t *testing.T) {
	srv := openAPITestServer(t)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(nethttp.MethodGet, "/docs", nil))
	if rec.Code != nethttp.StatusOK {
		t.Fatalf("GET /docs: status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /docs: Content-Type %q, want text/html", ct)
	}
	page := rec.Body.String()
	if !strings.Contains(strings.ToLower(page), "<html") || !strings.Contains(page, "openapi.json") {
		t.Error("GET /docs is not the HTML page that loads openapi.json")
	}
	// It must work offline: no external scripts, styles, fonts or images.
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//|@import|url\(\s*["']?\s*(https?:)?//`)
	if m := external.FindString(page); m != "" {
		t.Errorf("GET /docs loads an external asset: %q", m)
	}
}

func oasSlice(v any) []any { s, _ := v.([]any); return s }

func oasMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// oasResolve follows v's $ref, if it has one (nil when it does not resolve).
func oasResolve(doc map[string]any, v any) any {
	for range 10 {
		ref, ok := oasMap(v)["$ref"].(string)
		if !ok {
			return v
		}
		var err error
		if v, err = oasPointer(doc, ref); err != nil {
			return nil
		}
	}
	return v
}

// oasPointer resolves a local reference such as "#/components/schemas/Product".
func oasPointer(doc map[string]any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("only local references (#/...) are allowed")
	}
	var cur any = doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q is not an object", tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("no %q", tok)
		}
	}
	return cur, nil
}

// TestOpenAPIIdempotencyKeyOnEveryCommand checks that every command route documents the
// Idempotency-Key header and that the router reads it there (a malformed key is refused with 400
// before the command runs), and that no other route documents it.
func TestOpenAPIIdempotencyKeyOnEveryCommand(t *testing.T) {
	srv := openAPITestServer(t)
	doc := loadOpenAPIDocument(t)
	for _, o := range openAPIOperations(t, doc) {
		documented := false
		for _, p := range oasSlice(o.Op["parameters"]) {
			if oasMap(oasResolve(doc, p))["name"] == "Idempotency-Key" {
				documented = true
			}
		}
		// Webhooks are exempt: Stripe sends no Idempotency-Key (its retries carry the same event
		// id, by which the handler deduplicates), and a key would be stored per actor, which an
		// unauthenticated delivery has none of.
		command := o.Method != "GET" && strings.HasPrefix(o.Path, "/api/v1/") && !strings.HasPrefix(o.Path, "/api/v1/admin/") &&
			!strings.HasPrefix(o.Path, "/api/v1/webhooks/")
		if command != documented {
			t.Errorf("%s %s: command = %v, documents Idempotency-Key = %v", o.Method, o.Path, command, documented)
		}
		if !command {
			continue
		}
		path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(o.Path, "1")
		req := httptest.NewRequest(o.Method, path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+openAPITestToken)
		req.Header.Set("Idempotency-Key", strings.Repeat("k", 256))
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != nethttp.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"Idempotency-Key"`) {
			t.Errorf("%s %s with a 256-character key: %d %s", o.Method, o.Path, rec.Code, rec.Body)
		}
	}
}
