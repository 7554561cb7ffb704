-- Bounded tables (docs/architecture.md, "Delivery guarantees").
-- Per input partition, the highest offset of a batch this service committed (runtime/watermark.py):
-- every record at or below it was handled, so a redelivered or replayed record is skipped before the
-- handler, whatever `processed_event` still holds.
CREATE TABLE input_watermark (
    topic     text NOT NULL,
    partition int NOT NULL,
    "offset"  bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
-- `processed_event` keeps an event id for PROCESSED_RETENTION_S only (against the same event sent
-- again at a new offset); older rows are pruned (runtime/watermark.py, `prune_processed`).
CREATE INDEX processed_event_age ON processed_event (processed_at);
-- The outbox keeps what is not yet published: a published row is deleted (runtime/outbox.py).
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX IF EXISTS outbox_unpublished;
