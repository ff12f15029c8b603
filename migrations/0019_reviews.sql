-- Product reviews (issue 14): the id sequence, the reviews projector's tables and the rating
-- aggregate the products projector keeps on products.
--
-- Deviations from the brief's schema (ARCHITECTURE.md "review comment"): ids are bigint and come
-- from the events; title and comment (the review's text) are additions; hidden, helpful_count and
-- verified_purchase are the store's. No foreign keys: the reviews and products projectors fill
-- their tables at their own pace, and a rebuild swaps one projector's tables at a time.
CREATE SEQUENCE review_ids AS bigint;

-- One row per live review (a deleted review's row is deleted; a hidden one stays, flagged).
-- created_at is when it was written, updated_at when it last changed.
CREATE TABLE reviews (
    id                bigint       PRIMARY KEY,
    user_id           bigint       NOT NULL,
    product_id        bigint       NOT NULL,
    rating            integer      NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title             varchar(120) NOT NULL DEFAULT '',
    comment           text         NOT NULL DEFAULT '',
    hidden            boolean      NOT NULL DEFAULT false,
    helpful_count     integer      NOT NULL DEFAULT 0,
    verified_purchase boolean      NOT NULL DEFAULT false,
    version           bigint       NOT NULL,
    created_at        timestamp    NOT NULL DEFAULT now(),
    updated_at        timestamp    NOT NULL DEFAULT now()
);
-- A product's reviews, newest first and most helpful first (keyset pagination), and an author's.
CREATE INDEX reviews_product_newest_idx ON reviews (product_id, created_at DESC, id DESC);
CREATE INDEX reviews_product_helpful_idx ON reviews (product_id, helpful_count DESC, id DESC);
CREATE INDEX reviews_user_product_idx ON reviews (user_id, product_id);

-- What the reviews projector knows of orders, for verified_purchase: one row per product of an
-- order, paid while the order is paid, shipped or delivered (not before payment, not once
-- refunded). version is the order stream's version of the last event applied.
CREATE TABLE review_purchases (
    order_id   bigint  NOT NULL,
    product_id bigint  NOT NULL,
    user_id    bigint  NOT NULL,
    paid       boolean NOT NULL DEFAULT false,
    version    bigint  NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX review_purchases_user_idx ON review_purchases (user_id, product_id);

-- The products projector's view of each review's contribution to its product's rating: a review
-- counts while it is neither hidden nor deleted (a deleted review's row stays, so that the sum
-- of versions below only ever grows). version is the review stream's version last applied.
CREATE TABLE product_review_ratings (
    review_id  bigint   PRIMARY KEY,
    product_id bigint   NOT NULL,
    rating     smallint NOT NULL,
    hidden     boolean  NOT NULL DEFAULT false,
    deleted    boolean  NOT NULL DEFAULT false,
    version    bigint   NOT NULL
);
CREATE INDEX product_review_ratings_product_idx ON product_review_ratings (product_id);

-- rating (the average, two decimals) and rating_count exist since 0002. rating_histogram counts
-- the counted reviews of 1 to 5 stars, in that order. rating_version is the sum of the versions in
-- product_review_ratings of the product: it grows with every rating change, so version +
-- rating_version orders the product cards the Redis view writes (a resync never puts back a card
-- older than one a notification wrote, whichever kind of change made it).
ALTER TABLE products
    ADD COLUMN rating_histogram integer[] NOT NULL DEFAULT '{0,0,0,0,0}' CHECK (cardinality(rating_histogram) = 5),
    ADD COLUMN rating_version   bigint    NOT NULL DEFAULT 0;
