-- A rebuild of the categories projector reads only the category streams' own events (created,
-- renamed, deleted), a few hundred in a log of hundreds of thousands: the CategoryReferenced
-- events of the same streams (one per product put in a category) change nothing in its table and
-- it skips them. Without an index it walked the whole log to find its events (0.43-0.48 s of the
-- catalog's rebuild at 400,000 events). This partial index holds only those events, so an append
-- of any other event costs a predicate check and no index entry; the rebuild's read
-- (ReadAfterProjectedQuery, planned with the projector's stream and skipped types) walks it.
CREATE INDEX events_category_idx ON events (transaction_id, "offset")
    WHERE stream_type = 'category' AND event_type <> 'CategoryReferenced';
