"""Failure classes on the real stack: a registry record the projection cannot use never halts
settlement, and a service whose schema disappears stops instead of dead-lettering its input."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import date

import pytest

from contracts import SettlementStatement, make_envelope
from contracts.topics import DISCHARGES, PERSONS, dead_letter_topic
from runtime.app import EXIT_FATAL
from tests.integration.harness import ServiceProcess, payloads, run_operator
from tests.integration.platform import (
    discharge,
    enroll,
    person_id,
    platform,
    provider,
    register,
    statements_for,
)
from tests.unit.test_decoder_hostile import _snapshot

pytestmark = pytest.mark.integration


async def test_a_bad_registry_record_is_dead_lettered_and_settlement_goes_on(ns) -> None:
    insured = person_id(31)
    forged = _snapshot(version=3_000_000_000)  # used to overflow the projection's int column
    not_json = b'{"event_type": "PersonSnapshot", "payload": '
    first = discharge("P1", "H1", insured, date(2026, 5, 1), date(2026, 5, 3), [("A", "1000.00")])
    second = discharge("P2", "H1", insured, date(2026, 6, 1), date(2026, 6, 3), [("A", "500.00")])
    async with platform(ns):
        await register(ns, [enroll(insured)], [provider("H1", 1)])
        await ns.publish(DISCHARGES, [(insured, first)])
        await statements_for(ns, 1)
        await ns.publish(PERSONS, [(forged.person_id, make_envelope(forged, correlation_id="x", producer="x")),
                                   (insured, not_json)])
        await ns.publish(DISCHARGES, [(insured, second)])
        records = await statements_for(ns, 2)
        dead = await ns.read(dead_letter_topic(PERSONS), until=lambda rs: len(rs) >= 1)
        conn = await ns.connect("settlement")
        try:
            version = await conn.fetchval("SELECT version FROM person_projection WHERE person_id = $1",
                                          forged.person_id)
        finally:
            await conn.close()
    assert {s.hospital_claim_id: s.outcome for s in payloads(records, SettlementStatement)} == {"P1": "settled",
                                                                                              "P2": "settled"}
    assert version == 3_000_000_000
    assert len(dead) == 1 and dict(dead[0].headers)["dlt.service"] == b"settlement"
    assert b"not JSON" in dict(dead[0].headers)["dlt.reason"]


async def test_a_service_whose_schema_disappears_stops_and_dead_letters_nothing(ns) -> None:
    insured = person_id(32)
    enrollment, settlement = ServiceProcess(ns, "enrollment"), ServiceProcess(ns, "settlement")
    enrollment.start()
    settlement.start()
    try:
        await register(ns, [enroll(insured)], [provider("H1", 1)])
        await ns.publish(DISCHARGES, [(insured, discharge("F1", "H1", insured, date(2026, 5, 1), date(2026, 5, 3),
                                                          [("A", "100.00")]))])
        await ns.read("claims.basic-settled", until=lambda rs: len(rs) >= 1)
        conn = await ns.connect("settlement")
        try:
            await conn.execute("DROP TABLE ledger")  # what `tools.stack reset` under a running service looks like
        finally:
            await conn.close()
        await ns.publish(DISCHARGES, [(insured, discharge(f"F{i}", "H1", insured, date(2026, 6, i), date(2026, 6, i),
                                                          [("A", "100.00")])) for i in range(2, 12)])
        deadline = time.monotonic() + 60
        while settlement.proc.poll() is None:
            assert time.monotonic() < deadline, "the settlement service did not stop"
            await asyncio.sleep(0.2)
        assert settlement.proc.returncode == EXIT_FATAL
        log = settlement.log.read_text()
        assert "cannot go on" in log and "UndefinedTableError" in log
        dead = await ns.read_for(dead_letter_topic(DISCHARGES), seconds=3)
        assert dead == [], "nothing may be dead-lettered because the schema is gone"
    finally:
        settlement.stop()
        enrollment.stop()


async def test_a_record_too_big_for_its_dead_letter_is_kept_truncated_and_not_redriven_as_is(ns) -> None:
    insured = person_id(33)
    huge = b'{"event_type": "DischargeRecorded", "payload": "' + b"x" * 900_000 + b'"}'  # under the broker's 1 MiB
    good = discharge("T1", "H1", insured, date(2026, 5, 1), date(2026, 5, 3), [("A", "100.00")])
    async with platform(ns):
        await register(ns, [enroll(insured)], [provider("H1", 1)])
        await ns.publish(DISCHARGES, [(insured, huge), (insured, good)])
        records = await statements_for(ns, 1)
        dead = await ns.read(dead_letter_topic(DISCHARGES), until=lambda rs: len(rs) >= 1)
    assert [s.hospital_claim_id for s in payloads(records, SettlementStatement)] == ["T1"]
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["dlt.truncated"] == "true" and headers["dlt.original.length"] == str(len(huge))
    assert headers["dlt.original.sha256"] == hashlib.sha256(huge).hexdigest()
    assert "over the limit" in headers["dlt.reason"] and len(dead[0].value) < len(huge)
    code, out = await run_operator(ns, "dlt", "list", DISCHARGES)
    assert code == 0 and "truncated" in out, out
    code, out = await run_operator(ns, "dlt", "redrive", DISCHARGES, "--all")
    assert code == 0 and "cannot be redriven as it is" in out and "0 redriven" in out, out
