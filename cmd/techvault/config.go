package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is every setting, read once from the environment (see README and .env.example).
type Config struct {
	DatabaseURL string
	RedisURL    string
	HTTPAddr    string
	// DebugAddr, when set, serves Go's net/http/pprof profiles there (DEBUG_ADDR; off by default:
	// bind it to a loopback or private address only).
	DebugAddr string
	LogFormat string // text or json
	LogLevel  string
	// Secret is TECHVAULT_SECRET: the root of the server's keys (see internal/app.Config.Secret).
	Secret []byte
	// SMTP* configure the account mail; LinkBase is where its links point.
	SMTPHost, SMTPUser, SMTPPassword, SMTPFrom, SMTPTLS string
	SMTPPort                                            int
	LinkBase                                            string
	// CloudinaryURL is cloudinary://KEY:SECRET@CLOUD (Cloudinary's own form); CloudinaryAPI
	// overrides its API base (a local stand-in).
	CloudinaryURL, CloudinaryAPI string
	// Stripe* configure payments (STRIPE_API_URL: another API base, a local stripe-mock).
	StripeSecretKey, StripeWebhookSecret, StripeAPI string
	// Google* configure sign-in with Google.
	GoogleClientID, GoogleClientSecret, GoogleRedirectURL, GoogleIssuer string
	CORSOrigins                                                         []string
	DBMaxConns                                                          int32
	// DBListingReads: product listing and search reads of Postgres at once (DB_LISTING_READS; 0:
	// twice GOMAXPROCS).
	DBListingReads         int
	ProjectionPollInterval time.Duration
	ShutdownTimeout        time.Duration
	// UnpaidOrderTTL: how long an order may wait for payment (UNPAID_ORDER_TTL).
	UnpaidOrderTTL time.Duration
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
	str("DEBUG_ADDR", &c.DebugAddr)
	str("LOG_FORMAT", &c.LogFormat)
	str("LOG_LEVEL", &c.LogLevel)
	if v := getenv("TECHVAULT_SECRET"); v != "" {
		if len(v) < 32 {
			return c, errors.New("TECHVAULT_SECRET must have at least 32 characters (e.g. openssl rand -base64 48)")
		}
		c.Secret = []byte(v)
	}
	c.SMTPPort = 25
	c.SMTPFrom = "Tech Vault <no-reply@techvault.local>"
	str("SMTP_HOST", &c.SMTPHost)
	str("SMTP_USER", &c.SMTPUser)
	c.SMTPPassword = getenv("SMTP_PASSWORD")
	str("SMTP_FROM", &c.SMTPFrom)
	str("SMTP_TLS", &c.SMTPTLS)
	if v := getenv("SMTP_PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("SMTP_PORT must be a port number, got %q", v)
		}
		c.SMTPPort = n
	}
	c.LinkBase = "http://localhost:8080"
	str("LINK_BASE_URL", &c.LinkBase)
	str("CLOUDINARY_URL", &c.CloudinaryURL)
	str("CLOUDINARY_API_URL", &c.CloudinaryAPI)
	c.StripeSecretKey = strings.TrimSpace(getenv("STRIPE_SECRET_KEY"))
	c.StripeWebhookSecret = strings.TrimSpace(getenv("STRIPE_WEBHOOK_SECRET"))
	str("STRIPE_API_URL", &c.StripeAPI)
	str("GOOGLE_CLIENT_ID", &c.GoogleClientID)
	c.GoogleClientSecret = getenv("GOOGLE_CLIENT_SECRET")
	str("GOOGLE_REDIRECT_URL", &c.GoogleRedirectURL)
	str("GOOGLE_ISSUER_URL", &c.GoogleIssuer)
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
	if v := getenv("DB_LISTING_READS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return c, fmt.Errorf("DB_LISTING_READS must be a whole number from 1 to 1000, got %q", v)
		}
		c.DBListingReads = n
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"PROJECTION_POLL_INTERVAL", &c.ProjectionPollInterval}, {"SHUTDOWN_TIMEOUT", &c.ShutdownTimeout},
		{"UNPAID_ORDER_TTL", &c.UnpaidOrderTTL}} {
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
	return fmt.Sprintf("database=%s redis=%s http=%s debug=%s log=%s/%s secret=%s smtp=%s:%d db_max_conns=%d db_listing_reads=%d poll=%s cloudinary=%s google=%v",
		maskURL(c.DatabaseURL), maskURL(c.RedisURL), c.HTTPAddr, c.DebugAddr, c.LogFormat, c.LogLevel,
		mask(string(c.Secret)), c.SMTPHost, c.SMTPPort, c.DBMaxConns, c.DBListingReads, c.ProjectionPollInterval,
		maskURL(c.CloudinaryURL), c.GoogleClientID != "")
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
