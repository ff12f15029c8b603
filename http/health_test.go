package http_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/techvault/techvault/internal/testdb"
)

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (h *harness) readiness(t *testing.T) (int, readiness) {
	t.Helper()
	var rd readiness
	r := h.do("GET", "/readyz", "")
	r.json(t, &rd)
	return r.status, rd
}

// /readyz reports the Redis view: down with Redis unreachable, ready once whole, and ready again
// after the view has healed from losing every key (a flush), with the card served from Redis.
func TestReadyzReportsRedisView(t *testing.T) {
	t.Run("redis unreachable", func(t *testing.T) {
		dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
		t.Cleanup(func() { _ = dead.Close() })
		h := newHarness(t, harnessOpts{redis: dead, prefix: "dead:"})
		code, rd := h.readiness(t)
		if code != 200 || rd.Status != "degraded" || rd.Checks["redis_view"] != "down" {
			t.Fatalf("readyz: %d %+v", code, rd)
		}
	})

	t.Run("flushed and healed", func(t *testing.T) {
		rdb, prefix := testdb.Redis(t)
		h := newHarness(t, harnessOpts{redis: rdb, prefix: prefix})
		var p product
		h.admin("POST", "/api/v1/products", `{"name":"Headset","price":"59.00","stock":3}`, 201).json(t, &p)
		path := fmt.Sprintf("/api/v1/products/%d", p.ID)
		eventually(t, "card served from Redis", func() bool {
			return h.do("GET", path, "").header.Get("X-Read-Source") == "redis"
		})
		if code, rd := h.readiness(t); code != 200 || rd.Status != "ok" || rd.Checks["redis_view"] != "ready" {
			t.Fatalf("readyz with the view whole: %d %+v", code, rd)
		}

		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil || len(keys) == 0 {
			t.Fatalf("keys under the prefix: %v, %v", keys, err)
		}
		if err := rdb.Del(ctx, keys...).Err(); err != nil { // FLUSHDB, for this test's keys only
			t.Fatal(err)
		}
		eventually(t, "card back in Redis and the view ready", func() bool {
			r := h.do("GET", path, "")
			var got product
			r.json(t, &got)
			if r.status != 200 || got.Name != "Headset" {
				t.Fatalf("GET during the heal: %d %s", r.status, r.body)
			}
			code, rd := h.readiness(t)
			return r.header.Get("X-Read-Source") == "redis" && code == 200 && rd.Checks["redis_view"] == "ready"
		})
	})
}

// HEAD is answered as GET without the body, wherever GET is (a load balancer's health check).
func TestHeadIsGetWithoutTheBody(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, path := range []string{"/healthz", "/api/v1/products", "/api/v1/categories"} {
		get, head := h.do("GET", path, ""), h.do("HEAD", path, "")
		if head.status != get.status || len(head.body) != 0 || head.header.Get("Content-Type") != get.header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q (%q); GET: %d (%q)", path, head.status, head.body, head.header.Get("Content-Type"),
				get.status, get.header.Get("Content-Type"))
		}
	}
	if r := h.do("HEAD", "/api/v1/nowhere", ""); r.status != 404 {
		t.Errorf("HEAD of no route: %d", r.status)
	}
	// The sign-in routes' GETs are not safe (the Google callback spends its one-time code): no HEAD.
	if r := h.do("HEAD", "/api/v1/auth/google/callback?code=x&state=y", ""); r.status != 405 {
		t.Errorf("HEAD of the Google callback: %d, want 405", r.status)
	}
}

// A path the API does not serve is a JSON 404, a trailing slash included (Gin would redirect it
// with an HTML body, or a POST with an empty 307).
func TestUnknownPathsAreJSONNotFound(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/nowhere"},
		{"GET", "/api/v1/products/"},
		{"GET", "/api/v1/products/1/"},
		{"POST", "/api/v1/products/1/reviews/"},
		{"DELETE", "/api/v1/cart/"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			checkBad(t, h.do(tc.method, tc.path, ""), 404, "not_found", "", "")
		})
	}
}
