package http

import (
	"context"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/techvault/techvault/views/cards"
)

func (s *Server) healthz(c *gin.Context) {
	c.JSON(nethttp.StatusOK, gin.H{"status": "ok"})
}

// readyz checks Postgres, Redis and the Redis view. Postgres down means not ready (503). Redis
// down, or the view not yet whole, means degraded but ready: queries fall back to Postgres.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{}
	status, code := "ok", nethttp.StatusOK
	if err := s.cfg.Pool.Ping(ctx); err != nil {
		logger(c).Warn("readiness: postgres is down", "err", err)
		checks["postgres"] = "down"
		status, code = "unavailable", nethttp.StatusServiceUnavailable
	} else {
		checks["postgres"] = "ok"
	}
	var redisErr error
	if s.cfg.Redis != nil {
		redisErr = s.cfg.Redis.Ping(ctx).Err()
	}
	switch {
	case s.cfg.Redis == nil:
		checks["redis"] = "not configured"
	case redisErr != nil:
		logger(c).Warn("readiness: redis is down", "err", redisErr)
		checks["redis"] = "down"
		if code == nethttp.StatusOK {
			status = "degraded"
		}
	default:
		checks["redis"] = "ok"
	}
	// The product cards view: "ready", "resyncing" (rebuilding itself from Postgres after its
	// keys were lost; misses fall back to Postgres) or "down". Anything but ready is degraded.
	if s.cfg.Cards != nil {
		view := s.cfg.Cards.State()
		checks["redis_view"] = view
		if view != cards.ViewReady && code == nethttp.StatusOK {
			status = "degraded"
		}
	}
	c.JSON(code, gin.H{"status": status, "checks": checks})
}
