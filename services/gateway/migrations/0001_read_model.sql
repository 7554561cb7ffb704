-- The gateway's read model (services/gateway/answers.py): what the platform answered each hospital,
-- in the order it was recorded (`seq` is the cursor of GET /v1/statements?since=), and the requests
-- hospitals sent through the gateway (so a claim is "pending" between its request and its answer).
-- Rows are recorded under one advisory lock per transaction, so `seq` grows in commit order and a
-- cursor never skips a row that commits later.
CREATE TABLE answer (
    seq              bigserial PRIMARY KEY,
    event_id         uuid NOT NULL UNIQUE,
    hospital_id      text NOT NULL,
    claim_id         text NOT NULL,
    event_type       text NOT NULL,
    request_event_id text,                   -- the request it answers, where the answer names it
    occurred_at      timestamptz NOT NULL,
    payload          jsonb NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX answer_hospital ON answer (hospital_id, seq);
CREATE INDEX answer_claim ON answer (claim_id, seq);

CREATE TABLE request (
    event_id     uuid PRIMARY KEY,
    hospital_id  text NOT NULL,
    claim_id     text NOT NULL,
    request_type text NOT NULL,
    accepted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_claim ON request (claim_id, accepted_at);
