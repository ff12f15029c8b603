package eventstore

// ContentHash and ChainHash let tests forge events whose hashes are consistent, as an attacker
// who knows the scheme could.
var (
	ContentHash = contentHash
	ChainHash   = chainHash
)

// LoadSnapshotTailSQL, SealReadSQL and VerifySealsSQL are exposed to the plan tests.
const (
	LoadSnapshotTailSQL = loadSnapshotTailSQL
	SealReadSQL         = sealReadSQL
	VerifySealsSQL      = verifySealsSQL
)

// HoldWriters takes every writer slot of the append group, so that appends queue; the returned
// function gives them back. QueuedAppends is the queue's length.
func (s *Store) HoldWriters() func() {
	for range cap(s.group.writers) {
		s.group.writers <- struct{}{}
	}
	return func() {
		for range cap(s.group.writers) {
			<-s.group.writers
		}
	}
}

func (s *Store) QueuedAppends() int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue)
}
