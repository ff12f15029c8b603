package cards

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// cardFetch is one Get waiting for its card.
type cardFetch struct {
	key   string
	reply chan cardReply
}

type cardReply struct {
	card []byte
	err  error // redis.Nil when the card is missing
}

// maxCardBatch bounds the keys of one MGET.
const maxCardBatch = 256

// fetchLoop serves Gets with implicit pipelining: it takes every fetch waiting at that moment and
// asks Redis for all of them in one MGET. Nothing waits for a batch to fill: under light load a
// batch is one key; under heavy load one round trip (and its two syscalls) serves many requests.
func (c *ProductCards) fetchLoop(ctx context.Context) {
	batch := make([]cardFetch, 0, maxCardBatch)
	keys := make([]string, 0, maxCardBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-c.fetches:
			batch = append(batch[:0], f)
		}
	drain:
		for len(batch) < maxCardBatch {
			select {
			case f := <-c.fetches:
				batch = append(batch, f)
			default:
				break drain
			}
		}
		keys = keys[:0]
		for _, f := range batch {
			keys = append(keys, f.key)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		vals, err := c.rdb.MGet(rctx, keys...).Result()
		cancel()
		for i, f := range batch {
			r := cardReply{err: err}
			if err == nil {
				if s, ok := vals[i].(string); ok {
					r.card = []byte(s)
				} else {
					r.err = redis.Nil
				}
			}
			f.reply <- r
		}
	}
}
