package cards

// SetResyncHook makes every resync call hook with the ids of each page it has read from Postgres,
// before it writes them to Redis (nil removes the hook).
func SetResyncHook(c *ProductCards, hook func(ids []int64)) {
	if hook == nil {
		c.resyncHook.Store(nil)
		return
	}
	c.resyncHook.Store(&hook)
}
