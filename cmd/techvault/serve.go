package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/http/pprof"
	"net/url"
	"strings"
	"time"

	"github.com/techvault/techvault/auth/oidc"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/internal/app"
	"github.com/techvault/techvault/mail"
	"github.com/techvault/techvault/payments"
)

// appConfig is the part of the configuration the application is built from.
func appConfig(cfg Config) (app.Config, error) {
	ac := app.Config{
		DatabaseURL:            cfg.DatabaseURL,
		DBMaxConns:             cfg.DBMaxConns,
		ListingReads:           cfg.DBListingReads,
		RedisURL:               cfg.RedisURL,
		HTTPAddr:               cfg.HTTPAddr,
		Secret:                 cfg.Secret,
		CORSOrigins:            cfg.CORSOrigins,
		ProjectionPollInterval: cfg.ProjectionPollInterval,
		ShutdownTimeout:        cfg.ShutdownTimeout,
		UnpaidOrderTTL:         cfg.UnpaidOrderTTL,
		LinkBase:               cfg.LinkBase,
		SMTP: mail.Config{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUser, Password: cfg.SMTPPassword,
			From: cfg.SMTPFrom, TLS: cfg.SMTPTLS},
		Stripe: payments.Config{SecretKey: cfg.StripeSecretKey, WebhookSecret: cfg.StripeWebhookSecret, APIBase: cfg.StripeAPI},
		Google: oidc.Config{IssuerURL: cfg.GoogleIssuer, ClientID: cfg.GoogleClientID, ClientSecret: cfg.GoogleClientSecret,
			RedirectURL: cfg.GoogleRedirectURL, CookieSecure: strings.HasPrefix(cfg.GoogleRedirectURL, "https://")},
	}
	if cfg.CloudinaryURL != "" {
		u, err := url.Parse(cfg.CloudinaryURL)
		if err != nil || u.Scheme != "cloudinary" || u.User == nil {
			return ac, errors.New("CLOUDINARY_URL must be cloudinary://API_KEY:API_SECRET@CLOUD_NAME")
		}
		secret, _ := u.User.Password()
		ac.Cloudinary = images.Config{CloudName: u.Host, APIKey: u.User.Username(), APISecret: secret,
			UploadPrefix: cfg.CloudinaryAPI, Folder: "techvault"}
	}
	if len(ac.Secret) == 0 {
		return ac, errors.New("TECHVAULT_SECRET is not set: give the server a secret of at least 32 characters " +
			"(make run sets a development one)")
	}
	return ac, nil
}

// serve runs the API, the projectors and the Redis views until ctx is done (internal/app wires
// them and shuts them down in reverse order).
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	log.Info("starting techvault", "config", cfg.String())
	ac, err := appConfig(cfg)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, ac, log)
	if err != nil {
		return err
	}
	if cfg.DebugAddr != "" {
		_, stop, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return a.Run(ctx)
}

// serveDebug serves net/http/pprof's profiles on addr until stop is called; it returns the
// address it listens on.
func serveDebug(addr string, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("DEBUG_ADDR: %w", err)
	}
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &nethttp.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving profiles", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}
