// Package stripetest runs a real stripe-mock (Stripe's own mock of its API, built from its
// OpenAPI spec) for a test, and builds webhook events signed as Stripe signs them.
//
// stripe-mock is stateless: it validates each request against the spec and answers fixture data
// (it echoes some create parameters such as amount and currency, not metadata, and a read
// answers the id asked with fixture fields). Payment outcomes therefore come from signed
// webhooks (Webhook, SignedWebhook), not from the mock.
//
// The binary comes from `make tools` (bin/stripe-mock), or STRIPE_MOCK_BIN.
package stripetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techvault/techvault/internal/testbin"
)

// SecretKey is a test-mode API key stripe-mock accepts (it accepts any sk_test_ key).
const SecretKey = "sk_test_stripetest"

// WebhookSecret is a webhook signing secret for tests.
const WebhookSecret = "whsec_stripetest"

// startTimeout bounds how long stripe-mock may take to load its spec and listen (about 2s).
const startTimeout = 30 * time.Second

// Mock is a running stripe-mock.
type Mock struct {
	url    string
	proc   *exec.Cmd
	exited chan struct{}
}

// listening is the line stripe-mock prints once its HTTP listener is bound.
var listening = regexp.MustCompile(`Listening for HTTP at address: (127\.0\.0\.1:\d+)`)

// StartMock runs stripe-mock for the test and kills it when the test ends. Both its HTTP and
// HTTPS listeners are bound to 127.0.0.1 on ports the system picks (stripe-mock prints them),
// so no port can be taken between choosing and binding. It fails the test when the binary is
// missing (run `make tools`) or does not start.
func StartMock(t testing.TB) *Mock {
	t.Helper()
	bin := testbin.Find(t, "stripe-mock", "STRIPE_MOCK_BIN")
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stripetest: %v", err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("stripetest: starting %s: %v", bin, err)
	}
	m := &Mock{proc: cmd, exited: make(chan struct{})}

	// Read stdout until the HTTP address shows, then drain it so the process never blocks.
	addr := make(chan string, 1)
	output := &syncBuffer{}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			_, _ = output.Write([]byte(line + "\n"))
			if match := listening.FindStringSubmatch(line); match != nil {
				select {
				case addr <- match[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(m.stop)

	select {
	case a := <-addr:
		m.url = "http://" + a
	case <-m.exited:
		t.Fatalf("stripetest: stripe-mock exited while starting (%s): %s %s", cmd.ProcessState,
			strings.TrimSpace(output.String()), strings.TrimSpace(stderr.String()))
	case <-time.After(startTimeout):
		t.Fatalf("stripetest: stripe-mock printed no HTTP address within %s: %s", startTimeout,
			strings.TrimSpace(output.String()))
	}
	// The listener is bound once the address is printed; wait until requests are served too.
	if err := m.waitReady(); err != nil {
		t.Fatalf("stripetest: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return m
}

// URL is stripe-mock's HTTP base URL ("http://127.0.0.1:port"): payments.Config.APIBase.
func (m *Mock) URL() string { return m.url }

// waitReady polls an authenticated read until it answers 200.
func (m *Mock) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		req, err := http.NewRequest(http.MethodGet, m.url+"/v1/balance", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+SecretKey)
		resp, err := client.Do(req)
		last := ""
		if err != nil {
			last = err.Error()
		} else {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		select {
		case <-m.exited:
			return errors.New("stripe-mock exited while starting")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stripe-mock at %s did not answer 200 within %s (last: %s)", m.url, startTimeout, last)
		}
	}
}

func (m *Mock) stop() {
	_ = m.proc.Process.Kill()
	<-m.exited
}

// syncBuffer collects a process's output, written by other goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
