package main

import (
	"io"
	"log/slog"
	nethttp "net/http"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		tty     bool
		check   func(Config) bool
		wantErr string
	}{
		{"defaults on a terminal", nil, true, func(c Config) bool {
			return c.HTTPAddr == ":8080" && c.LogFormat == "text" && c.LogLevel == "info" &&
				c.DBMaxConns == 20 && c.DBListingReads == 0 && c.ProjectionPollInterval == 2*time.Millisecond && c.Secret == nil && c.LinkBase == "http://localhost:8080"
		}, ""},
		{"json when not a terminal", nil, false, func(c Config) bool { return c.LogFormat == "json" }, ""},
		{"overrides", map[string]string{"HTTP_ADDR": ":9000", "DEBUG_ADDR": "127.0.0.1:6060", "LOG_FORMAT": "json", "LOG_LEVEL": "debug",
			"TECHVAULT_SECRET": strings.Repeat("s", 32), "SMTP_HOST": "mail", "SMTP_PORT": "1025", "DB_MAX_CONNS": "8", "DB_LISTING_READS": "6", "PROJECTION_POLL_INTERVAL": "50ms", "SHUTDOWN_TIMEOUT": "3s"}, true,
			func(c Config) bool {
				return c.HTTPAddr == ":9000" && c.DebugAddr == "127.0.0.1:6060" && c.LogFormat == "json" && c.LogLevel == "debug" && string(c.Secret) == strings.Repeat("s", 32) && c.SMTPHost == "mail" && c.SMTPPort == 1025 &&
					c.DBMaxConns == 8 && c.DBListingReads == 6 && c.ProjectionPollInterval == 50*time.Millisecond && c.ShutdownTimeout == 3*time.Second
			}, ""},
		{"bad log format", map[string]string{"LOG_FORMAT": "xml"}, true, nil, "LOG_FORMAT"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, true, nil, "LOG_LEVEL"},
		{"bad pool size", map[string]string{"DB_MAX_CONNS": "two"}, true, nil, "DB_MAX_CONNS"},
		{"no listing reads", map[string]string{"DB_LISTING_READS": "0"}, true, nil, "DB_LISTING_READS"},
		{"listing reads not a number", map[string]string{"DB_LISTING_READS": "four"}, true, nil, "DB_LISTING_READS"},
		{"pool too small", map[string]string{"DB_MAX_CONNS": "1"}, true, nil, "DB_MAX_CONNS"},
		{"bad poll interval", map[string]string{"PROJECTION_POLL_INTERVAL": "soon"}, true, nil, "PROJECTION_POLL_INTERVAL"},
		{"negative shutdown timeout", map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, true, nil, "SHUTDOWN_TIMEOUT"},
		{"short secret", map[string]string{"TECHVAULT_SECRET": "short"}, true, nil, "TECHVAULT_SECRET"},
		{"bad smtp port", map[string]string{"SMTP_PORT": "mail"}, true, nil, "SMTP_PORT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string { return tc.env[k] }, tc.tty)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("config = %+v, err %v", c, err)
			}
		})
	}
}

func TestConfigStringMasksSecrets(t *testing.T) {
	c, err := loadConfig(func(k string) string {
		return map[string]string{"TECHVAULT_SECRET": "topsecret-topsecret-topsecret-topsecret", "SMTP_PASSWORD": "mailpw",
			"CLOUDINARY_URL": "cloudinary://key:cloudpw@demo", "DATABASE_URL": "postgres://u:pw@db/x", "REDIS_URL": "redis://:rpw@r:6379/0"}[k]
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	for _, secret := range []string{"topsecret", "pw@", "rpw", "mailpw", "cloudpw"} {
		if strings.Contains(s, secret) {
			t.Fatalf("%q leaks %q", s, secret)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	var out strings.Builder
	err := run(t.Context(), []string{"frobnicate"}, func(string) string { return "" }, &out)
	if err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("err = %v", err)
	}
	if err := run(t.Context(), nil, func(string) string { return "" }, &out); err == nil || !strings.Contains(out.String(), "usage") {
		t.Fatalf("no command: err %v, out %q", err, out.String())
	}
}

func TestDebugAddrServesProfiles(t *testing.T) {
	addr, stop, err := serveDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/profile?seconds=1"} {
		res, err := nethttp.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != nethttp.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", path, res.StatusCode, len(body))
		}
	}
	if _, _, err := serveDebug(addr, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a second listener on the same address: no error")
	}
}
