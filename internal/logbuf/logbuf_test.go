package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

// Concurrent lines all arrive whole, in far fewer writes than lines, and nothing is lost on Close.
func TestWriterBatchesWholeLines(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, 1024, time.Hour) // only size and Close flush
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(w, "line %d-%d\n", g, i)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, writes := out.String()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 4000 {
		t.Fatalf("%d lines, want 4000", len(lines))
	}
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "line %d-%d", &g, &i); err != nil {
			t.Fatalf("line %q was split or merged: %v", l, err)
		}
	}
	if writes >= 400 {
		t.Fatalf("%d writes for 4000 lines: not batched", writes)
	}
}

// The timer flushes a quiet buffer.
func TestWriterFlushesOnTimer(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, 1<<20, 10*time.Millisecond)
	defer w.Close()
	fmt.Fprintln(w, "hello")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s, _ := out.String(); s == "hello\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the line was not flushed by the timer")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
