"""The batch consumer every service runs: decode → dead-letter what is bad → one transaction of
state plus outbox → publish the outbox → commit offsets (FastStream acks after the handler).

A handler error that is not an infrastructure failure is isolated: the batch is retried one
record at a time and only the failing record goes to the dead-letter topic, so a bad record never
blocks its partition. Infrastructure failures (database, broker) are raised; FastStream then
seeks back and the batch is redelivered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from contracts import Contract, ContractError, decode, decode_envelope, decode_payload
from runtime.deadletter import DeadLetter, send_dead_letters
from runtime.logging import get_logger
from runtime.outbox import publish_pending
from runtime.unit_of_work import Inbound, UnitOfWork

BatchHandler = Callable[[UnitOfWork, list[Inbound]], Awaitable[None]]
BeforeBatch = Callable[[], Awaitable[None]]

log = get_logger("runtime.consumer")

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.exceptions.InsufficientResourcesError, asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError,
)


@dataclass(frozen=True)
class Subscription:
    """One input topic of a service and the handler of its batches."""

    topic: str
    handler: BatchHandler
    expected: tuple[type[Contract], ...]
    invalid_payloads_to_handler: bool = False
    """If true, a record whose envelope decodes but whose payload is invalid reaches the handler
    with `error` set (enrollment turns it into a rejection event); otherwise it is dead-lettered."""
    before_batch: BeforeBatch | None = None
    """Awaited before each batch (settlement catches up its registry projections here)."""
    dead_letters: bool = True
    """False for an observer (audit): what it cannot decode is logged, not dead-lettered, because
    the topic's own consumer dead-letters it and one letter per bad record is what operators redrive."""


def _key(record: ConsumerRecord) -> str | None:
    return record.key.decode("utf-8", "replace") if record.key is not None else None


def decode_records(records: Sequence[ConsumerRecord], sub: Subscription) -> tuple[list[Inbound], list[DeadLetter]]:
    inbound: list[Inbound] = []
    dead: list[DeadLetter] = []
    for r in records:
        if len(sub.expected) == 1:  # fast path: one typed parse; errors take the path below for their reason
            try:
                inbound.append(Inbound(r.topic, r.partition, r.offset, _key(r), decode(r.value or b"", *sub.expected),
                                       value=r.value, headers=tuple(r.headers or ())))
                continue
            except ContractError:
                pass

        def letter(reason: str, field: str | None = None, r: ConsumerRecord = r) -> DeadLetter:
            return DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), reason, field)
        try:
            env = decode_envelope(r.value or b"")
        except ContractError as exc:
            dead.append(letter(exc.reason, exc.field))
            continue
        try:
            payload = decode_payload(env, *sub.expected)
        except ContractError as exc:
            if sub.invalid_payloads_to_handler and exc.field != "event_type":
                inbound.append(Inbound(r.topic, r.partition, r.offset, _key(r), env, error=exc, value=r.value,
                                       headers=tuple(r.headers or ())))
            else:
                dead.append(letter(exc.reason, exc.field))
            continue
        inbound.append(Inbound(r.topic, r.partition, r.offset, _key(r), env.model_copy(update={"payload": payload}),
                               value=r.value, headers=tuple(r.headers or ())))
    return inbound, dead


class BatchConsumer:
    """Runs one subscription's batches against the service's pool and broker."""

    def __init__(self, sub: Subscription, service: str, pool_getter: Callable[[], asyncpg.Pool], broker: Any,
                 topic_prefix: str = "") -> None:
        self.sub = sub
        self.topic_prefix = topic_prefix
        self.service = service
        self._pool = pool_getter
        self.broker = broker

    async def _transaction(self, batch: list[Inbound]) -> None:
        async with self._pool().acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn, self.topic_prefix)
            await self.sub.handler(uow, batch)
            await uow.flush()

    async def process(self, records: Sequence[ConsumerRecord]) -> None:
        started = time.perf_counter()
        if self.sub.before_batch is not None:
            await self.sub.before_batch()
        t_before = time.perf_counter()
        inbound, dead = decode_records(records, self.sub)
        t_decoded = time.perf_counter()
        if inbound:
            try:
                await self._transaction(inbound)
            except INFRASTRUCTURE_ERRORS:
                log.warning("infrastructure failure; the batch will be redelivered", topic=self.sub.topic, exc_info=True)
                await asyncio.sleep(1)  # back off before FastStream seeks back and redelivers
                raise
            except Exception:
                log.warning("batch failed; isolating the failing records", topic=self.sub.topic, size=len(inbound),
                            exc_info=True)
                dead += await self._one_by_one(inbound)
        if dead:
            for d in dead:
                log.warning("dead-lettered" if self.sub.dead_letters else "undecodable record skipped",
                            topic=d.topic, partition=d.partition, offset=d.offset, reason=d.reason)
            if self.sub.dead_letters:
                await send_dead_letters(self.broker, dead, self.service)
        t_stored = time.perf_counter()
        published = await publish_pending(self._pool(), self.broker)
        log.debug("batch", topic=self.sub.topic, records=len(records), published=published,
                  before_ms=round((t_before - started) * 1000, 1), decode_ms=round((t_decoded - t_before) * 1000, 1),
                  store_ms=round((t_stored - t_decoded) * 1000, 1),
                  publish_ms=round((time.perf_counter() - t_stored) * 1000, 1))

    async def _one_by_one(self, inbound: list[Inbound]) -> list[DeadLetter]:
        dead: list[DeadLetter] = []
        for msg in inbound:
            try:
                await self._transaction([msg])
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:  # a bug or a domain error on this record only
                log.error("record failed", topic=msg.topic, partition=msg.partition, offset=msg.offset, exc_info=True)
                dead.append(DeadLetter(msg.topic, msg.partition, msg.offset,
                                       msg.key.encode() if msg.key else None, msg.value, msg.headers,
                                       f"handler error: {type(exc).__name__}: {exc}"))
        return dead
