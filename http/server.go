package http

import (
	"context"
	"errors"
	"log/slog"
	nethttp "net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/auth"
	"github.com/techvault/techvault/auth/oidc"
	"github.com/techvault/techvault/commands"
	"github.com/techvault/techvault/domain"
	"github.com/techvault/techvault/images"
	"github.com/techvault/techvault/projections"
	"github.com/techvault/techvault/queries"
	"github.com/techvault/techvault/ratelimit"
	"github.com/techvault/techvault/views/cards"
	"github.com/techvault/techvault/views/carts"
	"github.com/techvault/techvault/views/listings"
	"github.com/techvault/techvault/views/profiles"
	"github.com/techvault/techvault/views/searches"
)

// Config wires the API to the rest of the application.
type Config struct {
	Logger  *slog.Logger
	Pool    *pgxpool.Pool
	Redis   *redis.Client
	Catalog *commands.Catalog
	Queries *queries.CatalogQueries
	Cards   *cards.ProductCards
	// Listings, when set, serves the first pages of GET /products (whole catalog and per
	// category, every sort) from the Redis view (reads with X-Min-Position bypass it).
	Listings *listings.Listings
	// Searches, when set, keeps the other GET /products answers (searches, filtered and later
	// pages) in process until a notification that may change them (views/searches).
	Searches    *searches.Cache
	Checkpoints *projections.Checkpoints
	// Positions waits for the projectors for X-Min-Position (projections.Checkpoints.Waiter).
	Positions PositionWaiter
	// Projectors are the projectors the admin API reports and rebuilds.
	Projectors []projections.Projector
	// Users runs the account commands and UserQueries reads the account tables; Profiles, when
	// set, caches the accounts for GET /users/me (reads with X-Min-Position bypass it).
	Users       *commands.Users
	UserQueries *queries.UserQueries
	Profiles    *profiles.Profiles
	// Tokens issues and checks access, refresh and link tokens.
	Tokens *auth.Tokens
	// Limiter, when set, applies LimitPolicy to sign-in, registration and password reset; keys
	// are hashed with LimitKey (a secret, so Redis holds no address in a guessable form).
	Limiter     *ratelimit.Limiter
	LimitPolicy ratelimit.Policy
	LimitKey    []byte
	// Shop runs the cart, promo and order commands; PromoExpiry proposes expired codes; Stripe
	// verifies webhooks (nil: the webhook route answers 404).
	Shop         *commands.Shop
	OrderQueries *queries.OrderQueries
	// Carts, when set, caches the cart views for GET /cart (reads with X-Min-Position bypass it).
	Carts       *carts.Carts
	PromoExpiry *queries.PromoExpiry
	Stripe      StripeWebhooks
	// Reviews runs the review commands; ReviewQueries reads the reviews table.
	Reviews       *commands.Reviews
	ReviewQueries *queries.ReviewQueries
	// Images stores pictures (Cloudinary); nil answers uploads with 503.
	Images images.Store
	// ProductImages runs the product image commands (uploads answer 503 without Cloudinary).
	ProductImages *commands.ProductImages
	// Wishlists runs the wishlist commands; WishlistQueries reads the wishlists.
	Wishlists       *commands.Wishlists
	WishlistQueries *queries.WishlistQueries
	// Google runs sign-in with Google; nil answers its routes with 404.
	Google *oidc.Provider
	// MinPositionWait bounds how long a query waits for X-Min-Position (2s).
	MinPositionWait time.Duration
	// CORSOrigins are the browser origins allowed to call the API ("*": any; none: no CORS).
	CORSOrigins []string
}

// PositionWaiter waits until a projector has processed a position of the log (the position a
// command returned), for X-Min-Position.
type PositionWaiter interface {
	// WaitFor reports whether the projector named projector has processed position, waiting up
	// to timeout: false on timeout, projections.ErrPositionBeyondLog for a position past the end
	// of the log, ctx's error when it is done first.
	WaitFor(ctx context.Context, projector string, position int64, timeout time.Duration) (bool, error)
}

// Validate reports missing dependencies.
func (c Config) Validate() error {
	if c.Logger == nil || c.Pool == nil || c.Positions == nil || c.Catalog == nil || c.Queries == nil || c.Checkpoints == nil {
		return errors.New("http: logger, pool, positions, catalog, queries and checkpoints are required")
	}
	if c.Users == nil || c.UserQueries == nil || c.Tokens == nil {
		return errors.New("http: users, user queries and tokens are required")
	}
	if c.Shop == nil || c.PromoExpiry == nil || c.OrderQueries == nil {
		return errors.New("http: shop and promo expiry are required")
	}
	if c.Reviews == nil || c.ReviewQueries == nil {
		return errors.New("http: reviews and review queries are required")
	}
	if c.ProductImages == nil || c.Wishlists == nil || c.WishlistQueries == nil {
		return errors.New("http: product images, wishlists and wishlist queries are required")
	}
	if c.Limiter != nil && len(c.LimitKey) < 32 {
		return errors.New("http: a limiter needs a LimitKey of at least 32 bytes")
	}
	return nil
}

// Server is the HTTP API.
type Server struct {
	cfg    Config
	engine *gin.Engine
	// rebuilds tracks rebuilds started through the admin API.
	rebuilds struct {
		sync.Mutex
		running map[string]bool
		wg      sync.WaitGroup
	}
	// bg is the context of background work (rebuilds), cancelled by Shutdown.
	bg       context.Context
	bgCancel context.CancelFunc
}

func init() { gin.SetMode(gin.ReleaseMode) }

// New builds the router.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MinPositionWait <= 0 {
		cfg.MinPositionWait = 2 * time.Second
	}
	s := &Server{cfg: cfg}
	s.rebuilds.running = map[string]bool{}
	s.bg, s.bgCancel = context.WithCancel(context.Background())

	r := gin.New()
	// Client addresses in the access log come from the connection, not from X-Forwarded-For,
	// which any client can forge.
	if err := r.SetTrustedProxies(nil); err != nil {
		return nil, err
	}
	r.HandleMethodNotAllowed = true
	// A path with a trailing slash is a JSON 404 like any unknown path, not Gin's redirect with an
	// HTML body (a POST's 307 that clients handle unevenly).
	r.RedirectTrailingSlash = false
	r.ContextWithFallback = true
	r.Use(requestContext(cfg.Logger), recovery(), cors(cfg.CORSOrigins), strictQuery(), authenticate(cfg.Tokens))
	r.NoRoute(func(c *gin.Context) {
		writeError(c, domain.NotFound("no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(nethttp.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{
			Code: "invalid", Message: "method " + c.Request.Method + " is not allowed on " + c.Request.URL.Path}})
	})
	s.routes(r)
	s.engine = r
	return s, nil
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() nethttp.Handler { return headAsGet{s.engine} }

// headAsGet answers a HEAD request as the GET of the same path without its body (RFC 9110 §9.3.2):
// Gin routes HEAD only where it is registered, so a load balancer's HEAD /healthz was a 405. The
// response writer is the HEAD request's, which net/http keeps bodiless; the access log still says
// HEAD (requestMethod). The sign-in routes are left out: GET /auth/google/callback is not safe (it
// spends the one-time code and opens a session), so HEAD there stays a 405.
type headAsGet struct{ h nethttp.Handler }

type headKey struct{}

func (g headAsGet) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	if r.Method == nethttp.MethodHead && !strings.HasPrefix(r.URL.Path, "/api/v1/auth/") {
		r = r.WithContext(context.WithValue(r.Context(), headKey{}, true))
		r.Method = nethttp.MethodGet
	}
	g.h.ServeHTTP(w, r)
}

// requestMethod is the method the client sent (HEAD for a HEAD served as GET).
func requestMethod(r *nethttp.Request) string {
	if head, _ := r.Context().Value(headKey{}).(bool); head {
		return nethttp.MethodHead
	}
	return r.Method
}

// Routes lists the registered routes (method and path, Gin syntax).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

// Shutdown stops background work started by requests and waits for it.
func (s *Server) Shutdown() {
	s.bgCancel()
	s.rebuilds.wg.Wait()
}

func (s *Server) routes(r *gin.Engine) {
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/openapi.json", s.openAPI)
	r.GET("/docs", s.docs)

	v1 := r.Group("/api/v1")
	v1.GET("/categories", s.listCategories)
	v1.GET("/categories/:id", s.getCategory)
	v1.GET("/products", s.listProducts)
	v1.GET("/products/:id", s.getProduct)

	// Sign-in. An Idempotency-Key is checked everywhere, but an anonymous command's is not
	// stored: keys are per signed-in actor.
	v1.POST("/auth/register", idempotent, s.register)
	v1.POST("/auth/verify-email", idempotent, s.verifyEmail)
	v1.POST("/auth/login", idempotent, s.login)
	v1.POST("/auth/refresh", idempotent, s.refresh)
	v1.POST("/auth/password-reset/request", idempotent, s.requestPasswordReset)
	v1.POST("/auth/password-reset/confirm", idempotent, s.confirmPasswordReset)
	s.googleRoutes(v1)

	// The caller's own account. Commands honour Idempotency-Key.
	user := v1.Group("", signedIn)
	user.POST("/auth/logout", bodiless, s.logout)
	user.GET("/users/me", s.getMe)
	user.PATCH("/users/me", idempotent, s.updateMe)
	user.DELETE("/users/me", bodiless, s.deleteMe)
	user.POST("/users/me/emails", idempotent, accountCommand(nethttp.StatusCreated, s.addEmail))
	user.DELETE("/users/me/emails/:id", bodiless, accountCommand(nethttp.StatusOK, byID(s.cfg.Users.RemoveEmailByID)))
	user.POST("/users/me/emails/:id/primary", bodiless, accountCommand(nethttp.StatusOK, byID(s.cfg.Users.MakeEmailPrimaryByID)))
	user.POST("/users/me/phones", idempotent, accountCommand(nethttp.StatusCreated, s.addPhone))
	user.DELETE("/users/me/phones/:id", bodiless, accountCommand(nethttp.StatusOK, byID(s.cfg.Users.RemovePhoneByID)))
	user.POST("/users/me/phones/:id/primary", bodiless, accountCommand(nethttp.StatusOK, byID(s.cfg.Users.MakePhonePrimaryByID)))
	user.GET("/users/me/addresses", s.listAddresses)
	user.POST("/users/me/addresses", idempotent, accountCommand(nethttp.StatusCreated, s.saveAddress))
	user.PATCH("/users/me/addresses/:id", idempotent, accountCommand(nethttp.StatusOK, s.saveAddress))
	user.DELETE("/users/me/addresses/:id", bodiless, accountCommand(nethttp.StatusOK, byID(s.cfg.Users.RemoveAddressByID)))
	user.POST("/users/me/addresses/:id/primary", bodiless, accountCommand(nethttp.StatusOK, byID(s.cfg.Users.MakeAddressPrimaryByID)))
	s.imageRoutes(user)
	user.GET("/notifications", s.listNotifications)
	user.POST("/notifications/:id/read", bodiless, accountCommand(nethttp.StatusOK, s.readNotification))
	user.POST("/notifications/read-all", bodiless, accountCommand(nethttp.StatusOK, s.readAllNotifications))

	admin := v1.Group("", roles(roleAdmin))
	s.shopRoutes(v1, user, admin)
	s.shopQueryRoutes(user, admin)
	s.reviewRoutes(v1, user, admin)
	admin.GET("/users", s.listUsers)
	admin.POST("/categories", idempotent, s.createCategory)
	admin.PATCH("/categories/:id", idempotent, s.updateCategory)
	admin.DELETE("/categories/:id", bodiless, deleteBy(s.cfg.Catalog.DeleteCategory))
	admin.POST("/products", idempotent, s.createProduct)
	admin.PATCH("/products/:id", idempotent, s.updateProduct)
	admin.DELETE("/products/:id", bodiless, deleteBy(s.cfg.Catalog.DeleteProduct))
	admin.POST("/products/:id/stock", idempotent, s.adjustStock)
	s.productImageRoutes(admin)
	s.wishlistRoutes(user)
	admin.GET("/admin/projections", s.projectionStatus)
	admin.POST("/admin/projections/:name/rebuild", s.rebuildProjection)
}
