-- The gateway's own projections of the enrollment registry (from the compacted snapshot topics),
-- caught up before each pre-settlement, in the shape settlement keeps them (services/settlement/store.py
-- writes and reads both): a pre-settlement judges eligibility on the registry as it is now, not as
-- settlement last caught it up (before its last batch of discharges).
CREATE TABLE person_projection (
    person_id text PRIMARY KEY,
    version   bigint NOT NULL,
    snapshot  jsonb NOT NULL
);

CREATE TABLE provider_projection (
    provider_id text PRIMARY KEY,
    version     bigint NOT NULL,
    snapshot    jsonb NOT NULL
);
