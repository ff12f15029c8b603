package listings

import (
	"strconv"
	"sync/atomic"
	"testing"
)

func TestPageBodyKeepsTheLastAnswer(t *testing.T) {
	builds := 0
	build := func(limit int) func() []byte {
		return func() []byte { builds++; return []byte("page of " + strconv.Itoa(limit)) }
	}
	read := Page{} // as read from Redis or Postgres: nothing kept
	for range 2 {
		if got := string(read.Body(20, build(20))); got != "page of 20" {
			t.Fatalf("Body = %q", got)
		}
	}
	if builds != 2 {
		t.Fatalf("a page outside the in-process copy built %d answers for 2 reads, want 2", builds)
	}

	builds = 0
	kept := Page{body: new(atomic.Pointer[pageBody])} // as fill stores it
	copied := kept                                    // what the cache hands out: a copy sharing the answer
	for _, tc := range []struct {
		page      Page
		limit     int
		wantBuild int
	}{
		{kept, 20, 1}, {copied, 20, 1}, {kept, 20, 1}, // built once, then kept
		{kept, 10, 2}, {copied, 10, 2}, // another limit replaces it
		{kept, 20, 3},
	} {
		if got := string(tc.page.Body(tc.limit, build(tc.limit))); got != "page of "+strconv.Itoa(tc.limit) {
			t.Fatalf("Body(%d) = %q", tc.limit, got)
		}
		if builds != tc.wantBuild {
			t.Fatalf("after Body(%d): %d builds, want %d", tc.limit, builds, tc.wantBuild)
		}
	}
}
