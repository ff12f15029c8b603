package eventstore

// ContentHash and ChainHash let tests forge events whose hashes are consistent, as an attacker
// who knows the scheme could.
var (
	ContentHash = contentHash
	ChainHash   = chainHash
)

// LoadSnapshotTailSQL is exposed to the plan tests.
const LoadSnapshotTailSQL = loadSnapshotTailSQL
