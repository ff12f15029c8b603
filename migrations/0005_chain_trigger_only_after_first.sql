-- The first event of a stream has no predecessor: its hash is sha256(content_hash), which the
-- appender now sends. The chain trigger (previous-version lookup, gap check) only runs for later
-- versions, so creating a stream costs no PL/pgSQL call. A first event whose hash does not match
-- its content is still caught by verification.
DROP TRIGGER events_chain ON events;
CREATE TRIGGER events_chain BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.version > 1)
    EXECUTE FUNCTION events_chain();
ALTER TABLE events ADD CONSTRAINT events_first_hash_check
    CHECK (version > 1 OR hash = sha256(content_hash));
COMMENT ON COLUMN events.hash IS
    'SHA-256(previous event hash of the same stream || content_hash); for version 1, SHA-256(content_hash).';
