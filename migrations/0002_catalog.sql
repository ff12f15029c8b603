-- Catalog read tables (shared/SCHEMA.dbml), written only by projectors. Ids come from the events.
CREATE TABLE categories (
    id          integer      PRIMARY KEY,
    name        varchar(50)  NOT NULL,
    description varchar(500),
    version     bigint       NOT NULL,
    created_at  timestamp    NOT NULL DEFAULT now(),
    updated_at  timestamp    NOT NULL DEFAULT now()
);
CREATE INDEX categories_name_idx ON categories (name, id);

CREATE TABLE products (
    id           integer       PRIMARY KEY,
    name         varchar(255)  NOT NULL,
    description  text          NOT NULL DEFAULT '',
    price        numeric(12,2) NOT NULL DEFAULT 0,
    currency     char(3)       NOT NULL DEFAULT 'USD',
    category_id  integer,
    stock        integer       NOT NULL DEFAULT 0,
    rating       numeric(3,2)  NOT NULL DEFAULT 0,
    rating_count integer       NOT NULL DEFAULT 0,
    version      bigint        NOT NULL,
    created_at   timestamp     NOT NULL DEFAULT now(),
    updated_at   timestamp     NOT NULL DEFAULT now(),
    search       tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', name || ' ' || description)
    ) STORED
);
CREATE INDEX products_category_idx ON products (category_id, id);
CREATE INDEX products_price_idx ON products (price, id);
CREATE INDEX products_name_idx ON products (name, id);
CREATE INDEX products_created_idx ON products (created_at DESC, id DESC);
CREATE INDEX products_rating_idx ON products (rating DESC, id);
CREATE INDEX products_search_idx ON products USING gin (search);
