-- The runtime's tables, in every service database.

-- Inputs this service has applied, by natural key (claim id, command event id, ...).
-- Inserting a key that exists means "already processed": the input is not applied again.
CREATE TABLE processed_event (
    key          text PRIMARY KEY,
    topic        text NOT NULL,
    event_id     uuid,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Outgoing events, written in the same transaction as the state they derive from, published
-- after commit and then marked. Rows stay as the record of what the service emitted.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          text NOT NULL,
    event_type   text NOT NULL,
    value        bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
