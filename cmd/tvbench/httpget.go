package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/techvault/techvault/eventstore"
)

// httpGetConfig holds the http-get benchmark's flags.
type httpGetConfig struct {
	wrkLoad
	products  int
	techvault string
}

func httpGetFlags(fs *flag.FlagSet, c *config) {
	wrkLoadFlags(fs, "http-get", &c.httpGet.wrkLoad)
	fs.IntVar(&c.httpGet.products, "http-get-products", 1000, "http-get: products (the ids wrk cycles over)")
	fs.StringVar(&c.httpGet.techvault, "http-get-techvault", "", "http-get, users-me, cart-get, catalog-list, catalog-search, category-page: techvault binary to run (empty: go build ./cmd/techvault into a temporary directory)")
}

func (c httpGetConfig) validate() error {
	if err := positive(map[string]int{"http-get-products": c.products}); err != nil {
		return err
	}
	return c.wrkLoad.validate("http-get")
}

const httpGetTarget = 0.7

// readSourceHeader is the API's header saying where a read was answered from (redis, postgres).
const readSourceHeader = "X-Read-Source"

func benchHTTPGet(ctx context.Context, env *env, cfg config, out io.Writer) (result, error) {
	c := cfg.httpGet
	fmt.Fprintf(out, "== http-get: GET /api/v1/products/{id} driven by wrk -t%d -c%d (a separate process, ids cycling over %s products)\n",
		c.threads, c.conns, num(c.products))
	fmt.Fprintf(out, "   against the real `techvault serve` process (LOG_FORMAT=json LOG_LEVEL=info: one access-log line per request,\n")
	fmt.Fprintf(out, "   written to a file) vs a bare Gin process (`tvbench %s`: no middleware, no log) answering the very bytes the\n", bareGinCommand)
	fmt.Fprintf(out, "   real one served; %d rounds x %s per side (order alternating) after %s warm-up per side\n", c.rounds, c.duration, c.warmup)
	var res result
	wrk, dir, remove, err := wrkWorkspace("http-get")
	if err != nil {
		return res, err
	}
	defer remove()
	cat, err := startServedCatalog(ctx, env, c.techvault, c.products, dir, out)
	if err != nil {
		return res, err
	}
	defer cat.stop()
	bareURL, err := startBareGin(ctx, env, cat, dir, out)
	if err != nil {
		return res, err
	}
	cpuA := readCPU()
	f, err := wrkRounds(ctx, env, wrk, c.wrkLoad, [2]wrkTarget{{name: "techvault", url: cat.url, script: cat.scriptPath},
		{name: "bare Gin", url: bareURL, script: cat.scriptPath}}, out)
	if err != nil {
		return res, err
	}
	cpuB := readCPU()
	fmt.Fprintf(out, "   access log: %s\n", cat.logSummary())
	x := row{figure: fmt.Sprintf("GET /products/{id}, wrk -c%d, INFO access logs", c.conns),
		measured: fmt.Sprintf("%s req/s, p99 %s", num(f.rates[0]), ms(f.p99s[0])),
		baseline: fmt.Sprintf("%s req/s, p99 %s (bare Gin)", num(f.rates[1]), ms(f.p99s[1])),
		ratio:    ratioStr(f.ratio), target: fmt.Sprintf(">= %.1f", httpGetTarget), met: f.ratio >= httpGetTarget}
	if !x.met {
		x.note = "both servers and wrk count as \"everything else\" in the CPU lines; rerun on a quiet machine"
	}
	fmt.Fprintf(out, "   (CPU lines: techvault serve, the bare process and wrk are all \"everything else\"; %s in all)\n", cpuUse(cpuA, cpuB))
	verdict(out, x)
	res.add(x)
	return res, nil
}

// servedCatalog is the real `techvault serve` process (LOG_FORMAT=json LOG_LEVEL=info, its output
// written to a file) on a scratch database seeded with products, every one of them checked to be
// answered from Redis, and a wrk script cycling over them. http-get and users-me load it.
type servedCatalog struct {
	db         *scratchDB
	url        string
	logPath    string
	scriptPath string
	ids        []int64
	bodies     map[int64]string // each product's answer, as served
	stops      []func()
}

// stop stops what was started, last first (the server, then the database).
func (s *servedCatalog) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

// startServedCatalog seeds a scratch database with products, starts techvault serve on it (bin,
// or a fresh build into dir when empty), reads every product back and writes the wrk script.
func startServedCatalog(ctx context.Context, env *env, bin string, products int, dir string, out io.Writer) (*servedCatalog, error) {
	db, err := env.newDB(ctx, 8, nil)
	if err != nil {
		return nil, err
	}
	s := &servedCatalog{db: db, logPath: filepath.Join(dir, "techvault-serve.log"), scriptPath: filepath.Join(dir, "ids.lua"),
		stops: []func(){db.Close}}
	if err := s.start(ctx, env, bin, products, dir); err != nil {
		s.stop()
		return nil, err
	}
	fmt.Fprintf(out, "   checked: all %s products answered by techvault serve with %s: redis\n", num(len(s.ids)), readSourceHeader)
	return s, nil
}

func (s *servedCatalog) start(ctx context.Context, env *env, bin string, products int, dir string) error {
	ids, err := seedProducts(ctx, s.db, products)
	if err != nil {
		return err
	}
	s.ids = ids
	if bin, err = techvaultBinary(ctx, env, bin, dir); err != nil {
		return err
	}
	if err := s.serve(ctx, env, bin); err != nil {
		return err
	}
	if s.bodies, err = fetchBodies(ctx, s.url, ids); err != nil {
		return err
	}
	return writeWrkScript(s.scriptPath, ids)
}

func (s *servedCatalog) logSummary() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	levels := map[string]int{}
	var sample, other string
	for _, l := range lines {
		var rec struct{ Level, Msg, Path string }
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Msg != "request" {
			continue
		}
		levels[rec.Level]++
		if rec.Level == "INFO" {
			sample = l
		} else if other == "" {
			other = l
		}
	}
	text := fmt.Sprintf("%s lines (%s bytes) written by techvault serve; request lines by level %v; e.g. %s",
		num(len(lines)), num(len(b)), levels, abbreviate([]byte(sample), 100))
	if other != "" {
		text += "\n   first request line not at INFO: " + abbreviate([]byte(other), 200)
	}
	return text
}

func seedProducts(ctx context.Context, db *scratchDB, n int) ([]int64, error) {
	store, err := eventstore.New(eventstore.Config{Pool: db.Pool})
	if err != nil {
		return nil, err
	}
	products, err := createLagProducts(ctx, store, n)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(products))
	for i, p := range products {
		ids[i] = p.id
	}
	return ids, nil
}

// techvaultBinary returns bin, or builds ./cmd/techvault into dir when bin is empty.
func techvaultBinary(ctx context.Context, env *env, bin, dir string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	bin = filepath.Join(dir, "techvault")
	env.progress("go build -o %s ./cmd/techvault", bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/techvault")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building techvault (run tvbench from the repository root, or give -http-get-techvault): %w\n%s", err, b)
	}
	return bin, nil
}

// serve starts `techvault serve` on the scratch database and waits until it answers.
func (s *servedCatalog) serve(ctx context.Context, env *env, bin string) error {
	rdb, _, cleanRedis, err := env.newRedis(ctx)
	if err != nil {
		return err
	}
	s.stops = append(s.stops, cleanRedis)
	// serve keys its views (and its rate limits) by database; they go when the benchmark ends.
	s.stops = append(s.stops, env.dropRedisKeys(rdb, "techvault:"+s.db.Name+":", false))
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	s.stops = append(s.stops, func() { _ = logFile.Close() })
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+s.db.URL, "REDIS_URL="+env.cfg.redisURL, "HTTP_ADDR="+addr,
		"LOG_FORMAT=json", "LOG_LEVEL=info", "TECHVAULT_SECRET="+string(benchSecret))
	if env.cfg.cpuProfileDir != "" {
		// The served process's profiles, to be taken while it is measured (go tool pprof URL).
		debug, err := freeAddr()
		if err != nil {
			return err
		}
		cmd.Env = append(cmd.Env, "DEBUG_ADDR="+debug)
		env.progress("techvault serve's profiles: go tool pprof 'http://%s/debug/pprof/profile?seconds=5'", debug)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	stopProc, err := startProcess(env, "techvault serve", cmd)
	s.stops = append(s.stops, stopProc)
	if err != nil {
		return err
	}
	s.url = "http://" + addr
	return waitHTTP(ctx, s.url+"/healthz", 60*time.Second)
}

// startBareGin writes the served bodies and starts this program's bare-gin subcommand on them; it
// returns its URL (the process stops with cat).
func startBareGin(ctx context.Context, env *env, cat *servedCatalog, dir string, out io.Writer) (string, error) {
	path := filepath.Join(dir, "bodies.json")
	b, err := json.Marshal(cat.bodies)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(self, bareGinCommand, "-addr", addr, "-bodies", path)
	cmd.Stderr = env.stderr
	stop, err := startProcess(env, "bare gin", cmd)
	cat.stops = append(cat.stops, stop)
	if err != nil {
		return "", err
	}
	url := "http://" + addr
	if err := waitHTTP(ctx, url+"/api/v1/products/0", 30*time.Second); err != nil {
		return "", err
	}
	sample := cat.bodies[cat.ids[0]]
	fmt.Fprintf(out, "   the bare process serves those same bodies (%d bytes for product %d, e.g. %s)\n",
		len(sample), cat.ids[0], abbreviate([]byte(sample), 60))
	return url, nil
}

// startProcess starts cmd; the returned function (also registered as a cleanup) stops it with
// SIGTERM, then SIGKILL after 15 s.
func startProcess(env *env, name string, cmd *exec.Cmd) (func(), error) {
	if err := cmd.Start(); err != nil {
		return func() {}, fmt.Errorf("starting %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return env.cleanup.add(name, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}), nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers at all (any status).
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := nethttp.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %w", url, timeout, err)
		}
		if ctx.Err() != nil {
			return errInterrupted
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetchBodies reads every product from the real server until all come from Redis (30 s at most:
// the projector and the view catch up with the seed meanwhile).
func fetchBodies(ctx context.Context, base string, ids []int64) (map[int64]string, error) {
	client := &nethttp.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	bodies := make(map[int64]string, len(ids))
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			body, source, err := getProduct(ctx, client, base, id)
			if source == "redis" && err == nil {
				bodies[id] = body
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("product %d was not answered from Redis within 30s (source %q, error %w)", id, source, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return bodies, nil
}

func getProduct(ctx context.Context, client *nethttp.Client, base string, id int64) (string, string, error) {
	b, h, err := getOK(ctx, client, base+"/api/v1/products/"+strconv.FormatInt(id, 10), "")
	if err != nil {
		return "", "", fmt.Errorf("GET product %d: %w", id, err)
	}
	return string(b), h.Get(readSourceHeader), nil
}
