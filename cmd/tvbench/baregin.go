package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// bareGinCommand is the hidden subcommand the http-get benchmark starts as its baseline process:
// a bare Gin router (no middleware, no logging) answering GET /api/v1/products/{id} with the bytes
// the real server answered, read from a JSON file {"id": "body"}.
const bareGinCommand = "bare-gin"

func runBareGin(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(bareGinCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	bodiesPath := fs.String("bodies", "", "JSON file of product id -> response body")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	raw, err := os.ReadFile(*bodiesPath)
	if err != nil {
		fmt.Fprintln(stderr, "bare-gin:", err)
		return 1
	}
	var texts map[int64]string // strings, so that the bytes are exactly the real server's
	if err := json.Unmarshal(raw, &texts); err != nil {
		fmt.Fprintln(stderr, "bare-gin: bodies:", err)
		return 1
	}
	bodies := make(map[int64][]byte, len(texts))
	for id, t := range texts {
		bodies[id] = []byte(t)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/api/v1/products/:id", func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		b, ok := bodies[id]
		if err != nil || !ok {
			c.Status(nethttp.StatusNotFound)
			return
		}
		c.Data(nethttp.StatusOK, "application/json; charset=utf-8", b)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "bare-gin:", err)
		return 1
	}
	srv := &nethttp.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(stderr, "bare-gin:", err)
		return 1
	}
	return 0
}
