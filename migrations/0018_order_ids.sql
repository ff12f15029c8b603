-- Id sequences of the order platform: an order's and a promo code's id is taken when the
-- command is decided, so the command's answer names what it created.
CREATE SEQUENCE order_ids AS bigint;
CREATE SEQUENCE promo_ids AS bigint;
