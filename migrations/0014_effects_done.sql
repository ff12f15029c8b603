-- Side effects (mail, Stripe, Cloudinary, notifications) run once per event: a reactor records
-- each event it has acted on, keyed by event id, as soon as the effect succeeds. A batch retried
-- after a later event failed skips the events already acted on.
CREATE TABLE effects_done (
    reactor  text        NOT NULL,
    event_id uuid        NOT NULL,
    done_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reactor, event_id)
);
