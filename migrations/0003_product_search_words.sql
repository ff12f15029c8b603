-- The 'simple' parser keeps "rtx-4090" as 'rtx' + '-4090' and "4.0" as one token, while searches
-- split on punctuation: index the words with punctuation turned into spaces, as SearchQuery does.
DROP INDEX products_search_idx;
ALTER TABLE products DROP COLUMN search;
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', regexp_replace(name || ' ' || description, '[^[:alnum:]]+', ' ', 'g'))
) STORED;
CREATE INDEX products_search_idx ON products USING gin (search);
