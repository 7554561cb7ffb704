"""How the batch consumer meets failure, against fakes: infrastructure is retried with back-off and
never dead-lettered, a data error dead-letters its one record, an unknown error is retried a few
times before its record is dead-lettered, a fatal error stops the service; dead letters fit."""

from __future__ import annotations

import asyncio
import hashlib
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError

from contracts import EnrollPerson, encode, make_envelope
from contracts.identity import make_identity_number
from runtime import consumer as consumer_module
from runtime.consumer import BatchConsumer, Subscription
from runtime.deadletter import (
    H_LENGTH,
    H_REASON,
    H_SHA256,
    H_TRUNCATED,
    MAX_LETTER_BYTES,
    TRUNCATED_VALUE_BYTES,
    DeadLetter,
    outgoing,
)
from runtime.errors import Backoff, ErrorClass, classify, retry_infrastructure

PIDS = [make_identity_number("500242", date(1980, 1, 1), i) for i in range(1, 6)]


def record(offset: int, pid: str) -> ConsumerRecord:
    cmd = EnrollPerson(person_id=pid, name="n", scheme="resident", categories=("ordinary",),
                       payment_date=date(2025, 12, 1), coverage_year=2026)
    value = encode(make_envelope(cmd, correlation_id=pid, producer="test"))
    return ConsumerRecord(topic="enrollment.commands", partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=pid.encode(), value=value, checksum=None, serialized_key_size=18,
                          serialized_value_size=len(value), headers=[])


class FakeConnection:
    @asynccontextmanager
    async def transaction(self) -> Any:
        yield

    async def fetch(self, *args: Any) -> list[Any]:
        return []  # the input watermarks (runtime/watermark.py): none yet, every record is new


class FakePool:
    @asynccontextmanager
    async def acquire(self) -> Any:
        yield FakeConnection()


class Scripted:
    """A handler that fails as scripted: `failures[person id]` is a list of exceptions to raise on
    successive calls that include that person (then it succeeds)."""

    def __init__(self, failures: dict[str, list[BaseException]]) -> None:
        self.failures = failures
        self.calls: list[list[str]] = []
        self.stored: list[str] = []

    async def __call__(self, uow: Any, batch: list[Any]) -> None:
        ids = [m.payload.person_id for m in batch]
        self.calls.append(ids)
        for pid in ids:
            if self.failures.get(pid):
                raise self.failures[pid].pop(0)
        self.stored += ids


@pytest.fixture
def letters(monkeypatch: pytest.MonkeyPatch) -> list[DeadLetter]:
    sent: list[DeadLetter] = []

    async def send(broker: Any, dead: list[DeadLetter], service: str) -> None:
        sent.extend(dead)

    async def nothing_pending(pool: Any, broker: Any) -> int:
        return 0

    monkeypatch.setattr(consumer_module, "send_dead_letters", send)
    monkeypatch.setattr(consumer_module, "publish_pending", nothing_pending)
    return sent


def make(handler: Scripted, **kw: Any) -> BatchConsumer:
    sub = Subscription("enrollment.commands", handler, (EnrollPerson,))
    return BatchConsumer(sub, "test", FakePool, publisher=None, backoff=Backoff(base=0.001, cap=0.002), **kw)


async def test_infrastructure_failures_are_retried_until_they_pass_and_nothing_is_dead_lettered(letters) -> None:
    handler = Scripted({PIDS[0]: [ConnectionRefusedError("db down"), asyncpg.PostgresConnectionError("lost"),
                                  KafkaConnectionError("broker down")]})
    await make(handler).process([record(0, PIDS[0]), record(1, PIDS[1])])
    assert len(handler.calls) == 4 and handler.stored == PIDS[:2]
    assert letters == []


async def test_a_data_error_dead_letters_its_record_at_once_and_the_others_are_stored(letters) -> None:
    handler = Scripted({PIDS[1]: [asyncpg.exceptions.NumericValueOutOfRangeError("numeric field overflow")] * 2})
    await make(handler).process([record(0, PIDS[0]), record(1, PIDS[1]), record(2, PIDS[2])])
    assert handler.stored == [PIDS[0], PIDS[2]]
    assert [(d.offset, d.reason.split(":")[0]) for d in letters] == [(1, "data error")]
    assert handler.calls.count([PIDS[1]]) == 1, "a data error is not retried"


async def test_an_unknown_error_is_retried_a_few_times_then_its_record_is_dead_lettered(letters) -> None:
    handler = Scripted({PIDS[0]: [ValueError("a bug")] * 10})
    await make(handler, unknown_error_attempts=3).process([record(0, PIDS[0]), record(1, PIDS[1])])
    assert handler.calls.count([PIDS[0]]) == 3 and handler.stored == [PIDS[1]]
    assert letters[0].reason == "handler error after 3 attempts: ValueError: a bug"


async def test_an_unknown_error_that_goes_away_dead_letters_nothing(letters) -> None:
    handler = Scripted({PIDS[0]: [ValueError("a glitch"), ValueError("a glitch")]})
    await make(handler, unknown_error_attempts=3).process([record(0, PIDS[0])])
    assert handler.stored == [PIDS[0]] and letters == []


async def test_a_missing_schema_stops_the_service_and_dead_letters_nothing(letters) -> None:
    stopped: list[str] = []
    handler = Scripted({PIDS[0]: [asyncpg.exceptions.UndefinedTableError('relation "ledger" does not exist')] * 5})
    consumer = make(handler, on_fatal=stopped.append)
    with pytest.raises(asyncpg.exceptions.UndefinedTableError):
        await consumer.process([record(0, PIDS[0]), record(1, PIDS[1])])
    assert letters == [] and handler.stored == []
    assert len(stopped) == 1 and "UndefinedTableError" in stopped[0]
    with pytest.raises(Exception, match="cannot go on"):  # a redelivery before the shutdown does nothing
        await consumer.process([record(0, PIDS[0])])
    assert letters == [] and len(handler.calls) == 1


def test_classification() -> None:
    assert classify(OSError("refused")) is ErrorClass.INFRASTRUCTURE
    assert classify(TimeoutError()) is ErrorClass.INFRASTRUCTURE
    assert classify(KafkaConnectionError()) is ErrorClass.INFRASTRUCTURE
    assert classify(asyncpg.exceptions.AdminShutdownError("terminating")) is ErrorClass.INFRASTRUCTURE
    assert classify(asyncpg.exceptions.UndefinedTableError("gone")) is ErrorClass.FATAL
    assert classify(asyncpg.exceptions.InvalidCatalogNameError("no db")) is ErrorClass.FATAL
    assert classify(asyncpg.exceptions.NumericValueOutOfRangeError("overflow")) is ErrorClass.DATA
    assert classify(asyncpg.exceptions.CharacterNotInRepertoireError("NUL")) is ErrorClass.DATA
    assert classify(ValueError("bug")) is ErrorClass.UNKNOWN


def test_back_off_grows_and_is_capped() -> None:
    backoff = Backoff(base=0.5, cap=30.0)
    delays = [max(backoff.delay(n) for _ in range(200)) for n in range(12)]
    assert delays[0] <= 1.0 and max(delays) <= 30.0 and delays[-1] > 15.0
    assert all(backoff.delay(n) >= 0.25 for n in range(12))


async def test_retry_infrastructure_raises_what_is_not_infrastructure() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError("reset")
        if calls == 3:
            raise ValueError("not infrastructure")
        return "ok"

    with pytest.raises(ValueError):
        await retry_infrastructure("flaky", flaky, Backoff(base=0.001, cap=0.002))
    assert calls == 3


def test_a_dead_letter_that_would_not_fit_keeps_a_bounded_prefix_its_length_and_hash() -> None:
    value = b"x" * 1_000_000
    out = outgoing(DeadLetter("claims.discharges", 2, 41, b"k", value, (("event_type", b"X"),), "too big"), "settlement")
    assert out.value == value[:TRUNCATED_VALUE_BYTES]
    assert out.headers[H_TRUNCATED] == "true" and out.headers[H_LENGTH] == "1000000"
    assert out.headers[H_SHA256] == hashlib.sha256(value).hexdigest()
    assert out.headers[H_REASON] == "too big" and out.headers["event_type"] == "X"
    size = len(out.value) + len(out.key or b"") + sum(len(k) + len(v.encode()) for k, v in out.headers.items())
    assert size < MAX_LETTER_BYTES


def test_a_dead_letter_that_fits_is_the_original_and_huge_keys_and_headers_are_bounded() -> None:
    small = outgoing(DeadLetter("t", 0, 1, b"k", b"{}", (), "bad"), "s")
    assert small.value == b"{}" and "dlt.truncated" not in small.headers
    hostile = DeadLetter("t", 0, 1, b"k" * 500_000, b"{}", tuple((f"h{i}", b"v" * 2000) for i in range(100)),
                         "r\x00" * 5000)
    out = outgoing(hostile, "s")
    assert len(out.key or b"") == 1024 and out.headers[H_TRUNCATED] == "true"
    assert out.headers.get("dlt.headers.dropped") == "true"
    assert "\x00" not in out.headers[H_REASON] and len(out.headers[H_REASON]) <= 2000


async def test_a_producer_that_cannot_go_on_is_replaced_before_the_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a broker restart an idempotent producer can be stuck with OutOfOrderSequenceNumber for
    ever: the publisher drops it and the retry gets a new one."""
    from aiokafka.errors import OutOfOrderSequenceNumber

    from runtime import publisher as publisher_module

    made: list[Any] = []

    class FakeProducer:
        def __init__(self, **_: Any) -> None:
            self.broken = not made  # the first one is stuck
            self.sent: list[bytes] = []
            self.stopped = False
            made.append(self)

        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            self.stopped = True

        async def send(self, topic: str, value: bytes, **_: Any) -> Any:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self.broken:
                done.set_exception(OutOfOrderSequenceNumber())
            else:
                self.sent.append(value)
                done.set_result(None)
            return done

    monkeypatch.setattr(publisher_module, "AIOKafkaProducer", FakeProducer)
    pub = publisher_module.Publisher({}, client_id="test")
    records = [("t", b"v1", b"k", {}), ("t", b"v2", b"k", {})]
    await retry_infrastructure("publishing", lambda: pub.send_all(records), Backoff(base=0.001, cap=0.002))
    assert [p.stopped for p in made] == [True, False] and made[1].sent == [b"v1", b"v2"]
