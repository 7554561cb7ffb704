"""The batch consumer every service runs: decode → dead-letter what is bad → one transaction of
state plus outbox → publish the outbox → commit offsets (FastStream acks after the handler).

Every failure is classified (`runtime.errors`) and none is retried at full speed:
- a record that does not decode, or whose key is not its payload's subject, is dead-lettered with
  the reason and the batch moves on (decoding raises nothing but `ContractError`);
- infrastructure failures (database or broker unreachable) pause the consumer and retry with
  capped exponential back-off and jitter, logged once per interval, for as long as it takes:
  nothing is dead-lettered and nothing is skipped;
- a failed batch is retried one record at a time: a data error (a value the database refuses)
  dead-letters that record at once, anything unknown is retried a few times with back-off, then
  that record is dead-lettered; the others commit;
- a fatal error (the service's database schema is gone) stops the service with a clear message,
  committing nothing and dead-lettering nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from contracts import Contract, ContractError, check_key, decode
from runtime import metrics, tracing, watermark
from runtime.db import Connection
from runtime.deadletter import DeadLetter, send_dead_letters
from runtime.errors import (
    Backoff,
    ErrorClass,
    RetryLog,
    ServiceFatal,
    classify,
    retry_infrastructure,
)
from runtime.logging import bound_claim, claim_id_of, get_logger
from runtime.outbox import publish_pending
from runtime.unit_of_work import Inbound, PostgresUnitOfWork

BatchHandler = Callable[[Any, list[Inbound]], Awaitable[None]]
"""Handles one batch in a unit of work (`runtime.unit_of_work.UnitOfWork` or a service's own)."""
BeforeBatch = Callable[[], Awaitable[None]]
OnFatal = Callable[[str], None]

log = get_logger("runtime.consumer")

UNKNOWN_ERROR_ATTEMPTS = 3
"""How often a record that fails for an unknown reason is tried before it is dead-lettered."""


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
    unit_of_work: Callable[[Connection, str], PostgresUnitOfWork] = PostgresUnitOfWork
    """Makes the handler's unit of work from the batch's connection and the topic prefix (a
    service with repositories of its own gives its own)."""
    dead_letter_invalid_payloads: bool = False
    """With `invalid_payloads_to_handler`: dead-letter such a record as well (the audit keeps it in
    its event store and still dead-letters it on the topics it owns)."""
    pattern: str | None = None
    """A regular expression of topic names (prefix included) to consume instead of `topic`, which
    then only names the subscription (its consumer group and logs); topics created later are
    picked up at the next metadata refresh. Records keep their own topic (`Inbound.topic`), and
    their dead letters go to `contracts.topics.dead_letter_topic` of it."""


def _key(record: ConsumerRecord) -> str | None:
    return record.key.decode("utf-8", "replace") if record.key is not None else None


def decode_records(records: Sequence[ConsumerRecord], expected: tuple[type[Contract], ...], *,
                   invalid_payloads_to_handler: bool = False) -> tuple[list[Inbound], list[DeadLetter]]:
    """Each record decoded once: what decodes (with the right key) goes on, the rest becomes dead
    letters with the reason. With `invalid_payloads_to_handler`, a record whose envelope decodes
    but whose payload breaks its contract goes on with `error` set."""
    inbound: list[Inbound] = []
    dead: list[DeadLetter] = []
    for r in records:
        key = _key(r)
        headers = tuple(r.headers or ())
        env = None
        try:
            env = decode(r.value or b"", *expected)
            check_key(env, key)
        except ContractError as exc:
            if (invalid_payloads_to_handler and exc.envelope is not None
                    and exc.field not in (None, "event_type", "schema_version", "key")):
                inbound.append(Inbound(r.topic, r.partition, r.offset, key, exc.envelope, error=exc, value=r.value,
                                       headers=headers))
            else:
                dead.append(DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, headers, exc.reason,
                                       exc.field, claim_id_of(env.payload if env is not None else exc.envelope)))
            continue
        inbound.append(Inbound(r.topic, r.partition, r.offset, key, env, value=r.value, headers=headers))
    return inbound, dead


class BatchConsumer:
    """Runs one subscription's batches against the service's pool and publisher."""

    def __init__(self, sub: Subscription, service: str, pool_getter: Callable[[], asyncpg.Pool], publisher: Any,
                 topic_prefix: str = "", *, on_fatal: OnFatal | None = None, backoff: Backoff | None = None,
                 unknown_error_attempts: int = UNKNOWN_ERROR_ATTEMPTS) -> None:
        self.sub = sub
        self.topic_prefix = topic_prefix
        self.service = service
        self._pool = pool_getter
        self.publisher = publisher
        self.on_fatal = on_fatal
        self.backoff = backoff or Backoff()
        self.unknown_error_attempts = unknown_error_attempts
        self.fatal: str | None = None
        self._failures = RetryLog(f"{service}: a batch of {sub.topic}")

    async def _transaction(self, batch: list[Inbound]) -> None:
        async with self._pool().acquire() as conn, conn.transaction():
            uow = self.sub.unit_of_work(conn, self.topic_prefix)
            todo = await watermark.unhandled(conn, batch)  # a redelivery or a replay stops here
            if todo:
                await self.sub.handler(uow, todo)
            await uow.flush()
        metrics.observe_emitted(self.service, uow.flushed)  # committed

    async def process(self, records: Sequence[ConsumerRecord]) -> None:
        """Process a batch. Returns normally when every record is stored or dead-lettered (the
        offsets may then be committed); raises only when the service is stopping on a fatal error
        or after an unexpected failure, and then only after a back-off pause, so a redelivered
        batch is never retried at full speed."""
        if self.fatal is not None:
            await asyncio.sleep(1)
            raise ServiceFatal(self.fatal)
        started = time.perf_counter()
        try:
            with tracing.traced_batch(self.service, self.sub.topic, len(records)) as trace_index:
                await self._process(records, trace_index)
        except Exception as exc:
            if classify(exc) is ErrorClass.FATAL:
                self._stop_on_fatal(exc)
                raise
            metrics.BATCH_FAILURES.labels(self.service, self.sub.topic).inc()
            self._failures.failed(exc, topic=self.sub.topic)
            await asyncio.sleep(self.backoff.delay(self._failures.attempts))
            raise
        self._failures.recovered(topic=self.sub.topic)
        metrics.RECORDS_CONSUMED.labels(self.service, self.sub.topic).inc(len(records))
        metrics.BATCH_SECONDS.labels(self.service, self.sub.topic).observe(time.perf_counter() - started)

    async def _process(self, records: Sequence[ConsumerRecord], trace_index: tracing.TraceIndex) -> None:
        started = time.perf_counter()
        if self.sub.before_batch is not None:
            await retry_infrastructure(f"{self.service}: catching up before a batch", self.sub.before_batch,
                                       self.backoff, topic=self.sub.topic)
        t_before = time.perf_counter()
        inbound, dead = decode_records(records, self.sub.expected,
                                       invalid_payloads_to_handler=self.sub.invalid_payloads_to_handler)
        if self.sub.dead_letter_invalid_payloads:
            dead += [DeadLetter(m.topic, m.partition, m.offset, m.key.encode() if m.key is not None else None, m.value,
                                m.headers, getattr(m.error, "reason", str(m.error)), getattr(m.error, "field", None))
                     for m in inbound if m.error is not None]
        for m in inbound:  # each record's span (made when needed): the parent of what the handler emits for it
            trace_index.add(m.topic, m.offset, m.headers, m.envelope.event_id, m.envelope.correlation_id, m.key)
        t_decoded = time.perf_counter()
        if inbound:
            dead += await self._store(inbound)
        if dead:
            claims = {(m.topic, m.partition, m.offset): claim_id_of(m.payload) for m in inbound}
            for d in dead:
                with bound_claim(d.claim_id or claims.get((d.topic, d.partition, d.offset))):
                    log.warning("dead-lettered" if self.sub.dead_letters else "undecodable record skipped",
                                topic=d.topic, partition=d.partition, offset=d.offset, reason=d.reason)
                metrics.DEAD_LETTERS.labels(self.service, self.sub.topic, metrics.reason_class(d.reason, d.field)).inc()
            if self.sub.dead_letters:
                await retry_infrastructure(f"{self.service}: publishing dead letters",
                                           lambda: send_dead_letters(self.publisher, dead, self.service),
                                           self.backoff, topic=self.sub.topic)
        t_stored = time.perf_counter()
        published = await retry_infrastructure(f"{self.service}: publishing the outbox",
                                               lambda: publish_pending(self._pool(), self.publisher), self.backoff)
        log.debug("batch", topic=self.sub.topic, records=len(records), published=published,
                  before_ms=round((t_before - started) * 1000, 1), decode_ms=round((t_decoded - t_before) * 1000, 1),
                  store_ms=round((t_stored - t_decoded) * 1000, 1),
                  publish_ms=round((time.perf_counter() - t_stored) * 1000, 1))

    async def _store(self, inbound: list[Inbound]) -> list[DeadLetter]:
        """Store the batch in one transaction; if that fails for a reason other than
        infrastructure, store it record by record and return the records that could not be."""
        try:
            await retry_infrastructure(f"{self.service}: storing a batch", lambda: self._transaction(inbound),
                                       self.backoff, topic=self.sub.topic)
            return []
        except Exception as exc:
            if classify(exc) is ErrorClass.FATAL:
                raise
            log.warning("batch failed; isolating the failing records", topic=self.sub.topic, size=len(inbound),
                        error=f"{type(exc).__name__}: {exc}")
        return await self._one_by_one(inbound)

    async def _one_by_one(self, inbound: list[Inbound]) -> list[DeadLetter]:
        dead: list[DeadLetter] = []
        for msg in inbound:
            with bound_claim(claim_id_of(msg.payload)):  # every line about this one record names its claim
                await self._isolate(msg, dead)
        return dead

    async def _isolate(self, msg: Inbound, dead: list[DeadLetter]) -> None:
        """Store one record alone; a record that cannot be stored is added to `dead`."""
        attempt = 0
        while True:
            try:
                await retry_infrastructure(f"{self.service}: storing a record",
                                           lambda msg=msg: self._transaction([msg]),  # type: ignore[misc]
                                           self.backoff, topic=self.sub.topic)
                break
            except Exception as exc:
                kind = classify(exc)
                if kind is ErrorClass.FATAL:
                    raise
                attempt += 1
                if kind is ErrorClass.DATA or attempt >= self.unknown_error_attempts:
                    reason = (f"data error: {type(exc).__name__}: {exc}" if kind is ErrorClass.DATA else
                              f"handler error after {attempt} attempts: {type(exc).__name__}: {exc}")
                    log.error("record failed", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                              reason=reason)
                    dead.append(DeadLetter(msg.topic, msg.partition, msg.offset,
                                           msg.key.encode() if msg.key is not None else None, msg.value,
                                           msg.headers, reason))
                    break
                await asyncio.sleep(self.backoff.delay(attempt))

    def _stop_on_fatal(self, exc: BaseException) -> None:
        if self.fatal is not None:
            return
        self.fatal = (f"{self.service} cannot go on: {type(exc).__name__}: {exc}. Its database or schema is gone "
                      "(was the stack reset under it?). Nothing of this batch was committed or dead-lettered; "
                      "start the service again once its database is back (it migrates at start-up).")
        log.critical("stopping the service", reason=self.fatal, topic=self.sub.topic)
        if self.on_fatal is not None:
            self.on_fatal(self.fatal)
