"""A local projection of a compacted registry topic (persons, providers) into the service's own
database, with its read position tracked in the same transaction as the rows it wrote
(eventsourcing's "tracking"): a restart resumes exactly where it stopped, a replay changes nothing.

`catch_up()` reads until the end offsets as of the call, so a registry change published before a
claim is visible when that claim is settled.

A record that does not decode, or that the database refuses, is dead-lettered to `<topic>.dlt`
and the position moves past it: one bad snapshot on a compacted topic (where a restart would
read it again forever) never halts the projection, nor the claims that catch it up first.
Infrastructure failures are raised to the caller, which retries with back-off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts import Contract
from runtime.consumer import decode_records
from runtime.db import Connection
from runtime.deadletter import DeadLetter, send_dead_letters
from runtime.errors import ErrorClass, classify, retry_infrastructure
from runtime.logging import get_logger
from runtime.unit_of_work import Inbound

ApplyBatch = Callable[[Connection, Sequence[Any]], Awaitable[None]]
"""Applies decoded payloads (in topic order) to the projection's tables."""
log = get_logger("runtime.projection")

TRACKING_DDL = """CREATE TABLE IF NOT EXISTS projection_position (
    topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition))"""


class Projection:
    def __init__(self, topic: str, model: type[Contract], apply: ApplyBatch, kafka_options: dict[str, Any],
                 pool_getter: Callable[[], asyncpg.Pool], client_id: str, *, publisher: Any, service: str) -> None:
        self.topic = topic
        self.model = model
        self.apply = apply
        self.publisher = publisher
        self.service = service
        self._kafka = kafka_options
        """The service's client options (`Settings.kafka_options()`: the broker, TLS, its principal)."""
        self._pool = pool_getter
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets: AIOKafkaConsumer | None = None
        """A second client only for end offsets: on the reading consumer's connection a ListOffsets
        request would queue behind its long-polling fetch (up to fetch_max_wait_ms per batch)."""
        self._lock = asyncio.Lock()
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(**self._kafka, enable_auto_commit=False,
                                          group_id=None, client_id=self._client_id, auto_offset_reset="earliest")
        await self._consumer.start()
        self._offsets = AIOKafkaConsumer(**self._kafka, group_id=None,
                                         client_id=f"{self._client_id}-offsets")
        await self._offsets.start()
        parts = self._consumer.partitions_for_topic(self.topic)
        for _ in range(50):
            if parts:
                break
            await asyncio.sleep(0.1)
            await self._consumer._client.force_metadata_update()  # noqa: SLF001 - no public way to refresh metadata
            parts = self._consumer.partitions_for_topic(self.topic)
        if not parts:
            raise RuntimeError(f"topic {self.topic} does not exist (start the stack: python -m tools.stack start)")
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self._consumer.assign(self._partitions)
        self._consumer.pause(*self._partitions)  # fetch only inside catch_up()
        async with self._pool().acquire() as conn:
            await conn.execute(TRACKING_DDL)
            rows = await conn.fetch("SELECT partition, next_offset FROM projection_position WHERE topic = $1", self.topic)
        known = {r["partition"]: r["next_offset"] for r in rows}
        for tp in self._partitions:
            if tp.partition in known:
                self._consumer.seek(tp, known[tp.partition])
            else:
                await self._consumer.seek_to_beginning(tp)
        await self.catch_up()

    async def stop(self) -> None:
        if self._offsets is not None:
            await self._offsets.stop()
            self._offsets = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def lag(self) -> int:
        """Records of the topic not yet projected: its end offsets now minus the read positions."""
        if self._consumer is None or self._offsets is None:
            return 0
        ends = await self._offsets.end_offsets(self._partitions)
        behind = 0
        for tp in self._partitions:
            behind += max(0, int(ends[tp]) - int(await self._consumer.position(tp)))
        return behind

    async def catch_up(self) -> int:
        """Apply everything published up to now; returns the number of records applied."""
        assert self._consumer is not None and self._offsets is not None, "projection not started"
        async with self._lock:
            consumer = self._consumer
            ends = await self._offsets.end_offsets(self._partitions)
            behind = [tp for tp in self._partitions if await consumer.position(tp) < ends[tp]]
            if not behind:
                return 0
            consumer.resume(*self._partitions)
            try:
                return await self._read_until(ends)
            finally:
                consumer.pause(*self._partitions)

    async def _read_until(self, ends: dict[TopicPartition, int]) -> int:
        consumer = self._consumer
        assert consumer is not None
        applied = 0
        while [tp for tp in self._partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(*self._partitions, timeout_ms=500, max_records=2000)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            try:
                applied += await self._apply(records)
            except BaseException:
                for tp, rs in batches.items():  # not stored: read these records again next time
                    if rs:
                        consumer.seek(tp, rs[0].offset)
                raise
        return applied

    async def _apply(self, records: list[ConsumerRecord]) -> int:
        """Apply a batch and move the positions past it, in one transaction; what cannot be
        applied is dead-lettered first. Returns the number of records applied."""
        inbound, undecodable = decode_records(records, (self.model,))
        if undecodable:  # before the position moves past them (a crash in between only repeats a letter)
            await self._dead_letter(undecodable)
        try:
            await self._transaction(inbound, _positions(records))
            return len(inbound)
        except Exception as exc:
            if classify(exc) in (ErrorClass.INFRASTRUCTURE, ErrorClass.FATAL):
                raise
            log.warning("projection batch failed; isolating the failing records", topic=self.topic,
                        error=f"{type(exc).__name__}: {exc}")
        refused = await self._one_by_one(inbound)
        if refused:
            await self._dead_letter(refused)
        await self._transaction([], _positions(records))
        return len(inbound) - len(refused)

    async def _one_by_one(self, inbound: list[Inbound]) -> list[DeadLetter]:
        dead: list[DeadLetter] = []
        for msg in inbound:
            try:
                await self._transaction([msg], {})
            except Exception as exc:
                if classify(exc) in (ErrorClass.INFRASTRUCTURE, ErrorClass.FATAL):
                    raise
                dead.append(DeadLetter(msg.topic, msg.partition, msg.offset,
                                       msg.key.encode() if msg.key is not None else None, msg.value, msg.headers,
                                       f"data error: {type(exc).__name__}: {exc}"))
        return dead

    async def _transaction(self, inbound: list[Inbound], positions: dict[int, int]) -> None:
        async with self._pool().acquire() as conn, conn.transaction():
            if inbound:
                await self.apply(conn, [m.payload for m in inbound])
            if positions:
                await conn.executemany(
                    """INSERT INTO projection_position (topic, partition, next_offset) VALUES ($1, $2, $3)
                       ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset""",
                    [(self.topic, partition, offset) for partition, offset in positions.items()])

    async def _dead_letter(self, dead: list[DeadLetter]) -> None:
        for d in dead:
            log.warning("dead-lettered", topic=d.topic, partition=d.partition, offset=d.offset, reason=d.reason)
        await retry_infrastructure(f"{self.service}: publishing dead letters of {self.topic}",
                                   lambda: send_dead_letters(self.publisher, dead, self.service))


def _positions(records: list[ConsumerRecord]) -> dict[int, int]:
    """The next offset to read per partition after `records`."""
    out: dict[int, int] = {}
    for r in records:
        out[r.partition] = max(out.get(r.partition, 0), r.offset + 1)
    return out
