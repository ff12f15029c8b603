// Package app is the one wiring of Tech Vault: pools → event store → commands → projection engine
// → Redis views → HTTP. `techvault serve`, the HTTP test harness and tvbench all build the
// application through New, so the three cannot drift apart.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/auth/oidc"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/effects"
	"github.com/techvault/techvault/eventstore"
	api "github.com/techvault/techvault/http"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/mail"
	"github.com/techvault/techvault/migrations"
	"github.com/techvault/techvault/payments"
	"github.com/techvault/techvault/pii"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/ratelimit"
	"github.com/techvault/techvault/views/cards"
	"github.com/techvault/techvault/views/carts"
	"github.com/techvault/techvault/views/listings"
	"github.com/techvault/techvault/views/profiles"
	"github.com/techvault/techvault/views/searches"
)

// Config is what the application needs, read by cmd (never from the environment here).
type Config struct {
	// DatabaseURL is dialled, and migrated, when Pool is nil.
	DatabaseURL string
	// DBMaxConns bounds the pool dialled from DatabaseURL (20).
	DBMaxConns int32
	// ListingReads bounds the product listing and search reads of Postgres running at once
	// (0: queries.DefaultListingReads, twice GOMAXPROCS).
	ListingReads int
	// Pool, when set, is used as it is (already migrated) and is not closed by Close.
	Pool *pgxpool.Pool

	// RedisURL is dialled when Redis is nil.
	RedisURL string
	// Redis, when set, is used as it is and is not closed by Close.
	Redis *redis.Client
	// RedisPrefix prefixes the view's keys ("techvault:<database>:", so that servers on
	// different databases can share one Redis).
	RedisPrefix string

	// HTTPAddr is where Run listens (":8080").
	HTTPAddr string
	// Secret (at least 32 bytes) is the root of the server's keys: token signing, the keyed
	// lookups of emails, rate-limit keys, the Google sign-in cookie. Every process of one store
	// needs the same; changing it signs everyone out and orphans every email reservation.
	Secret []byte
	// Passwords are the argon2id parameters (auth's defaults when zero; tests use cheap ones).
	Passwords auth.Params
	// Tokens' lifetimes (auth's defaults when zero).
	AccessTTL, RefreshTTL time.Duration
	// Limits, when set, replaces ratelimit.DefaultPolicy; NoLimits turns the abuse limits off.
	Limits   *ratelimit.Policy
	NoLimits bool

	// SMTP sends the account mail; with no Host, mail is logged as not sent.
	SMTP mail.Config
	// LinkBase is where mailed links point (the shop's pages): <LinkBase>/verify-email?token=...
	LinkBase string
	// Cloudinary stores pictures; with no CloudName, uploads answer 503.
	Cloudinary images.Config
	// Google configures sign-in with Google; with no ClientID, its routes answer 404.
	Google oidc.Config
	// UnpaidOrderTTL is how long an order may wait for payment before the sweeper cancels it
	// (30m), releasing its stock and promo use.
	UnpaidOrderTTL time.Duration
	// Stripe takes payments; with no SecretKey, orders are placed without a PaymentIntent and
	// the webhook route answers 404.
	Stripe payments.Config
	// CORSOrigins are the browser origins allowed to call the API.
	CORSOrigins []string

	// Projectors are run by the engine and reported by the admin API (Projectors()).
	Projectors []projections.Projector
	// ProjectionPollInterval is the engine's PollInterval (the engine's default when zero).
	ProjectionPollInterval time.Duration
	// ShutdownTimeout bounds the graceful end of in-flight requests (15s).
	ShutdownTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.DBMaxConns <= 0 {
		c.DBMaxConns = 20
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8080"
	}
	if c.Projectors == nil {
		c.Projectors = Projectors()
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.UnpaidOrderTTL <= 0 {
		c.UnpaidOrderTTL = 30 * time.Minute
	}
}

// Validate reports a config New cannot build from.
func (c Config) Validate() error {
	if c.Pool == nil && c.DatabaseURL == "" {
		return errors.New("app: DatabaseURL or Pool is required")
	}
	if c.Redis == nil && c.RedisURL == "" {
		return errors.New("app: RedisURL or Redis is required")
	}
	if len(c.Secret) < 32 {
		return errors.New("app: Secret must have at least 32 bytes (set TECHVAULT_SECRET)")
	}
	return nil
}

// App is the running application's parts. The exported fields are for tests and benchmarks,
// which append events, wait on checkpoints and inspect the views directly.
type App struct {
	Pool        *pgxpool.Pool
	Redis       *redis.Client
	Store       *eventstore.Store
	Catalog     *commands.Catalog
	Users       *commands.Users
	Shop        *commands.Shop
	Reviews     *commands.Reviews
	Vault       *pii.Vault
	Tokens      *auth.Tokens
	Checkpoints *projections.Checkpoints
	Cards       *cards.ProductCards
	Listings    *listings.Listings

	cfg Config
	log *slog.Logger
	// searches keeps GET /products answers the listings view does not hold.
	searches *searches.Cache
	// aggregates is the command handlers' shared AggregateCache.
	aggregates *commands.AggregateCache
	sqlDB      *sql.DB
	engine     *projections.Engine
	// userQueries and profiles read the accounts (profiles: the cache GET /users/me reads).
	userQueries *queries.UserQueries
	stripe      *payments.Stripe
	// orderQueries and carts read the order platform (carts: the cache GET /cart reads).
	orderQueries *queries.OrderQueries
	carts        *carts.Carts
	profiles     *profiles.Profiles
	server       *api.Server
	closers      []func() // owned resources, closed last-in first-out

	started   bool
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
	errs      chan error
	closeOnce sync.Once
	closeErr  error
}

// New builds the application; nothing runs until Start (or Run). On error, everything New
// opened is closed again.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	a := &App{cfg: cfg, log: log, errs: make(chan error, 2)}
	if err := a.build(ctx); err != nil {
		a.closeOwned()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	if err := a.openPool(ctx); err != nil {
		return err
	}
	if err := a.openRedis(); err != nil {
		return err
	}
	a.aggregates = commands.NewAggregateCache(AggregateCacheSize)
	store, catalog, err := NewStore(a.Pool, a.log, commands.WithAggregateCache(a.aggregates))
	if err != nil {
		return err
	}
	a.Store, a.Catalog = store, catalog
	a.Reviews = commands.NewReviews(store, store.Sequences(map[string]string{commands.ReviewIDs: "review_ids"}), commands.WithLogger(a.log),
		commands.WithAggregateCache(a.aggregates))
	a.Checkpoints = projections.NewCheckpoints(a.Pool)
	acc, err := a.buildAccounts(store)
	if err != nil {
		return err
	}
	a.userQueries = queries.NewUserQueries(a.Pool)
	a.orderQueries = queries.NewOrderQueries(a.Pool, nil)
	if a.carts, err = carts.New(a.Pool, a.orderQueries, a.log, a.Redis, a.redisPrefix()); err != nil {
		return err
	}
	if a.profiles, err = profiles.New(a.Pool, a.userQueries, a.log); err != nil {
		return err
	}
	if err := a.buildProjections(acc.reactors); err != nil {
		return err
	}
	productImages := commands.NewProductImages(store, store.Sequences(map[string]string{commands.ProductImageIDs: "product_image_ids"}),
		acc.images, commands.WithLogger(a.log), commands.WithAggregateCache(a.aggregates))
	a.server, err = api.New(api.Config{
		Logger: a.log, Pool: a.Pool, Redis: a.Redis, Positions: a.Checkpoints.Waiter(store), Catalog: a.Catalog,
		Queries: queries.NewCatalogQueries(a.Pool, a.cfg.ListingReads), Cards: a.Cards, Listings: a.Listings, Searches: a.searches, Checkpoints: a.Checkpoints,
		Projectors: a.cfg.Projectors, CORSOrigins: a.cfg.CORSOrigins,
		Users: a.Users, UserQueries: a.userQueries, Profiles: a.profiles, Tokens: a.Tokens,
		Limiter: acc.limiter, LimitPolicy: acc.policy, LimitKey: DeriveKey(a.cfg.Secret, KeyRateLimit),
		Images: acc.images, Google: acc.google,
		Shop: a.Shop, PromoExpiry: queries.NewPromoExpiry(a.Pool), Stripe: a.stripeWebhooks(),
		OrderQueries: a.orderQueries, Carts: a.carts,
		Reviews: a.Reviews, ReviewQueries: queries.NewReviewQueries(a.Pool),
		ProductImages: productImages, Wishlists: commands.NewWishlists(store, commands.WithLogger(a.log), commands.WithAggregateCache(a.aggregates)),
		WishlistQueries: queries.NewWishlistQueries(a.Pool),
	})
	return err
}

// NewStore is the write side over pool: the event store and the catalog commands (with their id
// sequences). The operator tasks (seed, verify) use it without the rest of the application.
func NewStore(pool *pgxpool.Pool, log *slog.Logger, opts ...commands.Option) (*eventstore.Store, *commands.Catalog, error) {
	store, err := eventstore.New(eventstore.Config{Pool: pool})
	if err != nil {
		return nil, nil, err
	}
	ids := store.Sequences(map[string]string{commands.CategoryIDs: "category_ids", commands.ProductIDs: "product_ids"})
	return store, commands.NewCatalog(store, ids, append([]commands.Option{commands.WithLogger(log)}, opts...)...), nil
}

// AggregateCacheSize is how many aggregates the serving process keeps decided state of
// (commands.AggregateCache): carts and products, a few hundred bytes each.
const AggregateCacheSize = 200_000

func (a *App) openPool(ctx context.Context) error {
	if a.cfg.Pool != nil {
		a.Pool = a.cfg.Pool
		return nil
	}
	pool, err := OpenPool(ctx, a.cfg.DatabaseURL, a.cfg.DBMaxConns)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, pool.Close)
	a.Pool = pool
	return migrations.Apply(ctx, pool, a.log)
}

// OpenPool connects to Postgres and pings it (10 s at most).
func OpenPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if maxConns > 0 {
		pc.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to Postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to Postgres at %s: %w", pc.ConnConfig.Host, err)
	}
	return pool, nil
}

func (a *App) openRedis() error {
	if a.cfg.Redis != nil {
		a.Redis = a.cfg.Redis
		return nil
	}
	ropt, err := redis.ParseURL(a.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	// Redis is derived data: short timeouts, and the API falls back to Postgres when it is down.
	ropt.DialTimeout, ropt.ReadTimeout, ropt.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	ropt.MaxRetries = 1
	a.Redis = redis.NewClient(ropt)
	redis.SetLogger(redisLogger{a.log})
	a.closers = append(a.closers, func() { _ = a.Redis.Close() })
	return nil
}

func (a *App) buildProjections(reactors []effects.Reactor) error {
	a.sqlDB = stdlib.OpenDBFromPool(a.Pool)
	a.closers = append(a.closers, func() { _ = a.sqlDB.Close() })
	handlers := make([]projections.BatchHandler, 0, len(reactors))
	for _, r := range reactors {
		handlers = append(handlers, effects.Handler(r, a.sqlDB))
	}
	engine, err := projections.NewEngine(projections.EngineConfig{
		DB: a.sqlDB, Projectors: a.cfg.Projectors, Handlers: handlers, Logger: a.log, PollInterval: a.cfg.ProjectionPollInterval,
		Checkpoints: a.Checkpoints,
	})
	if err != nil {
		return err
	}
	a.engine = engine
	prefix := a.redisPrefix()
	// The cards hold the API's own bytes for GET /products/{id}: Redis and Postgres answer alike.
	a.Cards, err = cards.New(cards.Config{
		Pool: a.Pool, Redis: a.Redis, Encode: api.ProductCard, Prefix: prefix, Logger: a.log})
	if err != nil {
		return err
	}
	// The first pages of GET /products, invalidated from the catalog projectors' notifications.
	a.Listings, err = listings.New(listings.Config{Pool: a.Pool, Redis: a.Redis, Prefix: prefix, Logger: a.log})
	if err != nil {
		return err
	}
	// The other GET /products answers (searches, filtered and later pages), kept in process until
	// a catalog notification that may change them.
	a.searches, err = searches.New(a.Pool, a.log)
	return err
}

// redisPrefix prefixes every Redis key of the application.
func (a *App) redisPrefix() string {
	if a.cfg.RedisPrefix != "" {
		return a.cfg.RedisPrefix
	}
	return "techvault:" + a.Pool.Config().ConnConfig.Database + ":"
}

// Handler is the HTTP API, for a server of the caller's (httptest, a benchmark's listener).
func (a *App) Handler() nethttp.Handler { return a.server.Handler() }

// Routes lists the API's routes as "METHOD /path" (Gin syntax, ":id" for a parameter), for tests
// that must cover every route of the router.
func (a *App) Routes() []string {
	routes := a.server.Routes()
	out := make([]string, 0, len(routes))
	for _, r := range routes {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// Start runs the projection engine and the Redis views in the background and returns once every
// projector is subscribed. Close stops them.
func (a *App) Start(ctx context.Context) error {
	if dropped, err := projections.DropLeftoverShadows(ctx, a.Pool, a.cfg.Projectors); err != nil {
		a.log.Warn("cannot drop leftover rebuild tables", "err", err)
	} else if len(dropped) > 0 {
		a.log.Info("dropped tables left by an interrupted rebuild", "tables", dropped)
	}
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.bgCancel = cancel
	a.started = true
	a.bg.Add(9)
	go func() {
		defer a.bg.Done()
		_ = a.carts.Run(bgCtx)
	}()
	go func() {
		defer a.bg.Done()
		a.sweepUnpaidOrders(bgCtx)
	}()
	go func() {
		defer a.bg.Done()
		_ = a.profiles.Run(bgCtx)
	}()
	go func() {
		defer a.bg.Done()
		_ = a.Store.RunSealer(bgCtx, eventstore.DefaultSealInterval, a.log)
	}()
	go func() {
		defer a.bg.Done()
		a.sweepIdempotencyKeys(bgCtx)
	}()
	go func() {
		defer a.bg.Done()
		if err := a.engine.Run(bgCtx); err != nil && bgCtx.Err() == nil {
			a.errs <- fmt.Errorf("projection engine: %w", err)
		}
	}()
	go func() {
		defer a.bg.Done()
		_ = a.Cards.Run(bgCtx)
	}()
	go func() {
		defer a.bg.Done()
		_ = a.Listings.Run(bgCtx)
	}()
	go func() {
		defer a.bg.Done()
		_ = a.searches.Run(bgCtx)
	}()
	select {
	case <-a.engine.Running():
		return nil
	case err := <-a.errs:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sweepIdempotencyKeys deletes expired idempotency keys every ten minutes (they are ignored
// once expired anyway; this keeps the table small).
func (a *App) sweepIdempotencyKeys(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := commands.DeleteExpiredIdempotencyKeys(ctx, a.Store); err != nil && ctx.Err() == nil {
				a.log.Warn("sweeping expired idempotency keys", "err", err)
			} else if n > 0 {
				a.log.Debug("swept expired idempotency keys", "deleted", n)
			}
		}
	}
}

// Failed delivers an error when a background part (the engine) stops on its own.
func (a *App) Failed() <-chan error { return a.errs }

// Run starts the application, serves HTTP on HTTPAddr until ctx is done or a part fails, then
// shuts down in reverse order: stop taking requests, finish in-flight ones, stop projectors and
// views, close pools.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return errors.Join(err, a.Close())
	}
	srv := &nethttp.Server{
		Addr:              a.cfg.HTTPAddr,
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	httpErr := make(chan error, 1)
	go func() {
		a.log.Info("http listening", "addr", a.cfg.HTTPAddr)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
			httpErr <- fmt.Errorf("http: %w", err)
		}
	}()
	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case runErr = <-httpErr:
	case runErr = <-a.errs:
	}
	if runErr != nil {
		a.log.Error("stopping after failure", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Error("http shutdown", "err", err)
	}
	if err := a.Close(); err != nil {
		a.log.Error("shutdown", "err", err)
	}
	a.log.Info("stopped")
	return runErr
}

// Close stops background work (rebuilds started over HTTP, projectors, views) and closes what
// New opened; a Pool or Redis given in Config stays open. It is safe to call more than once.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		a.server.Shutdown()
		if a.started {
			a.closeErr = a.engine.Close()
			a.bgCancel()
		}
		a.bg.Wait()
		a.closeOwned()
	})
	return a.closeErr
}

func (a *App) closeOwned() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// redisLogger sends go-redis's internal messages (dial failures while Redis is down) to our log at
// debug level: the product cards view already reports Redis going away and coming back.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
