-- Nothing queries events by stream_type or event_type yet, and every index costs each append.
-- The audit API will add the indexes its filters need.
DROP INDEX events_stream_type_idx;
DROP INDEX events_event_type_idx;
