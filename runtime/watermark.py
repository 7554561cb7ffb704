"""Input watermarks and the pruning of `processed_event` (bounded tables).

A batch is one transaction, and a partition's records arrive in offset order, so once a batch has
committed, every record of its partitions up to the batch's highest offset has been handled (stored,
or dead-lettered before the transaction). `unhandled` keeps the records above their partition's
watermark and moves the watermark, in the batch's transaction: a redelivered batch, or a consumer
group replayed over a retained topic, is skipped before the handler runs, without looking up
`processed_event`.

`processed_event` then only guards against the same event arriving again at a *new* offset: a
producer that crashed after sending and before deleting its outbox rows sends them again within
moments. `prune_processed` deletes the rows older than `PROCESSED_RETENTION_S` (7 days by default);
every such row is below its partition's watermark, since both were written by the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from runtime.db import Connection
from runtime.unit_of_work import Inbound

PRUNE_CHUNK = 10_000


async def unhandled(conn: Connection, batch: Sequence[Inbound]) -> list[Inbound]:
    """The records of `batch` above their partition's watermark (in order); moves the watermarks to
    the batch's highest offsets. One statement; the rows are locked until the transaction ends."""
    if not batch:
        return []
    top: dict[tuple[str, int], int] = {}
    for m in batch:
        key = (m.topic, m.partition)
        top[key] = max(top.get(key, -1), m.offset)
    keys = sorted(top)
    rows = await conn.fetch(
        """WITH old AS (
               SELECT w.topic, w.partition, w."offset" FROM input_watermark w
               JOIN unnest($1::text[], $2::int[]) AS t(topic, partition) USING (topic, partition)
               FOR UPDATE OF w
           ), moved AS (
               INSERT INTO input_watermark AS w (topic, partition, "offset")
               SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
               ON CONFLICT (topic, partition) DO UPDATE SET "offset" = greatest(w."offset", EXCLUDED."offset")
           )
           SELECT topic, partition, "offset" FROM old""",
        [t for t, _ in keys], [p for _, p in keys], [top[k] for k in keys])
    seen = {(r["topic"], r["partition"]): r["offset"] for r in rows}
    return [m for m in batch if m.offset > seen.get((m.topic, m.partition), -1)]


async def prune_processed(conn: Connection, older_than: timedelta) -> int:
    """Delete the `processed_event` rows older than `older_than`, a chunk per transaction; returns how many."""
    total = 0
    while True:
        deleted = await conn.fetchval(
            """WITH gone AS (
                   DELETE FROM processed_event WHERE ctid = ANY(ARRAY(
                       SELECT ctid FROM processed_event WHERE processed_at < now() - $1::interval LIMIT $2))
                   RETURNING 1)
               SELECT count(*) FROM gone""", older_than, PRUNE_CHUNK)
        total += int(deleted or 0)
        if not deleted or deleted < PRUNE_CHUNK:
            return total
