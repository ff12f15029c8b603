-- Seals (shared/ARCHITECTURE.md, event store property 5). The per-stream hash chain cannot show a
-- stream's lost tail, nor a whole lost stream. A seal records, from time to time, a digest of the
-- whole log up to a cursor, chained to the previous seal, and where every stream changed since the
-- previous seal ends. Seals live in their own tables, with their own triggers, so that rewriting
-- or deleting events (even behind the events table's triggers) leaves the seals as they were.
CREATE TABLE seals (
    seal_no        bigint      PRIMARY KEY CHECK (seal_no > 0),
    -- The delivery cursor of the last event the seal covers. Only settled events are sealed:
    -- transaction_id < pg_snapshot_xmin(pg_current_snapshot()) when the seal was made.
    transaction_id xid8        NOT NULL,
    "offset"       bigint      NOT NULL,
    -- Events covered by this seal alone (after the previous seal's cursor), and in total.
    event_count    bigint      NOT NULL CHECK (event_count > 0),
    total_events   bigint      NOT NULL CHECK (total_events >= event_count),
    -- sha256(previous seal's digest || hash of every covered event, in delivery order).
    digest         bytea       NOT NULL CHECK (length(digest) = 32),
    created_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE seals IS 'Chained digests of the event log up to a cursor; append-only.';

-- Where each stream ends as of a seal: one row for every stream that changed since the previous
-- seal, so the latest row of a stream at or before seal k gives its version and hash at seal k.
CREATE TABLE seal_streams (
    seal_no   bigint NOT NULL REFERENCES seals (seal_no),
    stream_id text   NOT NULL,
    version   bigint NOT NULL CHECK (version > 0),
    hash      bytea  NOT NULL,
    PRIMARY KEY (seal_no, stream_id)
);

-- Seals are numbered 1, 2, 3… and each covers more of the log than the one before.
CREATE FUNCTION seals_next() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last seals%ROWTYPE;
BEGIN
    SELECT * INTO last FROM seals ORDER BY seal_no DESC LIMIT 1;
    IF NOT FOUND THEN
        IF NEW.seal_no <> 1 OR NEW.total_events <> NEW.event_count THEN
            RAISE EXCEPTION 'the first seal must be number 1 and count only its own events'
                USING ERRCODE = 'TV409';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.seal_no <> last.seal_no + 1 THEN
        RAISE EXCEPTION 'seal % does not follow seal %', NEW.seal_no, last.seal_no USING ERRCODE = 'TV409';
    END IF;
    IF (NEW.transaction_id, NEW."offset") <= (last.transaction_id, last."offset")
       OR NEW.total_events <> last.total_events + NEW.event_count THEN
        RAISE EXCEPTION 'seal % does not extend seal %', NEW.seal_no, last.seal_no USING ERRCODE = 'TV409';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER seals_next BEFORE INSERT ON seals FOR EACH ROW EXECUTE FUNCTION seals_next();

CREATE FUNCTION seals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'seals are append-only: % on % refused', TG_OP, TG_TABLE_NAME USING ERRCODE = 'TV403';
END;
$$;

CREATE TRIGGER seals_no_update_delete BEFORE UPDATE OR DELETE ON seals
    FOR EACH ROW EXECUTE FUNCTION seals_append_only();
CREATE TRIGGER seals_no_truncate BEFORE TRUNCATE ON seals
    FOR EACH STATEMENT EXECUTE FUNCTION seals_append_only();
CREATE TRIGGER seal_streams_no_update_delete BEFORE UPDATE OR DELETE ON seal_streams
    FOR EACH ROW EXECUTE FUNCTION seals_append_only();
CREATE TRIGGER seal_streams_no_truncate BEFORE TRUNCATE ON seal_streams
    FOR EACH STATEMENT EXECUTE FUNCTION seals_append_only();
