// Package mailpittest runs a real mailpit (an SMTP server that keeps what it receives and shows it
// through an HTTP API) for a test: its own process on free ports of 127.0.0.1 and its own
// database in the test's temporary directory, killed when the test ends. Tests send mail to
// SMTPHost():SMTPPort() and read it back with Messages, Message and WaitForMessage.
//
// The binary comes from `make tools` (bin/mailpit), or MAILPIT_BIN.
package mailpittest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/techvault/techvault/internal/testbin"
)

// startTimeout bounds how long mailpit may take to accept SMTP and HTTP connections.
const startTimeout = 15 * time.Second

// Server is a running mailpit. Its methods other than Stop and Restart may be called from any
// goroutine.
type Server struct {
	t        testing.TB
	bin      string
	dir      string
	smtpPort int
	httpPort int
	http     *http.Client

	// proc is the running process (nil while stopped); exited is closed when it exits.
	proc   *exec.Cmd
	exited chan struct{}
	output *syncBuffer
}

// Start runs mailpit for the test and stops it when the test ends. It fails the test when the
// binary is missing (run `make tools`) or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: testbin.Find(t, "mailpit", "MAILPIT_BIN"), dir: t.TempDir(), http: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(s.Stop)
	// A port found free may be taken by another process before mailpit binds it: try new ones.
	var err error
	for range 3 {
		s.smtpPort, s.httpPort = freePort(t), freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("mailpittest: %v", err)
	return nil
}

// SMTPHost is the host mailpit's SMTP server listens on.
func (s *Server) SMTPHost() string { return "127.0.0.1" }

// SMTPPort is the port mailpit's SMTP server listens on (plain SMTP, no authentication).
func (s *Server) SMTPPort() int { return s.smtpPort }

// APIURL is the base URL of mailpit's web UI and API.
func (s *Server) APIURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.httpPort) }

// Stop stops mailpit (its messages stay in its database for Restart). Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.proc.Process.Kill()
		<-s.exited
	}
	s.proc = nil
}

// Restart starts a stopped mailpit again on the same ports, with the messages it had.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("mailpittest: restarting: %v", err)
	}
}

// start runs the process and waits until both ports answer.
func (s *Server) start() error {
	smtpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.smtpPort))
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.httpPort))
	cmd := exec.Command(s.bin,
		"--smtp", smtpAddr,
		"--listen", httpAddr,
		"--database", filepath.Join(s.dir, "mailpit.db"),
		"--disable-version-check",
		"--smtp-disable-rdns",
		"--quiet",
	)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.proc, s.exited, s.output = cmd, exited, out

	deadline := time.Now().Add(startTimeout)
	for {
		if s.ready(smtpAddr) {
			return nil
		}
		select {
		case <-exited:
			s.proc = nil
			return fmt.Errorf("mailpit exited while starting (%s): %s", cmd.ProcessState, strings.TrimSpace(out.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("mailpit did not get ready within %s: %s", startTimeout, strings.TrimSpace(out.String()))
		}
	}
}

// ready reports whether the API says ready and the SMTP port accepts connections.
func (s *Server) ready(smtpAddr string) bool {
	resp, err := s.http.Get(s.APIURL() + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	conn, err := net.DialTimeout("tcp", smtpAddr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// Summary is a message in mailpit's list.
type Summary struct {
	// ID is mailpit's id of the message (for Message).
	ID string
	// MessageID is the Message-Id header without its angle brackets.
	MessageID string
	// From is the sender's address.
	From string
	// To are the recipients' addresses.
	To []string
	// Subject is the decoded subject.
	Subject string
	// Created is when mailpit received the message.
	Created time.Time
}

// Full is a message as mailpit parsed it.
type Full struct {
	// ID is mailpit's id of the message.
	ID string
	// MessageID is the Message-Id header without its angle brackets.
	MessageID string
	// From is the sender's address (FromName its display name).
	From     string
	FromName string
	// To are the recipients' addresses.
	To []string
	// Subject is the decoded subject.
	Subject string
	// Text and HTML are the decoded text/plain and text/html parts.
	Text string
	HTML string
}

// linkPattern finds absolute http(s) links in a text part.
var linkPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// Links returns the http(s) links of the text part, in order.
func (f Full) Links() []string { return linkPattern.FindAllString(f.Text, -1) }

// address is mailpit's JSON form of an address.
type address struct {
	Name    string
	Address string
}

func addresses(as []address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Address
	}
	return out
}

// Messages lists the messages mailpit holds, newest first (GET /api/v1/messages).
func (s *Server) Messages(ctx context.Context) ([]Summary, error) {
	var body struct {
		Messages []struct {
			ID        string
			MessageID string
			From      *address
			To        []address
			Subject   string
			Created   time.Time
		} `json:"messages"`
	}
	if err := s.get(ctx, "/api/v1/messages?limit=1000", &body); err != nil {
		return nil, err
	}
	out := make([]Summary, len(body.Messages))
	for i, m := range body.Messages {
		out[i] = Summary{ID: m.ID, MessageID: m.MessageID, To: addresses(m.To), Subject: m.Subject, Created: m.Created}
		if m.From != nil {
			out[i].From = m.From.Address
		}
	}
	return out, nil
}

// Message returns one message by mailpit's id (GET /api/v1/message/{ID}).
func (s *Server) Message(ctx context.Context, id string) (Full, error) {
	var m struct {
		ID        string
		MessageID string
		From      *address
		To        []address
		Subject   string
		Text      string
		HTML      string
	}
	if err := s.get(ctx, "/api/v1/message/"+url.PathEscape(id), &m); err != nil {
		return Full{}, err
	}
	f := Full{ID: m.ID, MessageID: m.MessageID, To: addresses(m.To), Subject: m.Subject, Text: m.Text, HTML: m.HTML}
	if m.From != nil {
		f.From, f.FromName = m.From.Address, m.From.Name
	}
	return f, nil
}

// Headers returns the headers of one message by mailpit's id (GET /api/v1/message/{ID}/headers).
func (s *Server) Headers(ctx context.Context, id string) (map[string][]string, error) {
	var h map[string][]string
	if err := s.get(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", &h); err != nil {
		return nil, err
	}
	return h, nil
}

// WaitForMessage polls mailpit until a message to the address to (compared case-insensitively)
// has arrived, and returns the newest such. It fails the test after timeout.
func (s *Server) WaitForMessage(t testing.TB, to string, timeout time.Duration) Full {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		list, err := s.Messages(ctx)
		if err != nil && ctx.Err() == nil {
			t.Fatalf("mailpittest: listing messages: %v", err)
		}
		for _, m := range list {
			for _, rcpt := range m.To {
				if strings.EqualFold(rcpt, to) {
					full, err := s.Message(ctx, m.ID)
					if err != nil {
						t.Fatalf("mailpittest: reading message %s: %v", m.ID, err)
					}
					return full
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("mailpittest: no message to %s within %s", to, timeout)
			return Full{}
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// get decodes the JSON answer of the API path into dst.
func (s *Server) get(ctx context.Context, path string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL()+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return fmt.Errorf("mailpit GET %s: %s: %s", path, resp.Status, strings.TrimSpace(msg.String()))
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return fmt.Errorf("mailpit GET %s: decoding: %w", path, err)
	}
	return nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailpittest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects the process's output, written by exec's goroutines.
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
