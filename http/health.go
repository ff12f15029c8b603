package http

import (
	"context"
	nethttp "net/http"
	"time"

	"github.com/gin-gonic/gin"
)

func (s *Server) healthz(c *gin.Context) {
	c.JSON(nethttp.StatusOK, gin.H{"status": "ok"})
}

// readyz checks Postgres and Redis. Postgres down means not ready (503). Redis down means
// degraded but ready: every query falls back to Postgres.
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
	c.JSON(code, gin.H{"status": status, "checks": checks})
}
