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
		checks["postgres"] = "down: " + err.Error()
		status, code = "unavailable", nethttp.StatusServiceUnavailable
	} else {
		checks["postgres"] = "ok"
	}
	switch {
	case s.cfg.Redis == nil:
		checks["redis"] = "not configured"
	default:
		if err := s.cfg.Redis.Ping(ctx).Err(); err != nil {
			checks["redis"] = "down: " + err.Error()
			if code == nethttp.StatusOK {
				status = "degraded"
			}
		} else {
			checks["redis"] = "ok"
		}
	}
	c.JSON(code, gin.H{"status": status, "checks": checks})
}
