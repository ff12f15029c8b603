package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is every setting, read once from the environment (see README and .env.example).
type Config struct {
	DatabaseURL            string
	RedisURL               string
	HTTPAddr               string
	LogFormat              string // text or json
	LogLevel               string
	AdminToken             string
	CORSOrigins            []string
	DBMaxConns             int32
	ProjectionPollInterval time.Duration
	ShutdownTimeout        time.Duration
}

func loadConfig(getenv func(string) string, stderrIsTerminal bool) (Config, error) {
	c := Config{
		DatabaseURL:            "postgres://postgres@127.0.0.1:5432/techvault?sslmode=disable",
		RedisURL:               "redis://127.0.0.1:6379/0",
		HTTPAddr:               ":8080",
		LogFormat:              "json",
		LogLevel:               "info",
		DBMaxConns:             20,
		ProjectionPollInterval: 2 * time.Millisecond,
		ShutdownTimeout:        15 * time.Second,
	}
	if stderrIsTerminal {
		c.LogFormat = "text"
	}
	str := func(key string, dst *string) {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			*dst = v
		}
	}
	str("DATABASE_URL", &c.DatabaseURL)
	str("REDIS_URL", &c.RedisURL)
	str("HTTP_ADDR", &c.HTTPAddr)
	str("LOG_FORMAT", &c.LogFormat)
	str("LOG_LEVEL", &c.LogLevel)
	c.AdminToken = getenv("ADMIN_TOKEN")
	for _, o := range strings.Split(getenv("CORS_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CORSOrigins = append(c.CORSOrigins, o)
		}
	}

	if v := getenv("DB_MAX_CONNS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 4 {
			return c, fmt.Errorf("DB_MAX_CONNS must be a whole number of at least 4, got %q", v)
		}
		c.DBMaxConns = int32(n)
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"PROJECTION_POLL_INTERVAL", &c.ProjectionPollInterval}, {"SHUTDOWN_TIMEOUT", &c.ShutdownTimeout}} {
		if v := getenv(d.key); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				return c, fmt.Errorf("%s must be a positive duration such as 10ms, got %q", d.key, v)
			}
			*d.dst = x
		}
	}
	return c, c.Validate()
}

// Validate checks the settings.
func (c Config) Validate() error {
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("LOG_FORMAT must be text or json, got %q", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if _, err := url.Parse(c.DatabaseURL); err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	if _, err := url.Parse(c.RedisURL); err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	return nil
}

// String masks secrets, so the config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("database=%s redis=%s http=%s log=%s/%s admin_token=%s db_max_conns=%d poll=%s",
		maskURL(c.DatabaseURL), maskURL(c.RedisURL), c.HTTPAddr, c.LogFormat, c.LogLevel,
		mask(c.AdminToken), c.DBMaxConns, c.ProjectionPollInterval)
}

func mask(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "****"
}

func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}
