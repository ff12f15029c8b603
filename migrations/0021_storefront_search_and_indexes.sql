-- The storefront at 100,000 products: accent- and case-insensitive full-text search that does not
-- depend on the database's locale, and an index for every filter and sort of GET /products.

-- unaccent is a trusted contrib extension (Debian's postgresql package and the postgres image
-- ship it). Its functions are called schema-qualified below.
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;

-- techvault_search_text is text as the search sees it: accents removed (unaccent's rules file),
-- lower-cased and split into words by Unicode's rules (ICU's root collation, whatever the
-- database's LC_CTYPE: a "C" database lower-cases only ASCII and its regular expressions know no
-- letter beyond ASCII), every run of characters that are neither letters nor digits one space.
-- "Crème BRÛLÉE, RTX-4090" is "creme brulee rtx 4090". unaccent() itself is only STABLE (it reads
-- a dictionary chosen by search_path); naming the dictionary makes the result depend on its
-- arguments alone, so the wrapper is declared IMMUTABLE (a changed rules file means recomputing
-- products.search: `techvault projections rebuild products`).
CREATE FUNCTION techvault_search_text(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN btrim(regexp_replace(lower(public.unaccent('public.unaccent'::regdictionary, t) COLLATE "und-x-icu"),
        '[^[:alnum:]]+', ' ', 'g'));

-- techvault_search_vector is products.search: the words of the name (weight A) and of the
-- description (weight D), so that ts_rank ranks a match in the name ten times a match in the
-- description (its default weights are {D 0.1, C 0.2, B 0.4, A 1.0}). The 'simple' configuration
-- neither stems nor drops stop words.
CREATE FUNCTION techvault_search_vector(name text, description text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN setweight(to_tsvector('pg_catalog.simple'::regconfig, techvault_search_text(name)), 'A')
        || setweight(to_tsvector('pg_catalog.simple'::regconfig, techvault_search_text(description)), 'D');

-- techvault_search_query is what a customer types as a tsquery: every word must match a word of
-- the product, the last one as a prefix (search as you type: "gefor" finds GeForce). The words
-- are letters and digits only, so nothing the customer types is read as tsquery syntax. Text
-- without a word gives an empty query, which matches nothing (the API drops such a q first).
CREATE FUNCTION techvault_search_query(q text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN to_tsquery('pg_catalog.simple'::regconfig,
        CASE WHEN techvault_search_text(q) = '' THEN '' ELSE replace(techvault_search_text(q), ' ', ' & ') || ':*' END);

UPDATE products SET search = techvault_search_vector(name, description);

-- One index per sort within a category, so that a category page of any sort reads only its rows
-- (products_category_idx, on (category_id, id), serves the default order). Price ranges are
-- served by these and by products_price_idx. There is deliberately no index on stock: it changes
-- with every sale, and an index naming it would make each of those updates rewrite every index
-- entry of the row (no HOT update); in_stock filters an index-ordered scan instead.
CREATE INDEX products_category_price_idx ON products (category_id, price, id);
CREATE INDEX products_category_name_idx ON products (category_id, name, id);
CREATE INDEX products_category_created_idx ON products (category_id, created_at DESC, id DESC);
CREATE INDEX products_category_rating_idx ON products (category_id, rating DESC, id);

-- New and changed products reach the search index through GIN's pending list, which every search
-- reads in full: 4 MB of it (the default) made a two-word search at 20,000 products take 8 ms
-- instead of 0.5. A short list is merged into the index more often, by the writes themselves.
ALTER INDEX products_search_idx SET (gin_pending_list_limit = 128);
