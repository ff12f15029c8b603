-- products.search was a STORED generated column: Postgres recomputes it (a regexp and a
-- to_tsvector) on every UPDATE of the row, a stock change included, which made every product
-- write several times dearer than it needs to be. The products projector now writes it itself,
-- with the same expression, only when the name or the description changes.
ALTER TABLE products DROP COLUMN search;
ALTER TABLE products ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;
UPDATE products SET search = to_tsvector('simple', regexp_replace(name || ' ' || description, '[^[:alnum:]]+', ' ', 'g'));
CREATE INDEX products_search_idx ON products USING gin (search);
