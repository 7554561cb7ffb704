"""The gateway's pure parts: who a Basic user is, a claim's status from its answers, what an answer
names as its request, notifications that fit PostgreSQL's limit, and an answer written as stored
conforming to the API's `Answer` document."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

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
