-- A cart line remembers its product's name when it was added (CartItemAdded v2), so that a line
-- of a product that left the catalog still says what it was. Lines added before (v1) have none.
ALTER TABLE cart_items ADD COLUMN name text NOT NULL DEFAULT '';
