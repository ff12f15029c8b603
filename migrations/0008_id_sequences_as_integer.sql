-- The read tables' ids are integer (shared/SCHEMA.dbml). A sequence that ran past 2^31-1 would let a
-- command append an event no projector can apply; as integer sequences, the command fails instead.
ALTER SEQUENCE category_ids AS integer;
ALTER SEQUENCE product_ids AS integer;
