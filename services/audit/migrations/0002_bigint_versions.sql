-- Snapshot versions are 64-bit, as the contracts say (contracts.limits.Version).
ALTER TABLE person_snapshot ALTER COLUMN version TYPE bigint;
ALTER TABLE provider_snapshot ALTER COLUMN version TYPE bigint;
