-- Snapshot versions are 64-bit, as the contracts say (contracts.limits.Version): a snapshot with
-- version 3,000,000,000 must be stored, not overflow an int column and halt every catch-up.
ALTER TABLE person_projection ALTER COLUMN version TYPE bigint;
ALTER TABLE provider_projection ALTER COLUMN version TYPE bigint;
