package main

import (
	"context"
	"encoding/json"
	"errors"
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
	threads   int
	conns     int
	duration  time.Duration
	warmup    time.Duration
	rounds    int
	products  int
	techvault string
}

func httpGetFlags(fs *flag.FlagSet, c *config) {
	fs.IntVar(&c.httpGet.threads, "http-get-threads", 2, "http-get: wrk threads (-t)")
	fs.IntVar(&c.httpGet.conns, "http-get-conns", 32, "http-get: wrk connections (-c)")
	fs.DurationVar(&c.httpGet.duration, "http-get-duration", 10*time.Second, "http-get: wrk duration per side per round (-d)")
	fs.DurationVar(&c.httpGet.warmup, "http-get-warmup", 3*time.Second, "http-get: wrk warm-up per side")
	fs.IntVar(&c.httpGet.rounds, "http-get-rounds", 3, "http-get: rounds (each measures both sides, order alternating)")
	fs.IntVar(&c.httpGet.products, "http-get-products", 1000, "http-get: products (the ids wrk cycles over)")
	fs.StringVar(&c.httpGet.techvault, "http-get-techvault", "", "http-get: techvault binary to run (empty: go build ./cmd/techvault into a temporary directory)")
}

func (c httpGetConfig) validate() error {
	if err := positive(map[string]int{"http-get-threads": c.threads, "http-get-conns": c.conns,
		"http-get-rounds": c.rounds, "http-get-products": c.products}); err != nil {
		return err
	}
	if c.duration < time.Second {
		return fmt.Errorf("-http-get-duration must be at least 1s (wrk counts whole seconds), got %s", c.duration)
	}
	return nil
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
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return res, errors.New("wrk is not installed (make bench installs it: apt-get install -y wrk)")
	}
	dir, err := os.MkdirTemp("", "tvbench-http-get-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	sides, err := startHTTPGetSides(ctx, env, c, dir, out)
	if err != nil {
		return res, err
	}
	defer sides.stop()
	cpuA := readCPU()
	ratio, rates, p99s, err := wrkRounds(ctx, env, wrk, c, sides, out)
	if err != nil {
		return res, err
	}
	cpuB := readCPU()
	fmt.Fprintf(out, "   access log: %s\n", sides.logSummary())
	x := row{figure: fmt.Sprintf("GET /products/{id}, wrk -c%d, INFO access logs", c.conns),
		measured: fmt.Sprintf("%s req/s, p99 %s", num(rates[0]), ms(p99s[0])),
		baseline: fmt.Sprintf("%s req/s, p99 %s (bare Gin)", num(rates[1]), ms(p99s[1])),
		ratio:    ratioStr(ratio), target: fmt.Sprintf(">= %.1f", httpGetTarget), met: ratio >= httpGetTarget}
	if !x.met {
		x.note = "both servers and wrk count as \"everything else\" in the CPU lines; rerun on a quiet machine"
	}
	fmt.Fprintf(out, "   (CPU lines: techvault serve, the bare process and wrk are all \"everything else\"; %s in all)\n", cpuUse(cpuA, cpuB))
	verdict(out, x)
	res.add(x)
	return res, nil
}

// httpGetSides are the two servers under load.
type httpGetSides struct {
	realURL, bareURL string
	logPath          string
	scriptPath       string
	stop             func()
}

func (s *httpGetSides) logSummary() string {
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

// startHTTPGetSides seeds a scratch database, starts techvault serve on it, collects its answers
// and starts the bare Gin process serving them.
func startHTTPGetSides(ctx context.Context, env *env, c httpGetConfig, dir string, out io.Writer) (*httpGetSides, error) {
	db, err := env.newDB(ctx, 8, nil)
	if err != nil {
		return nil, err
	}
	sides := &httpGetSides{logPath: filepath.Join(dir, "techvault-serve.log"), scriptPath: filepath.Join(dir, "ids.lua")}
	var stops []func()
	sides.stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	stops = append(stops, db.Close)
	ids, err := seedProducts(ctx, db, c.products)
	if err != nil {
		sides.stop()
		return nil, err
	}
	stop, err := startServe(ctx, env, c, db, sides, dir)
	stops = append(stops, stop)
	if err != nil {
		sides.stop()
		return nil, err
	}
	bodies, err := fetchBodies(ctx, sides.realURL, ids)
	if err != nil {
		sides.stop()
		return nil, err
	}
	stop, err = startBareGin(ctx, env, bodies, dir, sides)
	stops = append(stops, stop)
	if err == nil {
		err = writeWrkScript(sides.scriptPath, ids)
	}
	if err != nil {
		sides.stop()
		return nil, err
	}
	sample := bodies[ids[0]]
	fmt.Fprintf(out, "   checked: all %s products answered by techvault serve with %s: redis; the bare process serves those same\n",
		num(len(ids)), readSourceHeader)
	fmt.Fprintf(out, "   bodies (%d bytes for product %d, e.g. %s)\n", len(sample), ids[0], abbreviate([]byte(sample), 60))
	return sides, nil
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

// startServe builds (unless given) and starts `techvault serve` on the scratch database.
func startServe(ctx context.Context, env *env, c httpGetConfig, db *scratchDB, sides *httpGetSides, dir string) (func(), error) {
	bin := c.techvault
	if bin == "" {
		bin = filepath.Join(dir, "techvault")
		env.progress("http-get: go build -o %s ./cmd/techvault", bin)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/techvault")
		if b, err := build.CombinedOutput(); err != nil {
			return func() {}, fmt.Errorf("building techvault (run tvbench from the repository root, or give -http-get-techvault): %w\n%s", err, b)
		}
	}
	rdb, _, cleanRedis, err := env.newRedis(ctx)
	if err != nil {
		return func() {}, err
	}
	// serve keys its views by database; they go when the benchmark ends.
	dropKeys := env.dropRedisKeys(rdb, "techvault:"+db.Name+":", false)
	addr, err := freeAddr()
	if err != nil {
		return cleanRedis, err
	}
	logFile, err := os.Create(sides.logPath)
	if err != nil {
		return cleanRedis, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db.URL, "REDIS_URL="+env.cfg.redisURL, "HTTP_ADDR="+addr,
		"LOG_FORMAT=json", "LOG_LEVEL=info", "TECHVAULT_SECRET="+string(benchSecret))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	stopProc, err := startProcess(env, "techvault serve", cmd)
	stop := func() { stopProc(); _ = logFile.Close(); dropKeys(); cleanRedis() }
	if err != nil {
		return stop, err
	}
	sides.realURL = "http://" + addr
	return stop, waitHTTP(ctx, sides.realURL+"/healthz", 60*time.Second)
}

// startBareGin writes the bodies and starts this program's bare-gin subcommand on them.
func startBareGin(ctx context.Context, env *env, bodies map[int64]string, dir string, sides *httpGetSides) (func(), error) {
	path := filepath.Join(dir, "bodies.json")
	b, err := json.Marshal(bodies)
	if err != nil {
		return func() {}, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return func() {}, err
	}
	self, err := os.Executable()
	if err != nil {
		return func() {}, err
	}
	addr, err := freeAddr()
	if err != nil {
		return func() {}, err
	}
	cmd := exec.Command(self, bareGinCommand, "-addr", addr, "-bodies", path)
	cmd.Stderr = env.stderr
	stop, err := startProcess(env, "bare gin", cmd)
	if err != nil {
		return stop, err
	}
	sides.bareURL = "http://" + addr
	return stop, waitHTTP(ctx, sides.bareURL+"/api/v1/products/0", 30*time.Second)
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
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, base+"/api/v1/products/"+strconv.FormatInt(id, 10), nil)
	if err != nil {
		return "", "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("GET product %d: %w", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", fmt.Errorf("GET product %d: %w", id, err)
	}
	if resp.StatusCode != nethttp.StatusOK {
		return "", "", fmt.Errorf("GET product %d: status %d: %s", id, resp.StatusCode, abbreviate(b, 100))
	}
	return string(b), resp.Header.Get(readSourceHeader), nil
}
