"""What the intake decides, as pure functions: a hospital's request goes on to settlement or is
refused, and what the platform answers goes to the hospital it is addressed to.

Event ids are derived, never drawn: a request moved on is `uuid5(sender, request id)` (a hospital
cannot occupy another hospital's event id by sending it first, and a redelivered request keeps
its id, which settlement drops), a copy for a hospital is derived from the original's id. The
original's id is the copy's `causation_id`.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts import (
    ClaimRequestRefused,
    DischargeCorrected,
    DischargeRecorded,
    Envelope,
    ReversalRequested,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
    derived_event_id,
    make_envelope,
)
from contracts.topics import DISCHARGES, REFUSALS, hospital_statements_topic

ClaimRequest = DischargeRecorded | DischargeCorrected | ReversalRequested
"""What a hospital sends on its requests topic."""
Answer = SettlementStatement | SettlementAdjusted | SettlementReversed | ClaimRequestRefused
"""What the platform answers a hospital on its statements topic."""

PRODUCER = "intake"


def hospital_producer(hospital_id: str) -> str:
    """The `producer` of a request moved on from a hospital's requests topic."""
    return f"hospital:{hospital_id}"


def moved_event_id(sender: str, request_id: uuid.UUID) -> uuid.UUID:
    return derived_event_id("HospitalRequest", f"{sender}:{request_id}")


def copy_event_id(original_id: uuid.UUID) -> uuid.UUID:
    return derived_event_id("HospitalCopy", str(original_id))


def route_request(sender: str, request: Envelope[Any]) -> tuple[str, Envelope[Any]]:
    """Where a request from `sender`'s requests topic goes: `claims.discharges` with the producer
    `hospital:<sender>`, or — when its provider is another hospital — a refusal on `claims.refusals`
    addressed to the sender (which reaches its statements topic)."""
    payload: ClaimRequest = request.payload
    if payload.hospital_id != sender:
        refusal = ClaimRequestRefused(
            request_event_id=str(request.event_id), request_type=request.event_type, claim_id=payload.claim_id,
            hospital_claim_id=payload.hospital_claim_id, hospital_id=sender, person_id=payload.person_id,
            reason_code="WRONG_HOSPITAL",
            reason=f"hospital {sender} sent a {request.event_type} for provider {payload.hospital_id}: a hospital "
                   "may send only its own claims, on its own requests topic")
        return REFUSALS, make_envelope(refusal, correlation_id=payload.claim_id, producer=PRODUCER,
                                       event_id=moved_event_id(sender, request.event_id),
                                       causation_id=request.event_id)
    return DISCHARGES, make_envelope(payload, correlation_id=payload.claim_id, producer=hospital_producer(sender),
                                     event_id=moved_event_id(sender, request.event_id), causation_id=request.event_id,
                                     occurred_at=request.occurred_at)


def route_answer(answer: Envelope[Any]) -> tuple[str, Envelope[Any]]:
    """The copy of a statement, adjustment, reversal or refusal for the hospital it names."""
    payload: Answer = answer.payload
    return hospital_statements_topic(payload.hospital_id), make_envelope(
        payload, correlation_id=answer.correlation_id, producer=answer.producer, event_id=copy_event_id(answer.event_id),
        causation_id=answer.event_id, occurred_at=answer.occurred_at)
