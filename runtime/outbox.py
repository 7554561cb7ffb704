"""Publishing the outbox: after a commit, send every row, wait for the broker's acknowledgement,
then delete the rows (the outbox holds only what is not yet published; the topics are the record
of what was sent). Rows are locked with SKIP LOCKED so two instances of a service never publish
the same row at once; a crash before deleting re-sends rows with the same event id, which
consumers drop."""

from __future__ import annotations

import asyncpg

from runtime.publisher import Publisher
from runtime.tracing import TRACEPARENT

BATCH = 2000


def _headers(row: asyncpg.Record) -> dict[str, str]:
    """`event_type`, and `traceparent` (W3C, `runtime.tracing`) when the row was emitted in a traced batch."""
    if row["traceparent"] is None:
        return {"event_type": row["event_type"]}
    return {"event_type": row["event_type"], TRACEPARENT: row["traceparent"]}


async def publish_pending(pool: asyncpg.Pool, publisher: Publisher, limit: int = BATCH) -> int:
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, topic, key, event_type, value, traceparent FROM outbox
                   ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""", limit)
            if not rows:
                return total
            await publisher.send_all([(r["topic"], bytes(r["value"]), r["key"].encode(), _headers(r)) for r in rows])
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
            total += len(rows)
        if len(rows) < limit:
            return total
