package ratelimit

// SetLocalMax sets how many keys the in-process fallback of l tracks at most.
func SetLocalMax(l *Limiter, n int) {
	l.local.mu.Lock()
	l.local.max = n
	l.local.mu.Unlock()
}
