"""The intake's decisions and handlers against an in-memory unit of work, and the names of the
hospitals' topics."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

import pytest

from contracts import (
    ClaimRequestRefused,
    DischargeRecorded,
    ReversalRequested,
    make_envelope,
)
from contracts.topics import (
    DISCHARGES,
    REFUSALS,
    dead_letter_topic,
    hospital_requests_pattern,
    hospital_requests_topic,
    hospital_statements_topic,
    sender_of,
    subscription_of,
)
from runtime.unit_of_work import Inbound, InMemoryUnitOfWork
from services.intake.handlers import AnswersHandler, RequestsHandler
from services.intake.routing import copy_event_id, moved_event_id, route_answer, route_request
from tests.unit.test_layer_handlers import ORDINARY, discharge


def bill(hospital: str = "H1", number: str = "A1") -> DischargeRecorded:
    return discharge(number, hospital, ORDINARY, date(2026, 3, 2), date(2026, 3, 5), [("A", "1000.00")])


def request(payload: Any, producer: str = "hospital:H1") -> Any:
    return make_envelope(payload, correlation_id="as the hospital likes", producer=producer)


def arriving(topic: str, envelopes: Iterable[Any]) -> list[Inbound]:
    return [Inbound(topic, 0, i, e.payload.message_key(), e) for i, e in enumerate(envelopes)]


def test_a_request_from_its_own_hospital_goes_to_settlement_as_from_that_hospital() -> None:
    sent = request(bill("H1"), producer="hospital:H9")  # what a hospital writes in the envelope is not trusted
    topic, moved = route_request("H1", sent)
    assert topic == DISCHARGES and moved.payload == sent.payload
    assert moved.producer == "hospital:H1" and moved.causation_id == sent.event_id
    assert moved.correlation_id == "H1:A1" and moved.occurred_at == sent.occurred_at
    assert moved.event_id == moved_event_id("H1", sent.event_id) != sent.event_id
    assert route_request("H1", sent)[1].event_id == moved.event_id  # redelivered: the same id, dropped downstream


def test_no_hospital_can_take_another_hospitals_event_id() -> None:
    theirs = request(bill("H2"))
    mine = request(bill("H1")).model_copy(update={"event_id": theirs.event_id})  # sent first, with H2's next id
    assert route_request("H1", mine)[1].event_id != route_request("H2", theirs)[1].event_id


@pytest.mark.parametrize("payload", [bill("H2"), ReversalRequested(hospital_claim_id="A1", hospital_id="H2",
                                                                   person_id=ORDINARY, reason="not admitted")])
def test_a_request_for_another_hospitals_provider_is_refused_to_the_sender(payload: Any) -> None:
    sent = request(payload)
    topic, answer = route_request("H1", sent)
    refusal = answer.payload
    assert topic == REFUSALS and isinstance(refusal, ClaimRequestRefused) and answer.producer == "intake"
    assert (refusal.reason_code, refusal.hospital_id, refusal.claim_id) == ("WRONG_HOSPITAL", "H1", "H2:A1")
    assert refusal.request_event_id == str(sent.event_id) and refusal.request_type == sent.event_type
    assert "hospital H1" in refusal.reason and "provider H2" in refusal.reason
    assert refusal.message_key() == ORDINARY  # keyed by person id, like everything about a claim


def test_an_answer_goes_to_the_hospital_it_names_as_a_copy() -> None:
    refusal = _refusal("H7", "A1")
    original = make_envelope(refusal, correlation_id="H7:A1", producer="settlement")
    topic, copy = route_answer(original)
    assert topic == hospital_statements_topic("H7") == "hospital.H7.statements"
    assert copy.payload == refusal and copy.producer == "settlement" and copy.causation_id == original.event_id
    assert copy.event_id == copy_event_id(original.event_id) != original.event_id


async def test_the_requests_handler_moves_each_request_once() -> None:
    uow = InMemoryUnitOfWork(topic_prefix="t1.")
    topic = "t1." + hospital_requests_topic("H1")
    handler = RequestsHandler()
    good, other = request(bill("H1")), request(bill("H2", "B1"))
    await handler(uow, arriving(topic, [good, good, other]))
    await uow.flush()
    await handler(uow, arriving(topic, [good]))  # redelivered after a restart
    await uow.flush()
    assert uow.events(DISCHARGES) == [good.payload]
    assert [e.reason_code for e in uow.events(REFUSALS)] == ["WRONG_HOSPITAL"]


async def test_the_answers_handler_makes_the_hospitals_topics_before_it_writes_to_them() -> None:
    made: list[set[str]] = []

    async def ensure(names: Iterable[str]) -> None:
        made.append(set(names))

    uow = InMemoryUnitOfWork(topic_prefix="t1.")
    refusals = [make_envelope(_refusal(h, n), correlation_id="c", producer="settlement")
                for h, n in (("H1", "A1"), ("H2", "A2"), ("H1", "A3"))]
    await AnswersHandler(ensure)(uow, arriving("t1.claims.refusals", [*refusals, refusals[0]]))
    await uow.flush()
    assert made == [{"t1.hospital.H1.statements", "t1.hospital.H2.statements"}]
    assert [o.topic for o in uow.outbox.values()] == ["t1.hospital.H1.statements", "t1.hospital.H2.statements",
                                                      "t1.hospital.H1.statements"]


def _refusal(hospital: str, number: str) -> ClaimRequestRefused:
    return ClaimRequestRefused(request_event_id="r", request_type="ReversalRequested", claim_id=f"{hospital}:{number}",
                               hospital_claim_id=number, hospital_id=hospital, person_id=ORDINARY,
                               reason_code="UNKNOWN_CLAIM", reason="no such claim")


@pytest.mark.parametrize("hospital", ["H1", "H.0.1", "requests", "a-b_c"])
def test_hospital_topic_names_say_whose_they_are(hospital: str) -> None:
    import re

    requests = hospital_requests_topic(hospital)
    assert sender_of(requests) == hospital and sender_of("t1." + requests, "t1.") == hospital
    assert sender_of("t1." + requests) is None and sender_of(hospital_statements_topic(hospital)) is None
    assert re.match(hospital_requests_pattern("t1."), "t1." + requests)
    assert not re.match(hospital_requests_pattern("t1."), requests)  # another namespace's topic
    assert not re.match(hospital_requests_pattern(), "t1." + requests)
    assert dead_letter_topic("t1." + requests) == "t1.hospital.requests.dlt"
    assert subscription_of(requests) == "hospital.requests"
    assert not re.match(hospital_requests_pattern(), dead_letter_topic(requests))
    assert not re.match(hospital_requests_pattern(), hospital_statements_topic(hospital))


def test_other_topics_keep_their_names() -> None:
    assert dead_letter_topic(DISCHARGES) == "claims.discharges.dlt" and subscription_of(DISCHARGES) == DISCHARGES
    assert sender_of(DISCHARGES) is None and uuid.UUID(str(moved_event_id("H1", uuid.uuid4())))
