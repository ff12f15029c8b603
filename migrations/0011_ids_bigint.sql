-- Ids are bigint end to end (issue 11, item 6): an integer sequence failed every create after
-- 2^31-1 ids, and concurrent seed runs or failed commands burn ids. The sequences and every read
-- column that holds a category or product id widen together, so any id a sequence hands out can
-- be projected. Widening rewrites these tables once, under an exclusive lock.
ALTER SEQUENCE category_ids AS bigint;
ALTER SEQUENCE product_ids AS bigint;
ALTER TABLE categories ALTER COLUMN id TYPE bigint;
ALTER TABLE products ALTER COLUMN id TYPE bigint, ALTER COLUMN category_id TYPE bigint;
ALTER TABLE products_deleted_categories ALTER COLUMN category_id TYPE bigint;
