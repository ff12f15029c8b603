package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/internal/pgadmin"
	"github.com/techvault/techvault/migrations"
)

// env is what every benchmark shares: where the servers are, the cleanup registry and loggers.
type env struct {
	cfg     config
	cleanup *cleanups
	// log is for the application components under test: warnings and errors only, to stderr.
	log *slog.Logger
	// quiet discards everything (migrations, the HTTP server's access log).
	quiet  *slog.Logger
	stderr io.Writer
}

func newEnv(cfg config, stderr io.Writer) (*env, error) {
	if _, err := pgx.ParseConfig(cfg.adminURL); err != nil {
		return nil, fmt.Errorf("admin url: %w", err)
	}
	if _, err := redis.ParseURL(cfg.redisURL); err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	return &env{
		cfg:     cfg,
		cleanup: &cleanups{},
		log:     slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		quiet:   slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
		stderr:  stderr,
	}, nil
}

// progress prints a progress line to stderr (so that stdout stays the report).
func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.stderr, "   ... "+format+"\n", args...)
}

// cleanups is a registry of cleanup functions, run last-in first-out, each at most once. The
// benchmarks run them on their way out; a forced exit (second Ctrl-C) runs what is left.
type cleanups struct {
	mu  sync.Mutex
	fns []*cleanupFn
}

type cleanupFn struct {
	name string
	once sync.Once
	fn   func()
}

// add registers fn and returns a function that runs it (once) and forgets it.
func (c *cleanups) add(name string, fn func()) func() {
	cf := &cleanupFn{name: name, fn: fn}
	c.mu.Lock()
	c.fns = append(c.fns, cf)
	c.mu.Unlock()
	return func() {
		cf.once.Do(cf.fn)
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.fns {
			if x == cf {
				c.fns = append(c.fns[:i], c.fns[i+1:]...)
				break
			}
		}
	}
}

func (c *cleanups) runAll() {
	for {
		c.mu.Lock()
		if len(c.fns) == 0 {
			c.mu.Unlock()
			return
		}
		cf := c.fns[len(c.fns)-1]
		c.fns = c.fns[:len(c.fns)-1]
		c.mu.Unlock()
		cf.once.Do(cf.fn)
	}
}

func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}

// serverInfo describes the Postgres server briefly (for the report header).
func (e *env) serverInfo(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.cfg.adminURL)
	if err != nil {
		return "Postgres unreachable: " + err.Error()
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v, sb, sc, fsync string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('shared_buffers'),
		current_setting('synchronous_commit'), current_setting('fsync')`).Scan(&v, &sb, &sc, &fsync)
	if err != nil {
		return "Postgres: " + err.Error()
	}
	return fmt.Sprintf("PostgreSQL %s (shared_buffers %s, synchronous_commit %s, fsync %s)", v, sb, sc, fsync)
}

// scratchDB is a freshly migrated database of one benchmark, dropped by Close.
type scratchDB struct {
	Name  string
	URL   string
	Pool  *pgxpool.Pool
	close func()
}

// Close closes the pool and drops the database (idempotent).
func (d *scratchDB) Close() { d.close() }

// newDB creates tvbench_<random>, migrates it and opens a pool of maxConns connections with the
// given session settings. The database is dropped by Close, and by a forced exit.
func (e *env) newDB(ctx context.Context, maxConns int32, params map[string]string) (*scratchDB, error) {
	name := pgadmin.UniqueName("tvbench_")
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	dsn, err := pgadmin.Create(cctx, e.cfg.adminURL, name, "")
	if err != nil {
		return nil, fmt.Errorf("creating scratch database (is PostgreSQL running at %s?): %w", maskURL(e.cfg.adminURL), err)
	}
	d := &scratchDB{Name: name}
	var poolMu sync.Mutex
	d.close = e.cleanup.add("database "+name, func() {
		poolMu.Lock()
		p := d.Pool
		poolMu.Unlock()
		if p != nil {
			done := make(chan struct{})
			go func() { p.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second): // a stuck holder; DROP ... WITH (FORCE) ends it
			}
		}
		dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := pgadmin.Drop(dctx, e.cfg.adminURL, name); err != nil {
			fmt.Fprintf(e.stderr, "tvbench: %v (drop it by hand)\n", err)
		}
	})
	d.URL = dsn
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		d.Close()
		return nil, err
	}
	pc.MaxConns = maxConns
	for k, v := range params {
		pc.ConnConfig.RuntimeParams[k] = v
	}
	pool, err := pgxpool.NewWithConfig(cctx, pc)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("connecting to %s: %w", name, err)
	}
	poolMu.Lock()
	d.Pool = pool
	poolMu.Unlock()
	if err := migrations.Apply(cctx, pool, e.quiet); err != nil {
		d.Close()
		return nil, fmt.Errorf("migrating %s: %w", name, err)
	}
	return d, nil
}

// connect opens a separate connection to the scratch database (not from its pool).
func (d *scratchDB) connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, d.URL)
}

// newRedis returns a client configured as serve configures it (short timeouts, one retry) and a
// key prefix private to this run; the keys under it are deleted by the returned cleanup.
func (e *env) newRedis(ctx context.Context) (*redis.Client, string, func(), error) {
	opt, err := redis.ParseURL(e.cfg.redisURL)
	if err != nil {
		return nil, "", nil, err
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	opt.MaxRetries = 1
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, "", nil, fmt.Errorf("redis at %s: %w", maskURL(e.cfg.redisURL), err)
	}
	prefix := pgadmin.UniqueName("tvbench:") + ":"
	return rdb, prefix, e.dropRedisKeys(rdb, prefix, true), nil
}

// dropRedisKeys registers the deletion of every key under prefix (and, with closeClient, the
// client's close); the returned function runs it at once.
func (e *env) dropRedisKeys(rdb *redis.Client, prefix string, closeClient bool) func() {
	return e.cleanup.add("redis "+prefix, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 500 {
				rdb.Del(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		if err := iter.Err(); err != nil {
			fmt.Fprintf(e.stderr, "tvbench: cleaning Redis keys %s*: %v\n", prefix, err)
		}
		if closeClient {
			_ = rdb.Close()
		}
	})
}

// checkpoint runs CHECKPOINT so that each measured side starts from a clean buffer cache state;
// it is skipped (with a note) when not allowed.
func (e *env) checkpoint(ctx context.Context, pool *pgxpool.Pool) {
	if !e.cfg.checkpoint {
		return
	}
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil && ctx.Err() == nil {
		fmt.Fprintf(e.stderr, "tvbench: CHECKPOINT refused (%v); continuing without (-checkpoint=false to silence)\n", err)
		e.cfg.checkpoint = false
	}
}

// profile starts a Go CPU profile named name when -cpuprofile-dir is set; the returned function
// stops it. Only one profile runs at a time.
func (e *env) profile(name string) func() {
	if e.cfg.cpuProfileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(e.cfg.cpuProfileDir, 0o755); err != nil {
		fmt.Fprintln(e.stderr, "tvbench: profile:", err)
		return func() {}
	}
	path := filepath.Join(e.cfg.cpuProfileDir, name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(e.stderr, "tvbench: profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		fmt.Fprintln(e.stderr, "tvbench: profile:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		fmt.Fprintf(e.stderr, "   ... CPU profile written to %s\n", path)
	}
}

// errInterrupted is returned when the run was cancelled.
var errInterrupted = errors.New("interrupted")

func ctxErr(ctx context.Context) error {
	if ctx.Err() != nil {
		return errInterrupted
	}
	return nil
}

// benchSecret is the server secret of the applications (and serve processes) the benchmarks
// start; benchAdminToken is an admin's access token under it.
var (
	benchSecret     = []byte("tvbench-secret-tvbench-secret-tvbench-secret")
	benchAdminToken = mustAdminToken()
)

func mustAdminToken() string {
	tokens, err := app.NewTokens(benchSecret, 24*time.Hour, 0)
	if err != nil {
		panic(err)
	}
	tok, _, err := tokens.IssueAccess(auth.AccessClaims{UserID: 1, Role: "admin", Session: "00000000-0000-7000-8000-000000000001"})
	if err != nil {
		panic(err)
	}
	return tok
}

// appUnderTest is the application as serve builds it (internal/app) over a scratch database,
// with its engine and views running and its API served on 127.0.0.1.
type appUnderTest struct {
	*app.App
	URL  string
	stop func()
}

// Close stops the API, the application and the Redis prefix (idempotent).
func (a *appUnderTest) Close() { a.stop() }

// withoutLimits turns the application's abuse limits off (a load from one address would meet
// them at once); only benchmarks that measure past them use it.
func withoutLimits(c *app.Config) { c.NoLimits = true }

// startApp builds and starts the application with the given projectors (nil: serve's), the
// options changing its config. Warnings go to stderr until Close, which silences them first (a
// stop on purpose is not a warning).
func (e *env) startApp(ctx context.Context, db *scratchDB, projectors []appProjector, opts ...func(*app.Config)) (*appUnderTest, error) {
	rdb, prefix, cleanRedis, err := e.newRedis(ctx)
	if err != nil {
		return nil, err
	}
	quiet := newMutableHandler(e.log.Handler())
	unmute := context.AfterFunc(ctx, quiet.mute) // an interrupt is not a warning
	cfg := app.Config{Pool: db.Pool, Redis: rdb, RedisPrefix: prefix, Secret: benchSecret,
		Projectors: projectors, ProjectionPollInterval: 0} // 0: the engine default, as serve
	for _, o := range opts {
		o(&cfg)
	}
	a, err := app.New(ctx, cfg, slog.New(quiet))
	if err != nil {
		cleanRedis()
		return nil, err
	}
	if err := a.Start(ctx); err != nil {
		_ = a.Close()
		cleanRedis()
		return nil, err
	}
	url, stopHTTP, err := serveOn(a.Handler())
	if err != nil {
		_ = a.Close()
		cleanRedis()
		return nil, err
	}
	var once sync.Once
	return &appUnderTest{App: a, URL: url, stop: func() {
		once.Do(func() {
			quiet.mute()
			unmute()
			stopHTTP()
			_ = a.Close()
			cleanRedis()
		})
	}}, nil
}

// serveOn serves h on 127.0.0.1 with serve's timeouts; the returned function stops it.
func serveOn(h nethttp.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &nethttp.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// mutableHandler is a slog handler that can be silenced, so that components stopped on purpose do
// not log their cancellation as a warning.
type mutableHandler struct {
	h     slog.Handler
	muted *atomic.Bool
}

func newMutableHandler(h slog.Handler) *mutableHandler {
	return &mutableHandler{h: h, muted: new(atomic.Bool)}
}

func (m *mutableHandler) mute() { m.muted.Store(true) }

func (m *mutableHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !m.muted.Load() && m.h.Enabled(ctx, l)
}

func (m *mutableHandler) Handle(ctx context.Context, r slog.Record) error {
	if m.muted.Load() {
		return nil
	}
	return m.h.Handle(ctx, r)
}

func (m *mutableHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &mutableHandler{h: m.h.WithAttrs(as), muted: m.muted}
}

func (m *mutableHandler) WithGroup(name string) slog.Handler {
	return &mutableHandler{h: m.h.WithGroup(name), muted: m.muted}
}

type sideResult struct {
	ops     int64
	elapsed time.Duration
	lat     latencies
}

func (s sideResult) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds()
}

// runWriters runs op from writers goroutines until d has passed and reports how many completed.
func runWriters(ctx context.Context, writers int, d time.Duration, op func(ctx context.Context, r *rand.Rand) error) (sideResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		lats     = make([][]time.Duration, writers)
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand()
			lat := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := op(ctx, r); err != nil {
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return sideResult{}, firstErr
	}
	if err := ctxErr(ctx); err != nil {
		return sideResult{}, err
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return sideResult{ops: int64(len(all)), elapsed: elapsed, lat: summarize(all)}, nil
}
