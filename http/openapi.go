package http

import (
	_ "embed"
	nethttp "net/http"

	"github.com/gin-gonic/gin"
)

//go:embed openapi.json
var openAPIDocument []byte

//go:embed docs.html
var docsPage []byte

func (s *Server) openAPI(c *gin.Context) {
	c.Data(nethttp.StatusOK, "application/json; charset=utf-8", openAPIDocument)
}

func (s *Server) docs(c *gin.Context) {
	c.Data(nethttp.StatusOK, "text/html; charset=utf-8", docsPage)
}
