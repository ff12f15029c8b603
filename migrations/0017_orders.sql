-- Carts, orders and promo codes: the read tables of shared/SCHEMA.dbml, written only by the
-- carts, orders and promo_codes projectors (projections/orderproj). The id sequences are
-- 0018_order_ids's.
--
-- Deviations from the brief's schema (ARCHITECTURE.md "order status and promo/discount columns"):
-- - ids are bigint and come from the events; money is numeric(12,2) like products.price.
-- - No foreign keys: a rebuild swaps one projector's tables at a time, and the tables of different
--   projectors (carts and products, orders and users) fill at different paces.
-- - cart_items is keyed by (cart_id, product_id); its id is the log position of the
--   CartItemAdded event that created the line, so a rebuild gives every line the same id.
-- - order_items.id is order_id * 1000 + the line's index in OrderPlaced (an order has at most 50
--   lines), deterministic for rebuilds.
-- - promo_codes.expiration_date is NULL for a code that never expires (the brief's NOT NULL
--   DEFAULT now() would make every code expire at its creation); discount is bigint (a percentage,
--   or an amount in cents: see kind); a deleted promo's row is deleted.

-- One cart per user, reused after each checkout: id is the user's id.
CREATE TABLE carts (
    id         bigint      PRIMARY KEY,
    user_id    bigint      NOT NULL UNIQUE,
    promo_id   bigint,
    promo_code varchar(50),
    version    bigint      NOT NULL,
    created_at timestamp   NOT NULL DEFAULT now(),
    updated_at timestamp   NOT NULL DEFAULT now()
);

-- unit_price is the price remembered when the line was added; version is the cart stream's
-- version of the last event that changed the line.
CREATE TABLE cart_items (
    cart_id    bigint        NOT NULL,
    product_id bigint        NOT NULL,
    id         bigint        NOT NULL UNIQUE,
    quantity   integer       NOT NULL,
    unit_price numeric(12,2) NOT NULL,
    version    bigint        NOT NULL,
    created_at timestamp     NOT NULL DEFAULT now(),
    updated_at timestamp     NOT NULL DEFAULT now(),
    PRIMARY KEY (cart_id, product_id)
);

-- total_amount = subtotal - discount. city, post_code and country are the order's copy of the
-- delivery address, opened with the customer's key: empty once the customer is erased (the
-- totals stay). order_date is when the order was placed.
CREATE TABLE orders (
    id                bigint        PRIMARY KEY,
    user_id           bigint        NOT NULL,
    total_amount      numeric(12,2) NOT NULL,
    order_date        timestamp,
    address_id        bigint        NOT NULL,
    status            text          NOT NULL,
    subtotal          numeric(12,2) NOT NULL,
    discount          numeric(12,2) NOT NULL DEFAULT 0,
    currency          char(3)       NOT NULL DEFAULT 'USD',
    promo_id          bigint,
    promo_code        varchar(50),
    city              varchar(100)  NOT NULL DEFAULT '',
    post_code         varchar(20)   NOT NULL DEFAULT '',
    country           varchar(20)   NOT NULL DEFAULT '',
    payment_intent_id text,
    paid_at           timestamp,
    version           bigint        NOT NULL,
    created_at        timestamp     NOT NULL DEFAULT now(),
    updated_at        timestamp     NOT NULL DEFAULT now()
);
-- A customer's orders, newest first; the admins' list by status, and by placing time.
CREATE INDEX orders_user_idx ON orders (user_id, id DESC);
CREATE INDEX orders_status_idx ON orders (status, id DESC);
CREATE INDEX orders_created_idx ON orders (created_at, id);

-- price is the unit price when the order was placed; total = price * quantity.
CREATE TABLE order_items (
    id         bigint        PRIMARY KEY,
    quantity   integer       NOT NULL,
    price      numeric(12,2) NOT NULL,
    order_id   bigint        NOT NULL,
    product_id bigint        NOT NULL,
    name       varchar(255)  NOT NULL,
    total      numeric(12,2) NOT NULL,
    created_at timestamp     NOT NULL DEFAULT now(),
    updated_at timestamp     NOT NULL DEFAULT now()
);
CREATE INDEX order_items_order_idx ON order_items (order_id, id);

-- Every status an order took, keyed by the log position of the event that set it.
CREATE TABLE order_status_history (
    order_id bigint    NOT NULL,
    position bigint    NOT NULL,
    status   text      NOT NULL,
    at       timestamp NOT NULL,
    PRIMARY KEY (order_id, position)
);

-- code is in its normal form (upper case), unique case-insensitively by the promo_code
-- reservation streams; usage_limit 0 means unlimited.
CREATE TABLE promo_codes (
    id              bigint      PRIMARY KEY,
    code            varchar(50) NOT NULL,
    kind            text        NOT NULL,
    discount        bigint      NOT NULL DEFAULT 0,
    expiration_date timestamp,
    usage_limit     bigint      NOT NULL DEFAULT 0,
    usage_count     bigint      NOT NULL DEFAULT 0,
    is_active       boolean     NOT NULL DEFAULT true,
    version         bigint      NOT NULL,
    created_at      timestamp   NOT NULL DEFAULT now(),
    updated_at      timestamp   NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX promo_codes_code_idx ON promo_codes (code);
