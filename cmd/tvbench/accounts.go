package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/internal/app"
)

// benchPassword is the password of every account the benchmarks register: scratch accounts in
// scratch databases, never a real one.
const benchPassword = "tvbench-Scratch-Passw0rd"

// benchEmail is the address of the benchmarks' i-th account.
func benchEmail(i int) string { return fmt.Sprintf("tvbench-user-%d@example.com", i) }

// accountReply is the API's answer to a registration.
type accountReply struct {
	UserID int64  `json:"user_id"`
	Role   string `json:"role"`
}

// loginBody is the body of POST /api/v1/auth/login for account i.
func loginBody(i int) []byte {
	b, _ := json.Marshal(map[string]string{"email": benchEmail(i), "password": benchPassword})
	return b
}

// registerUser registers account i through POST /api/v1/auth/register.
func registerUser(ctx context.Context, client *nethttp.Client, base string, i int) (accountReply, error) {
	body, err := json.Marshal(map[string]string{"first_name": "Bench", "last_name": fmt.Sprintf("User%d", i),
		"email": benchEmail(i), "password": benchPassword})
	if err != nil {
		return accountReply{}, err
	}
	var reply accountReply
	if err := postJSON(ctx, client, base+"/api/v1/auth/register", "", body, nethttp.StatusCreated, &reply); err != nil {
		return reply, fmt.Errorf("registering account %d: %w", i, err)
	}
	return reply, nil
}

// registerUsers registers accounts 0..n-1, workers at a time (each registration hashes a password).
func registerUsers(ctx context.Context, client *nethttp.Client, base string, n, workers int) error {
	return parallel(n, workers, func(i int) error {
		_, err := registerUser(ctx, client, base, i)
		return err
	})
}

// parallel runs fn(0..n-1) on workers goroutines, each taking the next index when it is free;
// it stops handing out indexes at the first error and returns it.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// customerTokenTTL is the lifetime of the access tokens the benchmarks issue: longer than any run.
const customerTokenTTL = 24 * time.Hour

// issueToken issues an access token for an account registered through the API, under the
// server's secret, as POST /auth/login issues them but for customerTokenTTL.
func issueToken(acc accountReply) (string, error) {
	tokens, err := app.NewTokens(benchSecret, customerTokenTTL, 0)
	if err != nil {
		return "", err
	}
	token, _, err := tokens.IssueAccess(auth.AccessClaims{UserID: acc.UserID, Role: acc.Role, Session: uuid.Must(uuid.NewV7()).String()})
	return token, err
}

// loadClient is an HTTP client for conns concurrent keep-alive clients of one server.
func loadClient(conns int) *nethttp.Client {
	tr := &nethttp.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	return &nethttp.Client{Transport: tr, Timeout: 30 * time.Second}
}

// postJSON posts body as JSON to url (with the access token unless it is empty), expects the
// status want and decodes the answer into reply unless it is nil. Errors quote the answer, never
// the request (it may hold a password).
func postJSON(ctx context.Context, client *nethttp.Client, url, token string, body []byte, want int, reply any) error {
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	b, _, err := do(client, req, token, want)
	if err != nil || reply == nil {
		return err
	}
	if err := json.Unmarshal(b, reply); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	return nil
}

// getOK gets url (with the access token unless it is empty), expects 200 and returns the body, as
// it came, and the answer's headers.
func getOK(ctx context.Context, client *nethttp.Client, url, token string) ([]byte, nethttp.Header, error) {
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	return do(client, req, token, nethttp.StatusOK)
}

// do sends req, reads the whole answer (so that the connection is reused) and checks its status.
func do(client *nethttp.Client, req *nethttp.Request, token string, want int) ([]byte, nethttp.Header, error) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != want {
		return nil, resp.Header, &statusError{status: resp.StatusCode, body: abbreviate(b, 120)}
	}
	return b, resp.Header, nil
}

// statusError is an answer with another status than the one expected.
type statusError struct {
	status int
	body   string // abbreviated
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }
