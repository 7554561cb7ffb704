-- The W3C trace context (`traceparent`) an outgoing event carries as a header: the span of the
-- input that caused it (runtime/tracing.py). Null for rows written before, or outside a traced batch.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS traceparent text;
