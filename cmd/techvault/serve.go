package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/eventstore"
	api "github.com/techvault/techvault/http"
	"github.com/techvault/techvault/projections"
)

// app is everything serve wires together.
type app struct {
	pool   *pgxpool.Pool
	redis  *redis.Client
	store  *eventstore.Store
	engine *projections.Engine
	cards  *projections.ProductCards
	server *api.Server
}

func newStore(pool *pgxpool.Pool) (*eventstore.Store, *commands.Catalog, error) {
	store, err := eventstore.New(eventstore.Config{Pool: pool})
	if err != nil {
		return nil, nil, err
	}
	ids := store.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
	return store, commands.NewCatalog(store, ids), nil
}

func buildApp(ctx context.Context, cfg Config, log *slog.Logger) (*app, error) {
	pool, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	ropt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	// Redis is derived data: short timeouts, and the API falls back to Postgres when it is down.
	ropt.DialTimeout, ropt.ReadTimeout, ropt.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	ropt.MaxRetries = 1
	rdb := redis.NewClient(ropt)
	redis.SetLogger(redisLogger{log})

	store, catalog, err := newStore(pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	engine, err := projections.NewEngine(projections.EngineConfig{
		DB:           stdlib.OpenDBFromPool(pool),
		Projectors:   projections.All(),
		Logger:       log,
		PollInterval: cfg.ProjectionPollInterval,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	// Views are keyed by database, so servers on different databases can share one Redis.
	prefix := "techvault:" + pool.Config().ConnConfig.Database + ":"
	cards, err := projections.NewProductCards(projections.ProductCardsConfig{Pool: pool, Redis: rdb, Prefix: prefix, Logger: log})
	if err != nil {
		pool.Close()
		return nil, err
	}
	server, err := api.New(api.Config{
		Logger:      log,
		Pool:        pool,
		Redis:       rdb,
		Store:       store,
		Catalog:     catalog,
		Queries:     projections.NewCatalogQueries(pool),
		Cards:       cards,
		Checkpoints: projections.NewCheckpoints(pool),
		Projectors:  projections.All(),
		AdminToken:  cfg.AdminToken,
		CORSOrigins: cfg.CORSOrigins,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &app{pool: pool, redis: rdb, store: store, engine: engine, cards: cards, server: server}, nil
}

// serve runs the API, the projectors and the Redis views until ctx is done, then shuts down in
// reverse order: stop taking requests, finish in-flight ones, stop projectors, close pools.
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	log.Info("starting techvault", "config", cfg.String())
	if cfg.AdminToken == "" {
		log.Warn("ADMIN_TOKEN is not set: admin routes are disabled")
	}
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.pool.Close()
	defer a.redis.Close()
	if dropped, err := projections.DropLeftoverShadows(ctx, a.pool, projections.All()); err != nil {
		log.Warn("cannot drop leftover rebuild tables", "err", err)
	} else if len(dropped) > 0 {
		log.Info("dropped tables left by an interrupted rebuild", "tables", dropped)
	}

	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Add(3)
	go func() {
		defer wg.Done()
		_ = a.store.RunSealer(bgCtx, eventstore.DefaultSealInterval, log)
	}()
	go func() {
		defer wg.Done()
		if err := a.engine.Run(bgCtx); err != nil {
			errs <- fmt.Errorf("projection engine: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		_ = a.cards.Run(bgCtx)
	}()

	srv := &nethttp.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           a.server.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		log.Info("http listening", "addr", cfg.HTTPAddr)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
			errs <- fmt.Errorf("http: %w", err)
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errs:
		log.Error("stopping after failure", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("http shutdown", "err", err)
	}
	a.server.Shutdown()
	if err := a.engine.Close(); err != nil {
		log.Error("projection engine shutdown", "err", err)
	}
	stopBg()
	wg.Wait()
	log.Info("stopped")
	return runErr
}

// redisLogger sends go-redis's internal messages (dial failures while Redis is down) to our log at
// debug level: the product cards view already reports Redis going away and coming back.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
