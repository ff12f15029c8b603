package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/eventstore"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/testdb"
	"github.com/techvault/techvault/ratelimit"
	"github.com/techvault/techvault/views/cards"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// testSecret is the server secret of every harness; tokens issued under it work in any of them
// (they name a user, not a database).
var testSecret = []byte("http-test-secret-http-test-secret-http-test")

// testTokens issues tokens under testSecret; adminToken is an admin's access token (user 1, who
// need not exist: the routes check the token's role, the commands check the accounts).
var (
	testTokens = func() *auth.Tokens {
		t, err := app.NewTokens(testSecret, time.Hour, 0)
		if err != nil {
			panic(err)
		}
		return t
	}()
	adminToken = accessToken(1, "admin")
)

func accessToken(userID int64, role string) string {
	tok, _, err := testTokens.IssueAccess(auth.AccessClaims{UserID: userID, Role: role, Session: "00000000-0000-7000-8000-000000000001"})
	if err != nil {
		panic(err)
	}
	return tok
}

// harness is a running API over a fresh database: router, projectors and product cards.
type harness struct {
	t     *testing.T
	db    *testdb.DB
	store *eventstore.Store
	cards *cards.ProductCards
	srv   *httptest.Server
	app   *app.App
}

type harnessOpts struct {
	redis  *redis.Client // nil: the test Redis
	prefix string
	cors   []string
	// limits replaces the default abuse limits; nil: the defaults.
	limits *ratelimit.Policy
	// configure adjusts the application's config further (mail, images, Google).
	configure func(*app.Config)
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	db := testdb.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if o.redis == nil {
		o.redis, o.prefix = testdb.Redis(t)
	}
	cfg := app.Config{Pool: db.Pool, Redis: o.redis, RedisPrefix: o.prefix, Secret: testSecret,
		CORSOrigins: o.cors, Passwords: auth.Params{Memory: 64, Iterations: 1}, AccessTTL: time.Hour,
		Limits: o.limits, LinkBase: "http://shop.test"}
	if o.configure != nil {
		o.configure(&cfg)
	}
	a, err := app.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = a.Close()
	})
	return &harness{t: t, db: db, store: a.Store, cards: a.Cards, srv: srv, app: a}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

type response struct {
	status int
	header nethttp.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// errorBody is the API's error body.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func (h *harness) do(method, path, body string, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := nethttp.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// admin runs a command as admin and requires want.
func (h *harness) admin(method, path, body string, want int) response {
	h.t.Helper()
	r := h.do(method, path, body, "Authorization", "Bearer "+adminToken)
	if r.status != want {
		h.t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, r.status, want, r.body)
	}
	return r
}

// read runs a query that waits for position.
func (h *harness) read(path string, position int64) response {
	h.t.Helper()
	r := h.do("GET", path, "", "X-Min-Position", strconv.FormatInt(position, 10))
	if r.header.Get("X-Min-Position-Reached") != "true" {
		h.t.Fatalf("GET %s: position %d not reached in time (%d %s)", path, position, r.status, r.body)
	}
	return r
}

func (h *harness) head() int64 {
	h.t.Helper()
	p, err := h.store.Head(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxy is a TCP proxy to Redis that can be cut and restored, to play Redis going away.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	up     bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, up: true}
	go p.serve()
	t.Cleanup(func() { _ = ln.Close(); p.setUp(false) })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if !p.up {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
		go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
	}
}

// setUp cuts (closing every connection) or restores the proxy.
func (p *proxy) setUp(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.conns = nil
	}
}

// members numbers the accounts member opens.
var members atomic.Int64

// member registers and signs in a customer through the API (a command on behalf of a customer
// needs the account: an access token of nobody writes nothing) and returns them and their id.
func (h *harness) member() (*customer, int64) {
	h.t.Helper()
	email := fmt.Sprintf("member%d@example.com", members.Add(1))
	c := &customer{h: h}
	c.call("POST", "/api/v1/auth/register", registerBody(email), 201)
	s := c.signIn(email, matrixPassword)
	c.lastPosition = max(c.lastPosition, h.head())
	return c, s.User.ID
}
