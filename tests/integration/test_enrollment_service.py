"""The enrollment service against the real broker and database: commands in, compacted
snapshots and rejections out, each command applied once."""

from __future__ import annotations

from datetime import date

import pytest

from contracts import (
    CommandRejected,
    EnrollPerson,
    PersonSnapshot,
    ProviderSnapshot,
    RegisterProvider,
    SuspendPerson,
    encode,
    make_envelope,
)
from contracts.identity import make_identity_number
from contracts.topics import (
    ENROLLMENT_COMMANDS,
    ENROLLMENT_REJECTIONS,
    PERSONS,
    PROVIDERS,
)
from services.enrollment.app import SPEC
from tests.integration.harness import Namespace, payloads, running

pytestmark = pytest.mark.integration



def person(seq: int) -> str:
    return make_identity_number("500242", date(1960 + seq % 40, 1 + seq % 12, 1 + seq % 28), seq)


def enroll(pid: str, **over) -> EnrollPerson:
    fields = dict(person_id=pid, name="测试人", scheme="resident", categories=("ordinary",),
                  payment_date=date(2025, 11, 20), coverage_year=2026, previous_coverage_end=date(2025, 12, 31))
    fields.update(over)
    return EnrollPerson(**fields)


async def test_enrolls_through_the_broker_and_publishes_compacted_snapshots(ns: Namespace) -> None:
    pids = [person(i) for i in range(1, 21)]
    provider = RegisterProvider(provider_id="H001", name="县人民医院", level=2, location="in_pool", pool_code="500242",
                                licensed_beds=300, agreement_valid_from=date(2026, 1, 1))
    async with running(SPEC, ns.settings("enrollment")):
        await ns.publish(ENROLLMENT_COMMANDS, [(p, enroll(p)) for p in pids] + [("H001", provider)])
        await ns.publish(ENROLLMENT_COMMANDS, [(pids[0], SuspendPerson(person_id=pids[0], effective_date=date(2026, 3, 1),
                                                                      reason="moved out"))])
        records = await ns.read(PERSONS, until=lambda rs: len(rs) >= 21)
        providers = await ns.read(PROVIDERS, until=lambda rs: len(rs) >= 1)

    latest = {s.person_id: s for s in payloads(records, PersonSnapshot)}
    assert set(latest) == set(pids)
    assert all(r.key.decode() == payloads([r], PersonSnapshot)[0].person_id for r in records)
    assert latest[pids[0]].status == "suspended" and latest[pids[0]].version == 2
    assert latest[pids[1]].coverage[0].benefits_from == date(2026, 1, 1)  # paid in Nov 2025: from the year start
    assert payloads(providers, ProviderSnapshot)[0].level == 2
    conn = await ns.connect("enrollment")
    try:
        assert await conn.fetchval("SELECT count(*) FROM person") == 20
        assert await conn.fetchval("SELECT count(*) FROM person_event") == 21
    finally:
        await conn.close()


async def test_invalid_identity_number_and_invalid_command_are_rejected_and_consumption_goes_on(ns: Namespace) -> None:
    good = person(7)
    bad_id = good[:-1] + ("0" if good[-1] != "0" else "1")  # wrong check digit
    invalid = enroll(person(8), categories=("disabled",))  # disabled without a grade
    async with running(SPEC, ns.settings("enrollment")):
        await ns.publish(ENROLLMENT_COMMANDS, [(bad_id, enroll(bad_id)), (person(8), invalid)])
        # a payload that breaks the contract itself (unknown category) also ends as a rejection
        env = make_envelope(enroll(person(9)), correlation_id="x", producer="test")
        broken = encode(env).replace(b'"ordinary"', b'"nobody"')
        await ns.publish(ENROLLMENT_COMMANDS, [(person(9), broken), (good, enroll(good))])
        rejections = await ns.read(ENROLLMENT_REJECTIONS, until=lambda rs: len(rs) >= 3)
        snapshots = await ns.read(PERSONS, until=lambda rs: len(rs) >= 1)
    by_subject = {r.subject_id: r for r in payloads(rejections, CommandRejected)}
    assert by_subject[bad_id].reason_code == "INVALID_ID_NUMBER" and by_subject[bad_id].field == "person_id"
    assert "check digit" in by_subject[bad_id].reason
    assert by_subject[person(8)].reason_code == "INVALID_FIELD" and by_subject[person(8)].field == "disability_grade"
    assert by_subject[person(9)].reason_code == "INVALID_FIELD" and by_subject[person(9)].field.startswith("categories")
    assert [s.person_id for s in payloads(snapshots, PersonSnapshot)] == [good]  # the service went on consuming


async def test_the_same_command_delivered_twice_leaves_one_enrollment(ns: Namespace) -> None:
    pid = person(11)
    async with running(SPEC, ns.settings("enrollment")):
        sent = await ns.publish(ENROLLMENT_COMMANDS, [(pid, enroll(pid))])
        await ns.publish(ENROLLMENT_COMMANDS, [(pid, sent[0]), (pid, sent[0])])  # redelivered, same event id
        await ns.read(PERSONS, until=lambda rs: len(rs) >= 1)
        # a marker command after the duplicates proves they were consumed before we look
        marker = person(12)
        await ns.publish(ENROLLMENT_COMMANDS, [(marker, enroll(marker))])
        records = await ns.read(PERSONS, until=lambda rs: any(r.key.decode() == marker for r in rs))
    assert [r.key.decode() for r in records].count(pid) == 1
    conn = await ns.connect("enrollment")
    try:
        assert await conn.fetchval("SELECT count(*) FROM person_event WHERE person_id = $1", pid) == 1
        assert await conn.fetchval("SELECT version FROM person WHERE person_id = $1", pid) == 1
    finally:
        await conn.close()
