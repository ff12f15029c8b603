package http

import (
	nethttp "net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// cors lets a shop frontend on another origin call the API from the browser. Only the
// configured origins ("*" for any) get CORS headers; preflight requests are answered here.
func cors(allowed []string) gin.HandlerFunc {
	anyOrigin := slices.Contains(allowed, "*")
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		if origin == "" || (!anyOrigin && !slices.Contains(allowed, origin)) {
			c.Next()
			return
		}
		h := c.Writer.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", strings.Join([]string{RequestIDHeader, PositionReachedHeader, ReadSourceHeader, "Location"}, ", "))
		if c.Request.Method == nethttp.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, X-Correlation-Id, "+MinPositionHeader)
			h.Set("Access-Control-Max-Age", "600")
			c.AbortWithStatus(nethttp.StatusNoContent)
			return
		}
		c.Next()
	}
}
