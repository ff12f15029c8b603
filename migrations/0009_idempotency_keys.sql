-- Idempotency-Key: the first answer to a keyed command, per actor and key. A row is written in the
-- same statement as the command's events, so an acknowledged command and its key commit together.
-- Rows older than the key lifetime (24 h, commands.IdempotencyKeyTTL) are ignored, and deleted on
-- lookup and by a periodic cleanup.
CREATE TABLE idempotency_keys (
    actor        text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    command      text        NOT NULL,
    result       jsonb       NOT NULL,
    position     bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (actor, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
