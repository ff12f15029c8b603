// Package logbuf batches log output: a server logging every request at INFO would otherwise make
// one write system call per line, which at tens of thousands of requests a second costs a good
// part of a core. Lines are written in large chunks, at least every Interval, when the buffer
// passes Size, and on Close; a line is never split across chunks.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// Writer is a buffered io.Writer safe for concurrent use, flushed by a timer.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	size int
	err  error // the first write error, reported by Close

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns a Writer over w that flushes every interval (100ms when 0) and whenever the buffer
// holds size bytes (64 KiB when 0).
func New(w io.Writer, size int, interval time.Duration) *Writer {
	if size <= 0 {
		size = 64 << 10
	}
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	b := &Writer{w: w, buf: make([]byte, 0, 2*size), size: size, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop(interval)
	return b
}

func (b *Writer) loop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Flush()
		}
	}
}

// Write buffers p (one log record, as slog handlers write them).
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) >= b.size {
		b.flushLocked()
	}
	return len(p), nil
}

// Flush writes what is buffered.
func (b *Writer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *Writer) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil && b.err == nil {
		b.err = err
	}
	b.buf = b.buf[:0]
}

// Close stops the timer and writes what is buffered; it returns the first write error.
func (b *Writer) Close() error {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	return b.err
}
