package cards

import (
	"sync"

	"github.com/maypok86/otter/v2"
)

// localCards is the in-process cache in front of the Redis product cards. It is invalidated from
// the log: the view's listener drops a card right after it rewrites it in Redis (on the products
// projector's notification, sent after its commit), and drops everything when a resync starts or
// ends. Every process that serves reads listens, so every process's cache follows the log.
//
// A fill must not resurrect a card invalidated while it was being fetched from Redis: a fill
// records its stripe's epoch before its Redis read and stores the card only if that stripe saw no
// invalidation since and no card of the stripe is being rewritten right now, under the lock that
// invalidations take. A rewrite drops the card before and after its Redis write, so once Redis
// holds the new card the cache can no longer hold the old one. Ids are spread over stripes, so
// that a stream of rewrites of some products does not keep every other product out of the cache.
type localCards struct {
	cache   *otter.Cache[int64, []byte]
	mu      sync.Mutex
	stripes [cardStripes]struct {
		epoch     uint64
		rewriting int // Redis writes in flight (between startRewrite and endRewrite)
	}
}

// cardStripes is how many stripes the fill guard has.
const cardStripes = 256

// localCardsBytes bounds the cache's memory (the cards' JSON bytes).
const localCardsBytes = 64 << 20

func newLocalCards() *localCards {
	return &localCards{cache: otter.Must(&otter.Options[int64, []byte]{
		MaximumWeight: localCardsBytes,
		Weigher:       func(_ int64, card []byte) uint32 { return uint32(len(card)) + 64 },
	})}
}

func stripe(id int64) int { return int(uint64(id) % cardStripes) }

func (l *localCards) get(id int64) ([]byte, bool) { return l.cache.GetIfPresent(id) }

// begin returns the epoch a fill of id must still see to store what it fetched.
func (l *localCards) begin(id int64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stripes[stripe(id)].epoch
}

// fill stores a card fetched since begin returned epoch, unless its stripe was invalidated
// meanwhile or is being rewritten.
func (l *localCards) fill(epoch uint64, id int64, card []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := &l.stripes[stripe(id)]; st.epoch == epoch && st.rewriting == 0 {
		l.cache.Set(id, card)
	}
}

// startRewrite drops a card whose Redis copy is about to be rewritten or removed; endRewrite,
// called once the Redis write returned, drops it again.
func (l *localCards) startRewrite(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := &l.stripes[stripe(id)]
	st.epoch++
	st.rewriting++
	l.cache.Invalidate(id)
}

func (l *localCards) endRewrite(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := &l.stripes[stripe(id)]
	st.epoch++
	st.rewriting--
	l.cache.Invalidate(id)
}

// clear drops every card.
func (l *localCards) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.stripes {
		l.stripes[i].epoch++
	}
	l.cache.InvalidateAll()
}
