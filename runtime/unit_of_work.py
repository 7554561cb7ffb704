"""One transaction of a service's state plus its outgoing events (cosmicpython's unit of work).

A handler receives a `UnitOfWork`. It asks which inputs are new (`new_only`), changes its state
through the repositories the service's unit of work carries (e.g. a layer's `ledger`), and
`emit`s outgoing events. `PostgresUnitOfWork` is bound to an open transaction: the events go to
the outbox in the same transaction and are published after commit. `InMemoryUnitOfWork` keeps
everything in dicts and lists, for handler unit tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts import Envelope, encode
from runtime.db import Connection
from runtime.tracing import traceparent_for


@dataclass(frozen=True)
class Inbound:
    """A consumed record whose envelope decoded; `payload` is the validated contract model,
    or the payload as sent (a dict) with `error` set when the subscription asked to see invalid
    payloads itself."""

    topic: str
    partition: int
    offset: int
    key: str | None
    envelope: Envelope[Any]
    error: Exception | None = None
    value: bytes | None = None
    """the record's original bytes (what a dead letter carries)"""
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def payload(self) -> Any:
        return self.envelope.payload


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: str
    envelope: Envelope[Any]
    traceparent: str | None = None
    """the W3C trace context the record will carry (the span of the input that caused it)"""


def outgoing(topic: str, envelope: Envelope[Any]) -> Outgoing:
    key = envelope.payload.message_key()
    return Outgoing(topic, key, envelope, traceparent_for(envelope.causation_id, envelope.correlation_id, key))


class UnitOfWork(Protocol):
    """What every handler may do with its unit of work (services add their repositories)."""

    topic_prefix: str

    async def new_only(self, batch: Sequence[Inbound], key: Callable[[Inbound], str]) -> list[Inbound]:
        """The messages of `batch` whose natural key was never processed, first occurrence only,
        in batch order; records them as processed (a redelivered copy inside the same batch, or
        one processed by an earlier batch, is dropped)."""
        ...

    def emit(self, topic: str, envelope: Envelope[Any]) -> None:
        """Queue an event for `topic`, keyed by its payload's subject (`Contract.message_key`)."""
        ...

    async def flush(self) -> int:
        """Store the queued events (the outbox); returns how many."""
        ...


def _first_occurrences(batch: Sequence[Inbound], key: Callable[[Inbound], str]) -> dict[str, Inbound]:
    first: dict[str, Inbound] = {}
    for msg in batch:
        first.setdefault(key(msg), msg)
    return first


@dataclass
class PostgresUnitOfWork:
    """A unit of work inside an open PostgreSQL transaction: `processed_event` and `outbox`."""

    conn: Connection
    topic_prefix: str = ""
    outgoing: list[Outgoing] = field(default_factory=list)
    flushed: list[Envelope[Any]] = field(default_factory=list)
    """what `flush` wrote to the outbox (counted in the metrics once the transaction commits)"""

    async def first_time(self, topic: str, keys: Sequence[tuple[str, uuid.UUID | None]]) -> set[str]:
        """Record inputs as processed; returns the keys that had not been processed before."""
        if not keys:
            return set()
        rows = await self.conn.fetch(
            """INSERT INTO processed_event (key, topic, event_id)
               SELECT k, $1, e FROM unnest($2::text[], $3::uuid[]) AS t(k, e)
               ON CONFLICT (key) DO NOTHING RETURNING key""",
            topic, [k for k, _ in keys], [e for _, e in keys])
        return {r["key"] for r in rows}

    async def new_only(self, batch: Sequence[Inbound], key: Callable[[Inbound], str]) -> list[Inbound]:
        first = _first_occurrences(batch, key)
        if not first:
            return []
        new = await self.first_time(batch[0].topic, [(k, m.envelope.event_id) for k, m in first.items()])
        return [m for k, m in first.items() if k in new]

    def emit(self, topic: str, envelope: Envelope[Any]) -> None:
        self.outgoing.append(outgoing(self.topic_prefix + topic, envelope))

    async def flush(self) -> int:
        """Write emitted events to the outbox (an event id already there is not written again)."""
        if not self.outgoing:
            return 0
        await self.conn.execute(
            """INSERT INTO outbox (event_id, topic, key, event_type, value, traceparent)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[])
               ON CONFLICT (event_id) DO NOTHING""",
            [o.envelope.event_id for o in self.outgoing], [o.topic for o in self.outgoing],
            [o.key for o in self.outgoing], [o.envelope.event_type for o in self.outgoing],
            [encode(o.envelope) for o in self.outgoing], [o.traceparent for o in self.outgoing])
        n = len(self.outgoing)
        self.flushed.extend(o.envelope for o in self.outgoing)
        self.outgoing.clear()
        return n


@dataclass
class InMemoryUnitOfWork:
    """A unit of work in memory (handler unit tests): what was processed, and the outbox. One
    instance plays the part of the database across batches."""

    topic_prefix: str = ""
    processed: set[str] = field(default_factory=set)
    outgoing: list[Outgoing] = field(default_factory=list)
    outbox: dict[uuid.UUID, Outgoing] = field(default_factory=dict)
    """what `flush` stored, by event id (a re-emitted id is not stored again)"""

    async def new_only(self, batch: Sequence[Inbound], key: Callable[[Inbound], str]) -> list[Inbound]:
        new = [m for k, m in _first_occurrences(batch, key).items() if k not in self.processed]
        self.processed.update(key(m) for m in new)
        return new

    def emit(self, topic: str, envelope: Envelope[Any]) -> None:
        self.outgoing.append(outgoing(self.topic_prefix + topic, envelope))

    async def flush(self) -> int:
        n = len(self.outgoing)
        for o in self.outgoing:
            self.outbox.setdefault(o.envelope.event_id, o)
        self.outgoing.clear()
        return n

    def events(self, topic: str) -> list[Any]:
        """The payloads stored for `topic`, in order."""
        return [o.envelope.payload for o in self.outbox.values() if o.topic == self.topic_prefix + topic]
