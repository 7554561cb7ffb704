-- Local projections of the enrollment registry (from the compacted snapshot topics).
-- A snapshot replaces the row only if its version is higher, so replays change nothing.
CREATE TABLE person_projection (
    person_id text PRIMARY KEY,
    version   int NOT NULL,
    snapshot  jsonb NOT NULL
);

CREATE TABLE provider_projection (
    provider_id text PRIMARY KEY,
    version     int NOT NULL,
    snapshot    jsonb NOT NULL
);
