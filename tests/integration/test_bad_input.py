"""Bad input never blocks a partition: a malformed discharge goes to the dead-letter topic with its
reason, an ineligible one ends as a rejected statement, and valid discharges around them settle."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from contracts import SettlementStatement, encode, make_envelope
from contracts.topics import DISCHARGES, dead_letter_topic
from tests.integration.harness import payloads
from tests.integration.platform import (
    discharge,
    enroll,
    person_id,
    platform,
    provider,
    register,
    statements_for,
)

pytestmark = pytest.mark.integration



async def test_malformed_and_ineligible_discharges(ns) -> None:
    insured, stranger = person_id(21), person_id(22)
    good = discharge("G1", "H1", insured, date(2026, 5, 1), date(2026, 5, 3), [("A", "1000.00")])
    unknown_person = discharge("U1", "H1", stranger, date(2026, 5, 1), date(2026, 5, 3), [("A", "1000.00")])
    unknown_hospital = discharge("U2", "H9", insured, date(2026, 5, 4), date(2026, 5, 6), [("A", "100.00")])
    broken = encode(make_envelope(discharge("B1", "H1", insured, date(2026, 5, 1), date(2026, 5, 2), [("A", "10.00")]),
                                  correlation_id="H1:B1", producer="hospital")).replace(b'"10.00"', b'"10.001"', 1)
    async with platform(ns):
        await register(ns, [enroll(insured)], [provider("H1", 1)])
        await ns.publish(DISCHARGES, [(insured, b"{not json"), (insured, broken), (insured, good),
                                      (stranger, unknown_person), (insured, unknown_hospital)])
        records = await statements_for(ns, 3)
        dead = await ns.read(dead_letter_topic(DISCHARGES), until=lambda rs: len(rs) >= 2)
    by_claim = {s.hospital_claim_id: s for s in payloads(records, SettlementStatement)}
    assert by_claim["G1"].outcome == "settled"
    assert by_claim["G1"].hifp_pay == Decimal("576.00")  # level 1: (1,000 − 40) × 60%
    assert (by_claim["U1"].outcome, by_claim["U1"].rejection.reason_code) == ("rejected", "NOT_ENROLLED")
    assert (by_claim["U2"].outcome, by_claim["U2"].rejection.reason_code) == ("rejected", "UNKNOWN_PROVIDER")
    assert by_claim["U1"].psn_pay == by_claim["U1"].total_cost
    reasons = [dict(r.headers)["dlt.reason"].decode() for r in dead]
    assert any("not JSON" in r for r in reasons)
    assert any("two decimals" in r for r in reasons)
    headers = dict(dead[1].headers)
    assert headers["dlt.original.topic"].decode() == ns.topic(DISCHARGES)
    assert headers["dlt.service"].decode() == "settlement"
