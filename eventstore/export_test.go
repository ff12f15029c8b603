package eventstore

// LoadSnapshotTailSQL is exposed to the plan tests.
const LoadSnapshotTailSQL = loadSnapshotTailSQL
