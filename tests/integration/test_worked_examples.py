"""The three worked examples of demo-county.md, published as discharges through the real broker,
come back as statements with exactly those amounts in every field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from contracts import SettlementStatement
from contracts.topics import DISCHARGES, hospital_requests_topic, hospital_statements_topic
from tests.integration.harness import payloads
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

D = Decimal



async def test_worked_examples_of_demo_county(ns) -> None:
    ordinary, dibao = person_id(1), person_id(2)
    async with platform(ns):
        await register(ns, [enroll(ordinary), enroll(dibao, "dibao")], [provider("H3", 3), provider("H2", 2)])
        await ns.publish(DISCHARGES, [
            # 1. ordinary, level 3, A 8,000 + B 2,000 + SELF 500
            (ordinary, discharge("E1", "H3", ordinary, date(2026, 3, 2), date(2026, 3, 10),
                                 [("A", "8000.00"), ("B", "2000.00"), ("SELF", "500.00")])),
            # 2. same person, later that year, level 2, A 5,000
            (ordinary, discharge("E2", "H2", ordinary, date(2026, 6, 1), date(2026, 6, 5), [("A", "5000.00")])),
            # 3. dibao, level 3, A 50,000
            (dibao, discharge("E3", "H3", dibao, date(2026, 4, 1), date(2026, 4, 20), [("A", "50000.00")])),
        ])
        records = await statements_for(ns, 3)
    got = {s.hospital_claim_id: s for s in payloads(records, SettlementStatement)}

    # The amounts are demo-county.md's, as written there.
    expected = {
        "E1": dict(total_cost=D("10500.00"), in_policy=D("10000.00"), out_of_policy=D("500.00"), hifp_pay=D("3840.00"),
                   hifmi_pay=D("0.00"), maf_pay=D("0.00"), fund_pay_sumamt=D("3840.00"), psn_pay=D("6660.00")),
        "E2": dict(total_cost=D("5000.00"), in_policy=D("5000.00"), out_of_policy=D("0.00"), hifp_pay=D("2400.00"),
                   hifmi_pay=D("1080.00"), maf_pay=D("0.00"), fund_pay_sumamt=D("3480.00"), psn_pay=D("1520.00")),
        "E3": dict(total_cost=D("50000.00"), in_policy=D("50000.00"), out_of_policy=D("0.00"),
                   hifp_pay=D("19920.00"), hifmi_pay=D("16816.00"), maf_pay=D("9284.80"),
                   fund_pay_sumamt=D("46020.80"), psn_pay=D("3979.20")),
    }
    for claim, fields in expected.items():
        s = got[claim]
        assert s.outcome == "settled", s.rejection
        assert {k: getattr(s, k) for k in fields} == fields, claim
        assert s.profile_id == "demo-county"
    # detail rows: example 2's catastrophic accumulation goes 5,760 → 8,160 over the 6,000 threshold
    cat2 = next(d for d in got["E2"].details if d.layer == "catastrophic")
    assert (cat2.deductible, cat2.accumulator_before, cat2.accumulator_after) == (D("6000.00"), D("5760.00"), D("8160.00"))
    basic3 = next(d for d in got["E3"].details if d.layer == "basic")
    assert (basic3.deductible, basic3.ratio) == (D("200.00"), D("0.40"))
    assert [(b.amount, b.paid) for b in next(d for d in got["E3"].details if d.layer == "catastrophic").bands] == [
        (D("20000.00"), D("12000.00")), (D("6880.00"), D("4816.00"))]


async def test_a_hospital_follows_its_statements_as_a_table(ns) -> None:
    import asyncio
    import os
    import sys

    pid = person_id(5)
    await ns.hospital_topics("H3", "H2")
    async with platform(ns, HOSPITAL_CHAIN):
        await register(ns, [enroll(pid)], [provider("H3", 3), provider("H2", 2)])
        for bill in (discharge("T1", "H3", pid, date(2026, 3, 2), date(2026, 3, 4), [("A", "1000.00")]),
                     discharge("T2", "H2", pid, date(2026, 3, 6), date(2026, 3, 8), [("B", "300.00")])):
            await ns.publish(hospital_requests_topic(bill.hospital_id), [(pid, bill)])  # each on its own topic
        await statements_for(ns, 2)
        await ns.read(hospital_statements_topic("H3"), until=lambda rs: len(rs) >= 1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools", "statements", "--hospital", "H3", "--from-beginning", "--exit-when-idle", "3",
        "--prefix", ns.prefix, "--bootstrap", ns.bootstrap, env={**os.environ, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await asyncio.wait_for(proc.communicate(), timeout=60))[0].decode()
    assert proc.returncode == 0, out
    assert "T1" in out and "T2" not in out  # only this hospital's statements
    assert "240.00" in out  # level 3: (1,000 − 400) × 40%
    assert pid not in out and pid[:6] + "********" + pid[-4:] in out  # the patient's id is masked
    assert "1 statement(s)" in out
