-- The uses of promo codes, one row per order that took one (projections/orderproj, promo_codes
-- projector): a code's usage_count is the number of its rows not released. Counting the uses
-- from the orders, rather than from the promo's own stream, lets a code without a usage limit be
-- used by any number of concurrent orders without their appends meeting on its stream.
CREATE TABLE promo_code_uses (
    order_id bigint PRIMARY KEY,
    promo_id bigint NOT NULL,
    released boolean NOT NULL DEFAULT false
);
CREATE INDEX promo_code_uses_promo_idx ON promo_code_uses (promo_id);
