"""The integrity rules (forged or impossible events) as pure functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.audit import integrity
from services.audit.integrity import StoredEvent

ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
STATEMENT = {"claim_id": "H1:A1", "person_id": "P1", "hospital_id": "H1", "psn_pay": "120.00",
             "settled_at": "2026-03-05T10:00:00Z"}


def stored(topic: str, payload: object, *, event_type: str = "SettlementStatement", producer: str = "assistance",
           offset: int = 0, event_id: uuid.UUID = ID) -> StoredEvent:
    return StoredEvent(event_id, topic, 0, offset, event_type, producer, payload)


def test_the_same_event_again_is_no_conflict() -> None:
    again = {**STATEMENT, "settled_at": "2026-03-06T09:00:00Z"}  # settled again after a rebuild: same content
    assert integrity.event_id_conflicts([stored("claims.statements", STATEMENT),
                                         stored("claims.statements", again, offset=7)]) == []


@pytest.mark.parametrize("forged", [
    stored("claims.statements", {**STATEMENT, "psn_pay": "0.00"}, offset=9),
    stored("claims.statements", STATEMENT, event_type="SettlementAdjusted", offset=9),
    stored("claims.basic-settled", {"claim": {"claim_id": "H1:A1"}}, event_type="BasicSettled", producer="settlement"),
])
def test_an_event_id_with_other_content_is_a_conflict_whichever_came_first(forged: StoredEvent) -> None:
    real = stored("claims.statements", STATEMENT)
    for order in ([real, forged], [forged, real]):
        [finding] = integrity.event_id_conflicts([*order, real])
        assert finding.rule == "event_id_conflict" and finding.alert_id == f"event_id_conflict:{ID}"
        assert finding.evidence["first"] == order[0].where() and finding.evidence["conflicting"] == order[1].where()
        assert finding.claim_id == "H1:A1" and finding.severity == "high"


@pytest.mark.parametrize("topic, producer, payload, flagged", [
    ("claims.statements", "assistance", STATEMENT, False),
    ("claims.statements", "settlement", STATEMENT, True),
    ("enrollment.persons", "enrollment", {"person_id": "P1"}, False),
    ("enrollment.persons", "operator", {"person_id": "P1"}, True),
    ("claims.discharges", "hospital:H1", {"hospital_id": "H1", "hospital_claim_id": "A1"}, False),
    ("claims.discharges", "hospital:H2", {"hospital_id": "H1", "hospital_claim_id": "A1"}, True),
    ("claims.discharges", "settlement", {"hospital_id": "H1"}, True),
    ("claims.refusals", "intake", {"hospital_id": "H1"}, False),
    ("claims.refusals", "hospital:H1", {"hospital_id": "H1"}, True),
    ("audit.alerts", "audit", {}, False),
    ("claims.statements.dlt", "anyone", {}, False),  # not a registry topic with owners
])
def test_only_a_topics_owner_may_appear_as_its_producer(topic: str, producer: str, payload: dict,
                                                          flagged: bool) -> None:
    finding = integrity.unexpected_producer(topic, stored(topic, payload, producer=producer))
    assert (finding is not None) == flagged
    if finding is not None:
        assert finding.evidence["producer"] == producer and finding.alert_id == f"unexpected_producer:{ID}"


@pytest.mark.parametrize("known, version, flagged", [
    (None, 1, False), (None, 1000, False),  # first sight (a compacted topic keeps only the latest)
    (3, 4, False), (3, 5, True), (3, 1000, True), (3, 3, True), (3, 2, True)])
def test_a_snapshot_must_follow_the_last_version_seen(known: int | None, version: int, flagged: bool) -> None:
    finding = integrity.registry_version_jump("person", "P1", known, version, ID)
    assert (finding is not None) == flagged
    if finding is not None:
        assert finding.alert_id == f"registry_version_jump:person:P1:{version}" and finding.person_id == "P1"


def test_a_snapshot_without_command_names_its_subject() -> None:
    f = integrity.snapshot_without_command("provider", "H9", 1, ID, None, datetime(2026, 3, 1, tzinfo=UTC))
    assert f.hospital_id == "H9" and f.person_id is None and f.evidence["causation_id"] == "none"
    assert f.alert_id == f"snapshot_without_command:{ID}" and f.source == "F004 L207, F004 L59"
