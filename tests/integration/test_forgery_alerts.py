"""The audit notices forged events that got past the broker's ACLs (written with a leaked or
wrong credential), on the real broker and database: a registry snapshot with no command behind it
or out of sequence, a statement under a real statement's event id with other content, an event
from a producer that does not own its topic. Real events raise none of these."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import (
    AuditAlert,
    PersonSnapshot,
    ProviderSnapshot,
    SettlementStatement,
    decode,
    make_envelope,
)
from contracts.topics import ALERTS, PERSONS, PROVIDERS, STATEMENTS, hospital_requests_topic
from services.audit.app import make_spec, reconcile_now
from services.audit.config import AuditConfig
from services.audit.integrity import SOURCES
from tests.integration.harness import Namespace, payloads, running
from tests.integration.platform import (
    HOSPITAL_CHAIN,
    discharge,
    enroll,
    person_id,
    platform,
    provider,
    register,
    statements_for,
)

pytestmark = pytest.mark.integration

QUIET = AuditConfig(RECONCILE_INTERVAL_S=0, STATEMENT_TIMEOUT_S=60)
DAY = date(2026, 5, 4)


async def test_forged_registry_and_statement_events_raise_alerts(ns: Namespace) -> None:
    real, stranger = person_id(31), person_id(32)
    await ns.hospital_topics("H1")
    async with platform(ns, HOSPITAL_CHAIN), running(make_spec(QUIET), ns.settings("audit")) as audit:
        await register(ns, [enroll(real)], [provider("H1", 2)])
        bill = discharge("F1", "H1", real, DAY, DAY + timedelta(days=3), [("A", "2000.00")])
        await ns.publish(hospital_requests_topic("H1"), [(real, bill)])
        [record] = (await statements_for(ns, 1))[:1]
        statement = decode(record.value, SettlementStatement)
        snapshot = decode((await ns.read(PERSONS, until=lambda rs: len(rs) >= 1))[0].value, PersonSnapshot).payload

        # written as if by enrollment and assistance, with credentials that should never have left them
        never_enrolled = snapshot.model_copy(update={"person_id": stranger, "version": 1000})
        pinned = snapshot.model_copy(update={"version": 1000})  # would pin the projection at 1000
        unknown_hospital = ProviderSnapshot(provider_id="H666", version=1, name="无此医院", level=3,
                                            location="in_pool", pool_code="500242", licensed_beds=900,
                                            agreement_valid_from=date(2026, 1, 1))
        forged = [make_envelope(s, correlation_id=s.person_id, producer="enrollment", causation_id=uuid.uuid4())
                  for s in (never_enrolled, pinned)]
        forged_provider = make_envelope(unknown_hospital, correlation_id="H666", producer="enrollment")
        s = statement.payload
        richer = s.model_copy(update={"hifp_pay": s.hifp_pay + s.psn_pay, "fund_pay_sumamt": s.fund_pay_sumamt + s.psn_pay,
                                      "psn_pay": Decimal("0.00"), "details": ()})
        same_id = make_envelope(richer, correlation_id=s.claim_id, producer="assistance", event_id=statement.event_id)
        wrong_producer = make_envelope(richer.model_copy(update={"hospital_claim_id": "F2", "claim_id": "H1:F2"}),
                                       correlation_id="H1:F2", producer="hospital:H1")
        await ns.publish(PERSONS, [(e.payload.person_id, e) for e in forged])
        await ns.publish(PROVIDERS, [("H666", forged_provider)])
        await ns.publish(STATEMENTS, [(real, same_id), (real, wrong_producer)])

        expected = {f"registry_version_jump:person:{real}:1000", f"event_id_conflict:{statement.event_id}",
                    f"unexpected_producer:{wrong_producer.event_id}"}
        records = await ns.read(ALERTS, until=lambda rs: expected <= {a.alert_id for a in payloads(rs, AuditAlert)})
        early = await reconcile_now(audit)  # the commands have had no time to arrive yet: nothing is judged
        late = await reconcile_now(audit, datetime.now(UTC) + timedelta(seconds=61))
        again = await reconcile_now(audit, datetime.now(UTC) + timedelta(seconds=120))

    alerts = {a.alert_id: a for a in payloads(records, AuditAlert)}
    integrity = {i for i, a in alerts.items() if a.rule in SOURCES}
    assert integrity == expected, integrity  # nothing about the real snapshot, provider or statement
    conflict = alerts[f"event_id_conflict:{statement.event_id}"]
    assert conflict.claim_id == s.claim_id and "claims.statements" in conflict.evidence["conflicting"]
    assert alerts[f"unexpected_producer:{wrong_producer.event_id}"].evidence["expected"] == "assistance"

    without_command = {a.alert_id for a in late.raised if a.rule == "snapshot_without_command"}
    assert without_command == {f"snapshot_without_command:{e.event_id}" for e in (*forged, forged_provider)}
    assert not [a for a in early.raised if a.rule == "snapshot_without_command"]
    assert not [a for a in again.raised if a.rule == "snapshot_without_command"]  # each snapshot judged once
    person_alert = next(a for a in late.raised if a.person_id == stranger)
    assert person_alert.evidence["causation_id"] == str(forged[0].causation_id)
