"""The one shared service runtime: settings, masked JSON logs, PostgreSQL pool and migrations,
the FastStream app factory, the batch consumer with idempotency tracking and an outbox, and the
dead-letter helper. Services import from here; nothing of this is copied into a service."""
