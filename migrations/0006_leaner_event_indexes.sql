-- Event ids are stored as uuid: 16 bytes, cheaper to compare and index than 36 characters of text.
-- The position index need not check uniqueness ("offset" comes from its sequence and is in the
-- primary key): a plain btree costs each append less.
ALTER TABLE events ALTER COLUMN uuid TYPE uuid USING uuid::uuid;
DROP INDEX events_offset_idx;
CREATE INDEX events_offset_idx ON events ("offset");
