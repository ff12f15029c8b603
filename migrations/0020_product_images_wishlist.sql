-- Product images and wishlists: the read tables product_image and wishlist of shared/SCHEMA.dbml.
--
-- product_image is owned by the products projector (projections/catalogproj), which writes it in
-- the same transaction as products, so a product card read after its notification sees both.
-- Deviations from the brief's schema:
-- - ids are bigint and come from the events (product_image_ids is taken when the upload is
--   decided, so the answer names the image); image_id is the Cloudinary public id.
-- - added: position (1 = first), cover (exactly one image of a product that has any), the
--   Cloudinary transformation URLs of a thumbnail and a full size, the stored format, size and
--   dimensions, and version (the product stream's version that last arranged the image).
-- - No foreign key and no unique index on the cover: a rebuild swaps one projector's tables at a
--   time, and a batch that moves the cover writes several rows in one statement (the domain
--   keeps one cover per product).
CREATE SEQUENCE product_image_ids AS bigint;

CREATE TABLE product_image (
    id            bigint       PRIMARY KEY,
    url           varchar(255) NOT NULL,
    image_id      varchar(255) NOT NULL,
    product_id    bigint       NOT NULL,
    position      integer      NOT NULL,
    cover         boolean      NOT NULL,
    thumbnail_url text         NOT NULL,
    full_url      text         NOT NULL,
    format        varchar(10)  NOT NULL,
    width         integer      NOT NULL,
    height        integer      NOT NULL,
    bytes         bigint       NOT NULL,
    version       bigint       NOT NULL,
    created_at    timestamp    NOT NULL DEFAULT now(),
    updated_at    timestamp    NOT NULL DEFAULT now()
);
CREATE INDEX product_image_product_idx ON product_image (product_id, position);

-- wishlist is owned by the wishlist projector (projections/wishlistproj): one row per user and
-- product (ARCHITECTURE.md: the brief's one-to-one arrow would allow one item per user). id is
-- the log position of the WishlistItemAdded event, so a rebuild gives every row the same id, and
-- newest first is id DESC. No foreign keys, as above.
CREATE TABLE wishlist (
    user_id    bigint    NOT NULL,
    product_id bigint    NOT NULL,
    id         bigint    NOT NULL UNIQUE,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX wishlist_user_idx ON wishlist (user_id, id DESC);
CREATE INDEX wishlist_product_idx ON wishlist (product_id);

-- Owned by the wishlist projector: the products it has seen deleted. An add that raced a deletion
-- of its product (decided before it, delivered after it) is never projected.
CREATE TABLE wishlist_deleted_products (
    product_id bigint PRIMARY KEY
);
