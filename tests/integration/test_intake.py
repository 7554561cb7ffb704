"""Hospitals' own topics through the intake, on the real broker and database: a request reaches
settlement only from its own hospital's topic, each hospital is answered on its own statements
topic, what cannot be read is dead-lettered, and a hospital added while the platform runs is
picked up."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts import (
    ClaimRequestRefused,
    DischargeRecorded,
    SettlementStatement,
    decode,
    encode,
    make_envelope,
)
from contracts.topics import (
    DISCHARGES,
    HOSPITAL_REQUESTS_DLT,
    hospital_requests_topic,
    hospital_statements_topic,
)
from runtime.deadletter import H_REASON, H_TOPIC
from services.intake.app import SPEC as INTAKE
from tests.integration.harness import Namespace, running
from tests.integration.platform import HOSPITAL_CHAIN, discharge, enroll, person_id, platform, provider, register

pytestmark = pytest.mark.integration

DAY = date(2026, 4, 1)


def answers(records: list) -> list:
    return [decode(r.value, SettlementStatement, ClaimRequestRefused) for r in records]


async def test_a_request_reaches_settlement_only_from_its_own_hospitals_topic(ns: Namespace) -> None:
    pid, other = person_id(11), person_id(12)
    await ns.hospital_topics("H1", "H2")
    async with platform(ns, HOSPITAL_CHAIN):
        await register(ns, [enroll(pid), enroll(other)], [provider("H1", 2), provider("H2", 3)])
        own = discharge("A1", "H1", pid, DAY, DAY.replace(day=4), [("A", "1000.00")])
        forged = discharge("B1", "H2", other, DAY, DAY.replace(day=4), [("A", "5000.00")])  # H2's provider id
        own_env = make_envelope(own, correlation_id="anything", producer="hospital:H2")  # the producer is not trusted
        forged_env = make_envelope(forged, correlation_id=forged.claim_id, producer="hospital:H2")
        await ns.publish(hospital_requests_topic("H1"), [
            (pid, own_env), (pid, own_env),  # a request delivered twice
            (other, forged_env),
            (pid, b"{not json"),
            ("someone-else", encode(make_envelope(own, correlation_id="x", producer="hospital:H1"))),  # wrong key
        ])

        mine = await ns.read(hospital_statements_topic("H1"), until=lambda rs: len(rs) >= 2)
        moved = await ns.read(DISCHARGES, until=lambda rs: len(rs) >= 1)
        letters = await ns.read(HOSPITAL_REQUESTS_DLT, until=lambda rs: len(rs) >= 2)
        theirs = await ns.read_for(hospital_statements_topic("H2"), seconds=2)

    # the one valid request went on, once, as from the hospital whose topic it came on
    assert len(moved) == 1
    env = decode(moved[0].value, DischargeRecorded)
    assert moved[0].key.decode() == pid and env.payload == own
    assert env.producer == "hospital:H1" and env.causation_id == own_env.event_id and env.event_id != own_env.event_id

    # H1 gets its statement and the refusal of the request for H2's provider id; H2 gets nothing
    got = {type(e.payload): e.payload for e in answers(mine)}
    assert len(mine) == 2 and got[SettlementStatement].claim_id == own.claim_id
    refusal = got[ClaimRequestRefused]
    assert (refusal.reason_code, refusal.hospital_id, refusal.claim_id) == ("WRONG_HOSPITAL", "H1", forged.claim_id)
    assert "provider H2" in refusal.reason and refusal.request_event_id == str(forged_env.event_id)
    assert theirs == []

    # what could not be read is on the intake's dead-letter topic, with the reason and where it was
    assert len(letters) == 2
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        assert headers[H_TOPIC] == ns.topic(hospital_requests_topic("H1")) and headers[H_REASON]
    assert {letter.value for letter in letters} >= {b"{not json"}


async def test_a_hospital_added_while_the_platform_runs_is_picked_up(ns: Namespace) -> None:
    pid = person_id(21)
    await ns.hospital_topics("H1")
    async with platform(ns, [s for s in HOSPITAL_CHAIN if s is not INTAKE]), \
            running(INTAKE, ns.settings("intake", metadata_max_age_ms=1000)):
        await register(ns, [enroll(pid)], [provider("H1", 2), provider("H9", 1)])
        await asyncio.sleep(1)  # the intake is consuming before H9's topic exists
        admin = AIOKafkaAdminClient(**ns.kafka.options())
        await admin.start()
        try:  # only the requests topic: the intake creates the statements topic when it first answers H9
            await admin.create_topics([NewTopic(ns.topic(hospital_requests_topic("H9")), 3, 1)])
        finally:
            await admin.close()
        bill = discharge("N1", "H9", pid, DAY, DAY.replace(day=3), [("A", "800.00")])
        await ns.publish(hospital_requests_topic("H9"), [(pid, make_envelope(bill, correlation_id=bill.claim_id,
                                                                             producer="hospital:H9"))])
        records = await ns.read(hospital_statements_topic("H9"), until=lambda rs: len(rs) >= 1, timeout=90)
    statement = decode(records[0].value, SettlementStatement)
    assert statement.payload.claim_id == "H9:N1" and statement.payload.outcome == "settled"
    assert records[0].key.decode() == pid
