package http

import (
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/techvault/techvault/domain"
)

const (
	loggerKey     = "logger"
	baseLoggerKey = "base_logger"
	requestIDKey  = "request_id"
	actorKey      = "actor_id"
	// RequestIDHeader carries the request id in and out.
	RequestIDHeader = "X-Request-Id"
)

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestContext gives every request an id (the client's when it sends a sane one), a logger that
// carries it, and an access log line when the request ends.
func requestContext(base *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		id := c.GetHeader(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = uuid.Must(uuid.NewV7()).String()
		}
		c.Set(requestIDKey, id)
		c.Header(RequestIDHeader, id)
		c.Set(baseLoggerKey, base)

		c.Next()

		status := c.Writer.Status()
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelWarn
		}
		if !base.Enabled(c.Request.Context(), level) {
			return
		}
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		// LogAttrs on the base logger: no per-request child logger, no boxing of the values.
		base.LogAttrs(c.Request.Context(), level, "request",
			slog.String("request_id", id),
			slog.String("method", requestMethod(c.Request)),
			slog.String("path", c.Request.URL.Path),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int("bytes", c.Writer.Size()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("client_ip", c.ClientIP()),
		)
	}
}

// recovery turns a panic into a 500 JSON error (logged with its request id).
func recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, nethttp.ErrAbortHandler) {
					panic(r)
				}
				writeError(c, fmt.Errorf("panic: %v", r))
			}
		}()
		c.Next()
	}
}

// metadata is the event metadata of the command a request runs.
func metadata(c *gin.Context) domain.Metadata {
	rid := c.GetString(requestIDKey)
	corr := c.GetHeader("X-Correlation-Id")
	if !validRequestID.MatchString(corr) {
		corr = rid
	}
	return domain.Metadata{
		CorrelationID: corr,
		CausationID:   rid,
		ActorID:       c.GetString(actorKey),
		RequestID:     rid,
	}
}
