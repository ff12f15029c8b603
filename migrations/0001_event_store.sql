-- The event store. This table is the source of truth and, at the same time, the Watermill topic
-- that projectors consume (watermill-sql/v3 PostgreSQL schema: "offset", uuid, payload, metadata,
-- transaction_id). The position of an event is its "offset".
CREATE TABLE events (
    "offset"        bigserial   NOT NULL,
    uuid            varchar(36) NOT NULL,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    version         bigint      NOT NULL CHECK (version > 0),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version > 0),
    payload         json        NOT NULL,
    metadata        json        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    content_hash    bytea       NOT NULL,
    hash            bytea,
    created_at      timestamp   NOT NULL DEFAULT CURRENT_TIMESTAMP,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (transaction_id, "offset"),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_uuid_key UNIQUE (uuid)
);

CREATE UNIQUE INDEX events_offset_idx ON events ("offset");
CREATE INDEX events_stream_type_idx ON events (stream_type, "offset");
CREATE INDEX events_event_type_idx ON events (event_type, "offset");

COMMENT ON TABLE events IS 'Append-only event log; also the Watermill topic read by projectors.';
COMMENT ON COLUMN events."offset" IS 'Global position (allocated before commit; consumers order by transaction_id, offset).';
COMMENT ON COLUMN events.content_hash IS 'SHA-256 of the canonical encoding of the event, computed by the appender.';
COMMENT ON COLUMN events.hash IS 'SHA-256(previous event hash of the same stream || content_hash), set by trigger.';

-- Per-stream hash chain and gap check. Rows inserted earlier by the same statement are visible here,
-- so a multi-event append chains within the statement.
CREATE FUNCTION events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev bytea;
BEGIN
    IF NEW.version = 1 THEN
        NEW.hash := sha256(NEW.content_hash);
        RETURN NEW;
    END IF;
    SELECT hash INTO prev FROM events WHERE stream_id = NEW.stream_id AND version = NEW.version - 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stream % is not at version %', NEW.stream_id, NEW.version - 1
            USING ERRCODE = 'TV409', HINT = 'expected version mismatch';
    END IF;
    NEW.hash := sha256(prev || NEW.content_hash);
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_chain BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_chain();

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'TV403';
END;
$$;

CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Watermill's consumer-group offsets (DefaultPostgreSQLOffsetsAdapter layout): one row per projector.
CREATE TABLE projector_offsets (
    consumer_group                varchar(255) NOT NULL PRIMARY KEY,
    offset_acked                  bigint,
    last_processed_transaction_id xid8         NOT NULL
);

-- Resource ids are allocated when a command is decided, so responses name what they created.
CREATE SEQUENCE category_ids;
CREATE SEQUENCE product_ids;
