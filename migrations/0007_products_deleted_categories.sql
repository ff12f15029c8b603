-- Owned by the products projector: the categories it has seen deleted. A product created or moved
-- into a category whose deletion raced ahead of it in the log is projected uncategorised, as the
-- products of a deleted category are.
CREATE TABLE products_deleted_categories (
    category_id integer PRIMARY KEY
);
