-- Snapshots of aggregate state: a cache that lets a command load a long stream from its latest
-- snapshot plus the events after it. Derived from the events, never written with them, safe to
-- delete at any time (a missing snapshot only means a full load). A row is used only when its
-- schema_version equals the code's current version for that aggregate.
CREATE TABLE snapshots (
    stream_id      text        PRIMARY KEY,
    stream_type    text        NOT NULL,
    schema_version integer     NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    state          jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE snapshots IS 'Cache of aggregate state at a stream version; safe to delete at any time.';
