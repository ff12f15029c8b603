-- A projector that cannot apply an event stops there and retries it (nothing is ever skipped);
-- this table says where it is stuck and why, for `projections status` and the admin API. The row
-- goes away in the transaction that finally applies the event.
CREATE TABLE projector_failures (
    projector       text        PRIMARY KEY,
    position        bigint      NOT NULL,
    event_type      text        NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now()
);
