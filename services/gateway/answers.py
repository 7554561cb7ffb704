"""The gateway's read model: what the platform answered each hospital (statements, adjustments,
reversals, refusals), recorded from `claims.statements` and `claims.refusals`, and the requests
hospitals sent through the gateway.

Every instance of the gateway consumes in one consumer group, so each answer is recorded once by
one of them; each batch ends with a `NOTIFY` on `CHANNEL` naming its claims (delivered when it
commits), and every instance `LISTEN`s, so a request waiting for its statement (`?wait=`) is
answered by whichever instance holds it. Without the notification (a lost listener connection)
a waiter polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from runtime.db import Connection, connect
from runtime.logging import get_logger
from runtime.unit_of_work import Inbound, UnitOfWork
from services.intake.routing import moved_event_id

CHANNEL = "gateway_answers"
NOTIFY_BYTES = 7000
"""A notification's payload stays under PostgreSQL's 8,000 bytes: a batch's claims are split."""
POLL_S = 0.5
"""How often a waiter looks without a listener connection."""
ANSWER_LOCK = 0x6761_7465
"""The advisory lock that records answers one transaction at a time (`seq` in commit order)."""

log = get_logger("gateway.answers")


def request_of(payload: Any) -> str | None:
    """The request an answer names: a refusal's `request_event_id`, an adjustment's or reversal's
    cause; a first statement names none."""
    if (refused := getattr(payload, "request_event_id", None)) is not None:
        return str(refused)
    cause = getattr(payload, "cause", None)
    return None if cause is None else str(cause.request_event_id)


class AnswersHandler:
    """Records a batch of answers (each once, by event id) and notifies the waiting instances."""

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound]) -> None:
        conn: Connection = uow.conn  # type: ignore[attr-defined]
        rows = [(m.envelope.event_id, m.payload.hospital_id, m.payload.claim_id, m.envelope.event_type,
                 request_of(m.payload), m.envelope.occurred_at, m.payload.model_dump_json()) for m in batch]
        if not rows:
            return
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ANSWER_LOCK)
        recorded = await conn.fetch(
            """INSERT INTO answer (event_id, hospital_id, claim_id, event_type, request_event_id, occurred_at, payload)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                                    $7::jsonb[])
               ON CONFLICT (event_id) DO NOTHING RETURNING claim_id""",
            *(list(col) for col in zip(*rows, strict=True)))
        for chunk in _chunks(sorted({r["claim_id"] for r in recorded})):
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, chunk)


def _chunks(claim_ids: Sequence[str]) -> Iterable[str]:
    part: list[str] = []
    size = 0
    for claim_id in claim_ids:
        if part and size + len(claim_id.encode()) + 1 > NOTIFY_BYTES:
            yield "\n".join(part)
            part, size = [], 0
        part.append(claim_id)
        size += len(claim_id.encode()) + 1
    if part:
        yield "\n".join(part)


# ------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class AnswerRow:
    seq: int
    event_id: uuid.UUID
    hospital_id: str
    claim_id: str
    event_type: str
    request_event_id: str | None
    occurred_at: datetime
    payload_json: str
    """the contract as the database returns it (JSON text)"""

    @classmethod
    def of(cls, r: asyncpg.Record) -> AnswerRow:
        return cls(r["seq"], r["event_id"], r["hospital_id"], r["claim_id"], r["event_type"], r["request_event_id"],
                   r["occurred_at"], r["payload"])

    @property
    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.payload_json)
        return found

    def to_json(self) -> bytes:
        """The answer as the API's `Answer` document, without parsing the payload again (the hot path
        of a request waiting for its statement)."""
        head = {"cursor": self.seq, "event_type": self.event_type, "event_id": str(self.event_id),
                "claim_id": self.claim_id, "request_event_id": self.request_event_id,
                "occurred_at": self.occurred_at.isoformat()}
        return json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "payload": ' + self.payload_json.encode() + b"}"


_COLUMNS = "seq, event_id, hospital_id, claim_id, event_type, request_event_id, occurred_at, payload"


async def since(conn: Connection, hospital_id: str, cursor: int, limit: int) -> list[AnswerRow]:
    """The hospital's answers recorded after `cursor`, oldest first."""
    rows = await conn.fetch(f"""SELECT {_COLUMNS} FROM answer WHERE hospital_id = $1 AND seq > $2
                                ORDER BY seq LIMIT $3""", hospital_id, cursor, limit)
    return [AnswerRow.of(r) for r in rows]


async def of_claim(conn: Connection, hospital_id: str, claim_id: str) -> tuple[list[AnswerRow], list[asyncpg.Record]]:
    """One claim of the hospital: its answers and the requests sent for it through the gateway."""
    answers = await conn.fetch(f"""SELECT {_COLUMNS} FROM answer WHERE claim_id = $1 AND hospital_id = $2
                                   ORDER BY seq""", claim_id, hospital_id)
    requests = await conn.fetch("""SELECT event_id, request_type, accepted_at FROM request
                                   WHERE claim_id = $1 AND hospital_id = $2 ORDER BY accepted_at""",
                                claim_id, hospital_id)
    return [AnswerRow.of(r) for r in answers], list(requests)


class RequestLog:
    """Records the requests sent through this instance, many per statement: each `record` waits
    until its row is committed, and the rows that arrive meanwhile are written together. The rows
    are a convenience (a claim's status is "pending" until its answer) while the requests
    themselves are durable on the broker, so they are committed without waiting for the disk
    (`synchronous_commit = off`): at a few hundred requests a second, one fsync each would be the
    gateway's limit. It writes on a connection of its own, so the writes never queue behind the
    pool's reads of many waiting requests."""

    def __init__(self, server_url: str, database: str) -> None:
        self.server_url, self.database = server_url, database
        self._conn: asyncpg.Connection | None = None
        self._rows: list[tuple[uuid.UUID, str, str, str]] = []
        self._done: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()

    async def record(self, event_id: uuid.UUID, hospital_id: str, claim_id: str, request_type: str) -> None:
        self._rows.append((event_id, hospital_id, claim_id, request_type))
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        done = self._done
        async with self._lock:  # one write at a time; the rows that arrived during it go in the next
            if not done.done():
                rows, self._rows, self._done = self._rows, [], None
                try:
                    await self._write(rows)
                except Exception as exc:  # noqa: BLE001 - every waiter of the batch gets the failure
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        await done

    async def _write(self, rows: list[tuple[uuid.UUID, str, str, str]]) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(self.server_url, self.database)
            await self._conn.execute("SET synchronous_commit = off")
        async with self._conn.transaction():
            await self._conn.execute(
                """INSERT INTO request (event_id, hospital_id, claim_id, request_type)
                   SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
                   ON CONFLICT (event_id) DO NOTHING""", *(list(col) for col in zip(*rows, strict=True)))

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
        self._conn = None


async def answer_to(conn: Connection, hospital_id: str, claim_id: str, request_type: str,
                    request_event_id: uuid.UUID) -> AnswerRow | None:
    """The answer to one request: the answer naming it (as the hospital sent it, or as the intake
    moved it on), else, for a discharge, the claim's statement."""
    ids = [str(request_event_id), str(moved_event_id(hospital_id, request_event_id))]
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM answer WHERE claim_id = $1 AND hospital_id = $2
              AND (request_event_id = ANY($3::text[]) OR ($4 AND event_type = 'SettlementStatement'))
            ORDER BY (request_event_id = ANY($3::text[])) DESC NULLS LAST, seq DESC LIMIT 1""",
        claim_id, hospital_id, ids, request_type == "DischargeRecorded")
    return None if row is None else AnswerRow.of(row)


# ------------------------------------------------------------------------------------ waiting


class Waiters:
    """Requests of this instance waiting for an answer, woken by the read model's notifications."""

    def __init__(self, server_url: str, database: str) -> None:
        self.server_url, self.database = server_url, database
        self._conn: asyncpg.Connection | None = None
        self._events: dict[str, set[asyncio.Event]] = {}

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        self._conn = await connect(self.server_url, self.database)
        await self._conn.add_listener(CHANNEL, self._notified)

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
        self._conn = None

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        for claim_id in str(payload).split("\n"):
            for event in self._events.get(claim_id, ()):
                event.set()

    @contextlib.contextmanager
    def watching(self, claim_id: str) -> Any:
        event = asyncio.Event()
        self._events.setdefault(claim_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._events.get(claim_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[claim_id]

    async def until(self, event: asyncio.Event, deadline: float) -> bool:
        """Sleep until `event` (a notification for the claim) or `deadline`; False at the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        wait = left if self.listening else min(left, POLL_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), wait)
        event.clear()
        return True
