package main

import (
	"context"
	"log/slog"

	"github.com/techvault/techvault/internal/app"
)

// appConfig is the part of the configuration the application is built from.
func appConfig(cfg Config) app.Config {
	return app.Config{
		DatabaseURL:            cfg.DatabaseURL,
		DBMaxConns:             cfg.DBMaxConns,
		RedisURL:               cfg.RedisURL,
		HTTPAddr:               cfg.HTTPAddr,
		AdminToken:             cfg.AdminToken,
		CORSOrigins:            cfg.CORSOrigins,
		ProjectionPollInterval: cfg.ProjectionPollInterval,
		ShutdownTimeout:        cfg.ShutdownTimeout,
	}
}

// serve runs the API, the projectors and the Redis views until ctx is done (internal/app wires
// them and shuts them down in reverse order).
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	log.Info("starting techvault", "config", cfg.String())
	if cfg.AdminToken == "" {
		log.Warn("ADMIN_TOKEN is not set: admin routes are disabled")
	}
	a, err := app.New(ctx, appConfig(cfg), log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
