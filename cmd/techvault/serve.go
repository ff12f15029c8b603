package main

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"

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
	return a.Run(ctx)
}
