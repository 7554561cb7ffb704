"""The gateway's pure parts: who a Basic user is, a claim's status from its answers, what an answer
names as its request, notifications that fit PostgreSQL's limit, and an answer written as stored
conforming to the API's `Answer` document."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from services.gateway.answers import NOTIFY_BYTES, AnswerRow, _chunks, request_of
from services.gateway.api import Answer, claim_status
from services.gateway.hospitals import hospital_of


@pytest.mark.parametrize(("user", "hospital"), [
    ("hospital-H001", "H001"), ("H001", "H001"), ("hospital-H_2-x", "H_2-x"),
    ("hospital-", None), ("", None), ("hospital-H.1", None), ("hospital-a b", None), ("x" * 41, None),
])
def test_a_basic_user_names_a_hospital_as_its_broker_user_does(user: str, hospital: str | None) -> None:
    assert hospital_of(user) == hospital


def row(event_type: str, seq: int = 1, **payload: Any) -> AnswerRow:
    return AnswerRow(seq, uuid.uuid4(), "H1", "H1:A1", event_type, None, datetime(2026, 4, 1, tzinfo=UTC),
                     json.dumps(payload))


def test_a_claims_status_is_its_latest_statement_else_refused_else_pending() -> None:
    assert claim_status([]) == "pending"
    assert claim_status([row("ClaimRequestRefused")]) == "refused"
    assert claim_status([row("SettlementStatement", outcome="settled")]) == "settled"
    assert claim_status([row("SettlementStatement", outcome="rejected")]) == "rejected"
    assert claim_status([row("SettlementStatement", outcome="settled"), row("SettlementReversed"),
                         row("ClaimRequestRefused")]) == "reversed"
    assert claim_status([row("SettlementStatement", outcome="settled"), row("SettlementReversed"),
                         row("SettlementAdjusted", outcome="settled")]) == "settled"


def test_an_answer_names_the_request_of_a_refusal_or_of_its_cause() -> None:
    assert request_of(SimpleNamespace(request_event_id="r1")) == "r1"
    assert request_of(SimpleNamespace(cause=SimpleNamespace(request_event_id="r2"))) == "r2"
    assert request_of(SimpleNamespace(cause=None)) is None


def test_notifications_stay_under_postgresqls_limit_and_name_every_claim() -> None:
    claims = [f"H{i:05d}:{'x' * 60}" for i in range(1000)]
    chunks = list(_chunks(claims))
    assert len(chunks) > 1 and all(len(c.encode()) <= NOTIFY_BYTES for c in chunks)
    assert [c for chunk in chunks for c in chunk.split("\n")] == claims
    assert list(_chunks([])) == []


def test_an_answer_as_stored_is_the_apis_answer_document() -> None:
    payload = {"claim_id": "H1:A1", "hifp_pay": "19920.00", "name": "测试", "nested": {"a": [1, 2]}}
    r = AnswerRow(7, uuid.uuid4(), "H1", "H1:A1", "SettlementStatement", "req-1",
                  datetime(2026, 4, 1, 8, 30, tzinfo=UTC), json.dumps(payload, ensure_ascii=False))
    document = Answer.model_validate_json(r.to_json())
    assert document == Answer.of(r)
    assert document.payload == payload and document.cursor == 7 and document.request_event_id == "req-1"


class FakeProducer:
    """Stands for the hospital's Kafka producer: `start` is the broker's handshake."""

    valid: ClassVar[dict[str, str]] = {"hospital-H1": "right"}
    started: ClassVar[list[FakeProducer]] = []

    def __init__(self, **options: Any) -> None:
        self.user, self.password = options["sasl_plain_username"], options["sasl_plain_password"]
        self.stopped = False

    async def start(self) -> None:
        from aiokafka.errors import KafkaConnectionError

        if self.valid.get(self.user) != self.password:
            raise KafkaConnectionError("Unable to bootstrap")
        FakeProducer.started.append(self)

    async def stop(self) -> None:
        self.stopped = True


async def test_sign_in_is_cached_refusals_too_and_a_replaced_session_is_closed_only_later(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import SecretStr

    from runtime.kafka_access import KafkaAccess
    from services.gateway import hospitals

    clock = [1000.0]
    monkeypatch.setattr(hospitals, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(hospitals.time, "monotonic", lambda: clock[0])
    FakeProducer.started = []

    async def broker_answers() -> None:
        return None

    access = KafkaAccess("127.0.0.1:1", "SASL_SSL", "gateway", SecretStr("x"), ca_pem="unused")
    monkeypatch.setattr(KafkaAccess, "ssl_context", lambda self: None)
    sessions = hospitals.HospitalSessions(access, broker_answers)

    first = await sessions.sign_in("hospital-H1", "right")
    assert first.hospital_id == "H1" and await sessions.sign_in("H1", "right") is not first  # another user string
    assert await sessions.sign_in("hospital-H1", "right") is first and len(FakeProducer.started) == 2
    with pytest.raises(hospitals.NotSignedIn):
        await sessions.sign_in("hospital-H1", "wrong")
    with pytest.raises(hospitals.NotSignedIn):  # remembered: no second handshake
        await sessions.sign_in("hospital-H1", "wrong")
    with pytest.raises(hospitals.NotSignedIn):  # not a hospital's user: no handshake at all
        await sessions.sign_in("admin", "right")
    assert len(FakeProducer.started) == 2

    clock[0] += hospitals.SESSION_TTL_S + 1  # expired: the next request signs in again
    second = await sessions.sign_in("hospital-H1", "right")
    assert second is not first and not first.producer.stopped  # a request may still be sending with it
    clock[0] += 2 * hospitals.SESSION_TTL_S + 1
    await sessions.sign_in("hospital-H1", "right")
    await asyncio.sleep(0)
    assert first.producer.stopped
    await sessions.close()
    assert all(p.stopped for p in FakeProducer.started)
