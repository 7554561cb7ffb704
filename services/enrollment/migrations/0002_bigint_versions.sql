-- Versions are 64-bit, as the contracts say (contracts.limits.Version).
ALTER TABLE person ALTER COLUMN version TYPE bigint;
ALTER TABLE person_event ALTER COLUMN version TYPE bigint;
ALTER TABLE provider ALTER COLUMN version TYPE bigint;
ALTER TABLE provider_event ALTER COLUMN version TYPE bigint;
