"""Hostile input against the five services as real processes: every catalogue case on every
consumed topic, fuzzed records, and valid discharges published in the middle through the hospital
CLI. Nothing may block a partition, crash a service, flood the logs or vanish: every valid
discharge gets exactly one statement and every hostile record ends dead-lettered (once, by the
topic's owner, with a reason that names the problem), rejected, or accepted as valid.

The run is `tests/hostile/scenario.py` (also `bench/hostile.py`, with 10,000 fuzzed records);
it runs once for this module (`HOSTILE_FUZZ` fuzzed records, 300 by default) and each test below
checks one acceptance point, then one test per catalogue case.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from runtime.kafka_access import KafkaAccess
from runtime.logging import mask_identity_numbers
from tests.hostile.accounting import Published, Verdict, case_problem
from tests.hostile.catalogue import H_SNAPSHOT, P_SNAPSHOT, Case, catalogue
from tests.hostile.scenario import LOG_BYTES_PER_RECORD, LOG_BYTES_PER_S_IDLE, Options, Report, run
from tests.integration.harness import Namespace

pytestmark = pytest.mark.integration

FUZZ = int(os.environ.get("HOSTILE_FUZZ", "300"))
CASES = catalogue()


@pytest.fixture(scope="module")
async def hostile(kafka_admin: KafkaAccess, database_url: str) -> tuple[Report, dict[str, Any]]:
    seen: dict[str, Any] = {}

    async def inspect(ns: Namespace, report: Report) -> None:
        conn = await ns.connect("settlement")
        try:
            seen["person_version"] = await conn.fetchval(
                "SELECT version FROM person_projection WHERE person_id = $1", P_SNAPSHOT)
            seen["provider_version"] = await conn.fetchval(
                "SELECT version FROM provider_projection WHERE provider_id = $1", H_SNAPSHOT)
        finally:
            await conn.close()

    report = await run(kafka_admin, database_url, Options(fuzz=FUZZ, stall_s=45.0, quiet_s=5.0),
                       say=lambda msg: print(msg, flush=True), inspect=inspect)
    print(report.summary())
    return report, seen


def _listing(rows: list[str], limit: int = 25) -> str:
    more = f"\n... and {len(rows) - limit} more" if len(rows) > limit else ""
    return "\n".join(rows[:limit]) + more


async def test_every_valid_discharge_gets_exactly_one_statement(hostile) -> None:
    report, _ = hostile
    counts = list(report.valid_statements.values())
    exactly_one = sum(1 for n in counts if n == 1)
    assert counts, "no valid discharge was published"
    assert exactly_one == len(counts), (f"{exactly_one}/{len(counts)} with exactly one statement; "
                                        f"{counts.count(0)} without any, {sum(1 for n in counts if n > 1)} with more")


async def test_every_hostile_record_is_accounted_for(hostile) -> None:
    report, _ = hostile
    unsent = list(report.unsent)
    assert not unsent, f"the broker refused: {unsent[:10]}"
    lost = [f"{rec.label} (partition {rec.partition}, offset {rec.offset}): {v.detail}"
            for rec, v in report.tally.unaccounted()]
    assert not lost, f"{len(lost)} of {len(report.tally.verdicts)} unaccounted:\n{_listing(lost)}"


async def test_no_record_is_dead_lettered_twice(hostile) -> None:
    report, _ = hostile
    twice = [rec.label for rec in report.tally.twice]
    assert not twice, _listing(twice)


async def test_every_consumer_group_drains(hostile) -> None:
    report, _ = hostile
    drained = report.drained and not report.lagging and report.projection_lag == 0
    assert drained, (f"lag: {dict(sorted(report.lagging.items()))}; "
                     f"settlement's registry projection: {report.projection_lag}")


async def test_no_service_process_exits(hostile) -> None:
    report, _ = hostile
    exits = list(report.exits)
    assert exits == []


async def test_log_growth_is_bounded(hostile) -> None:
    report, _ = hostile
    per_record, after = report.log_bytes_during / max(report.published, 1), report.rate_after
    assert per_record <= LOG_BYTES_PER_RECORD, f"{per_record:,.0f} B of logs per record published"
    assert after <= LOG_BYTES_PER_S_IDLE, f"{after:,.0f} B/s of logs after input stopped"


async def test_a_64_bit_version_is_projected(hostile) -> None:
    """`version_3e9` on the registry topics is valid: settlement's projection must store it."""
    _, seen = hostile
    versions = (seen.get("person_version"), seen.get("provider_version"))
    assert versions == (3_000_000_000, 3_000_000_000)


def _verdict(report: Report, case: Case) -> tuple[Published, Verdict] | None:
    for rec, v in report.tally.verdicts:
        if rec.case is case:
            return rec, v
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_case(hostile, case: Case) -> None:
    """Outcome as the case says; a dead letter by the topic's owner, with the original key and
    bytes (or a marked, hashed prefix of them), whose reason names the problem."""
    report, _ = hostile
    found = _verdict(report, case)
    assert found is not None, f"{case.id} was not published"
    problem = case_problem(*found)
    assert not problem, mask_identity_numbers(f"{case.note or case.name}: {problem}")
