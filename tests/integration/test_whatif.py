"""Policy what-if (政策测算) against the real platform: a generated year (with rejections, corrections,
reversals and reinstatements) settled by the services on a real broker and database, then re-priced.

* under the live profile the what-if reproduces every claim of the year to the fen, in every layer
  (the statements' nets and each layer's current result), and reports 0.00 in every fund;
* a candidate that only raises the basic annual cap changes exactly the claims of persons whose
  payments the cap limited;
* the sandbox: with the services running, `operator what-if` (as a process, a run and a solve)
  leaves every topic's end offsets and every table of every service database (row counts and
  checksums) as they were.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.envelope import make_envelope
from contracts.money import ZERO, round_fen
from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES
from policy import load_profile, operator_overrides
from policy.whatif import price_year, what_if
from runtime.kafka_access import KafkaAccess
from tests.integration.harness import Namespace, new_namespace, run_operator, wait_drained
from tests.integration.platform import discharge, enroll, person_id, platform, provider, register
from tools.generate import generate_discharges, generate_population
from tools.generate.history import revisions
from tools.operator.whatif import Needs, Source, read_all, run_what_if
from tools.stack.lag import partitions

pytestmark = pytest.mark.integration

YEAR = 2026
PROVIDERS, PERSONS = generate_population(700, 12, seed=23, year=YEAR)
STREAM = generate_discharges(1200, seed=23, year=YEAR, providers=PROVIDERS, persons=PERSONS, ineligible_share=0.03)
CORRECTIONS, REVERSALS = revisions(STREAM, seed=23, correction_share=0.02, reversal_share=0.02)
REINSTATED = [d for d in STREAM if any(r.claim_id == d.claim_id for r in REVERSALS)][:3]
# persons whose bills reach the basic annual cap (40,000: (100,000 - 400) x 40% = 39,840 per stay)
BIG_PERSONS = [enroll(person_id(9000 + i), *(("dibao",) if i == 0 else ())) for i in range(4)]
BIG_HOSPITAL = provider("HBIG", 3)
BIG = [discharge(f"B{i}-{n}", "HBIG", p.person_id, date(YEAR, 2 + 3 * n, 1), date(YEAR, 2 + 3 * n, 10),
                 [("A", "100000.00"), ("B", f"{5000 * (i + 1)}.00")])
       for i, p in enumerate(BIG_PERSONS) for n in range(2 + i % 2)]
INPUTS = [("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED), ("assistance", CATASTROPHIC_SETTLED)]
SERVICES = ("enrollment", "settlement", "catastrophic", "assistance")


@pytest.fixture(scope="module")
async def year(kafka_admin: KafkaAccess, database_url: str) -> AsyncIterator[Namespace]:
    """The year settled by the platform, which keeps running while the tests read it."""
    ns = await new_namespace(kafka_admin, database_url)
    async with platform(ns):
        await register(ns, [*PERSONS, *BIG_PERSONS], [*PROVIDERS, BIG_HOSPITAL])
        await ns.publish(DISCHARGES, [(d.person_id, d) for d in [*STREAM, *BIG]])
        await wait_drained(ns, INPUTS[:1])
        await ns.publish(DISCHARGES, [(c.person_id, c) for c in CORRECTIONS] + [(r.person_id, r) for r in REVERSALS])
        await wait_drained(ns, INPUTS[:1])
        await ns.publish(DISCHARGES, [(d.person_id, make_envelope(d, correlation_id=d.claim_id,
                                                                  producer=f"hospital:{d.hospital_id}"))
                                      for d in REINSTATED])  # sent again after their reversal: new event ids
        await wait_drained(ns, INPUTS, timeout=600)
        yield ns
    await ns.drop_databases()


@pytest.fixture
def operator_env(year: Namespace, monkeypatch: pytest.MonkeyPatch) -> Source:
    monkeypatch.setenv("DATABASE_URL", year.server_url)
    return Source(year.prefix)


async def _layer_results(ns: Namespace) -> dict[str, dict[str, Any]]:
    """Each layer's current result per current claim of the year, read by the test itself."""
    out: dict[str, dict[str, Any]] = {}
    queries = {
        "settlement": "SELECT claim_id, outcome, (result->'basic'->>'paid')::numeric FROM layer_claim "
                      "WHERE status = 'current' AND insurance_year = $1",
        "catastrophic": "SELECT claim_id, outcome, (result->'catastrophic'->>'paid')::numeric FROM layer_claim "
                        "WHERE status = 'current' AND insurance_year = $1",
        "assistance": "SELECT claim_id, outcome, ARRAY[(result->>'hifp_pay')::numeric, (result->>'hifmi_pay')::numeric,"
                      " (result->>'maf_pay')::numeric, (result->>'psn_pay')::numeric] FROM layer_claim "
                      "WHERE status = 'current' AND insurance_year = $1"}
    for service, sql in queries.items():
        conn = await ns.connect(service)
        try:
            out[service] = {r[0]: (r[1], r[2]) for r in await conn.fetch(sql, YEAR)}
        finally:
            await conn.close()
    return out


async def test_the_live_profile_reproduces_every_claim_of_the_year_to_the_fen(year: Namespace,
                                                                             operator_env: Source) -> None:
    demo = load_profile("demo-county")
    years, stats = await read_all(operator_env, YEAR, Needs.of(demo))
    layers = await _layer_results(year)
    claims = {c.claim_id: c for py in years for c in py.claims}
    assert set(claims) == set(layers["settlement"]) == set(layers["catastrophic"]) == set(layers["assistance"])
    # the year holds what a year holds: rejections, corrected and reversed claims, reinstatements
    assert len(claims) == len(STREAM) + len(BIG) - len(REVERSALS) + len(REINSTATED)
    assert sum(1 for c in claims.values() if c.kept_rejection) >= 10
    assert {c.claim_id for c in CORRECTIONS} <= set(claims)
    reinstated = {d.claim_id for d in REINSTATED}
    assert len(reinstated) == 3 and reinstated <= set(claims)
    assert ({r.claim_id for r in REVERSALS} - reinstated).isdisjoint(claims)
    priced = 0
    for py in years:
        for claim, figures in zip(py.claims, price_year(py, demo), strict=True):
            actual = claim.actual
            assert actual is not None, f"{claim.claim_id} has no statement"
            assert figures == actual, claim.claim_id  # the statements' nets, caps and thresholds
            basic, cat, assist = (layers[s][claim.claim_id] for s in ("settlement", "catastrophic", "assistance"))
            assert basic[0] == cat[0] == assist[0] == figures.outcome
            if figures.outcome == "settled":
                assert (figures.basic, figures.catastrophic) == (basic[1], cat[1] or ZERO)
                assert [figures.basic, figures.catastrophic, figures.assistance, figures.patients] == assist[1]
                priced += 1
    assert priced > 1000
    run = await run_what_if(operator_env, demo, YEAR, workers=2)
    report = run.report
    assert report.claims == len(claims) and report.in_flight == 0
    assert report.identical and set(report.differences.values()) == {ZERO}
    assert report.overall.actual == report.overall.candidate and report.reached.actual == report.reached.candidate
    assert dict(stats.live_profiles) == {"demo-county v1": len(claims)}


async def test_raising_the_basic_cap_changes_exactly_the_claims_of_persons_it_limited(operator_env: Source) -> None:
    demo = load_profile("demo-county")
    candidate = load_profile("demo-county", operator_overrides(None, ["basic.annual_cap=200000.00"]))
    years, _ = await read_all(operator_env, YEAR, Needs.of(candidate))
    report = what_if(years, candidate, YEAR, top=1000)
    changed = {c.claim_id for c in report.most_changed}
    assert report.changed_claims == len(changed) > 0
    # a person the old cap limited: a claim whose basic payment is less than its ratio above the deductible
    limited: set[str] = set()
    expected: set[str] = set()
    for py in years:
        figures = price_year(py, demo)
        cut = [f for c, f in zip(py.claims, figures, strict=True) if f.outcome == "settled" and c.hospital_level
               and f.basic < _uncapped(c, demo)]
        if cut:
            limited.add(py.person_id)
            expected |= {c.claim_id for c, f in zip(py.claims, figures, strict=True)
                         if f.outcome == "settled" and c.actual is not None}
    assert {p.person_id for p in BIG_PERSONS} <= limited
    assert changed <= expected  # only their claims change...
    changed_persons = {c.person_id for c in report.most_changed}
    assert changed_persons == limited  # ...and every one of them is paid more
    assert report.overall.candidate.basic > report.overall.actual.basic
    assert report.reached.actual.basic_cap >= len(limited)


def _uncapped(claim: Any, profile: Any) -> D:
    """What basic would pay without the annual cap (demo-county: per-admission deductible, no bonus)."""
    policy = profile.basic_for(claim.scheme)
    level = claim.hospital_level
    deductible = policy.deductible[level]
    reduction = policy.deductible_reduction
    severe = "disabled" in claim.categories and reduction is not None and claim.disability_grade in reduction.disabled_grades
    if reduction is not None and (severe or claim.categories & set(reduction.categories)):
        deductible = round_fen(deductible * reduction.factor)
    in_policy = sum((v for k, v in claim.amounts_by_class.items() if k in policy.in_policy_classes), ZERO)
    return round_fen(max(in_policy - deductible, ZERO) * policy.ratio[level])


async def _state(ns: Namespace) -> dict[str, Any]:
    """Every topic's end offsets and every table's row count and checksum, of every service database."""
    state: dict[str, Any] = {}
    consumer = AIOKafkaConsumer(**ns.kafka.options())
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith(ns.prefix))
        parts = [tp for t in topics for tp in await partitions(consumer, t)]
        state["offsets"] = {f"{tp.topic}:{tp.partition}": n for tp, n in (await consumer.end_offsets(parts)).items()}
    finally:
        await consumer.stop()
    assert len(state["offsets"]) > 20
    for service in SERVICES:
        conn = await ns.connect(service)
        try:
            tables = [r[0] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
            for table in tables:
                row = await conn.fetchrow(
                    f'SELECT count(*), md5(coalesce(string_agg(md5(t::text), \'\' ORDER BY md5(t::text)), \'\')) '
                    f'FROM "{table}" t')
                state[f"{service}.{table}"] = tuple(row)
        finally:
            await conn.close()
    assert state["assistance.statement"][0] > 1000
    return state


async def test_the_sandbox_changes_no_topic_and_no_table(year: Namespace, tmp_path: Path) -> None:
    before = await _state(year)
    code, out = await run_operator(year, "what-if", "demo-county", "--year", str(YEAR), "--csv",
                                   str(tmp_path / "live.csv"))
    assert code == 0, out
    assert ("difference per fund, the sum over claims of |candidate - actual|: basic 0.00, catastrophic 0.00, "
            "assistance 0.00, patients 0.00; 0 claim(s) change") in " ".join(out.split())
    assert (tmp_path / "live.csv").read_text().startswith("section,group,measure,actual,candidate,difference\n")
    code, out = await run_operator(year, "what-if", "demo-county", "--year", str(YEAR), "--solve",
                                   "catastrophic.threshold", "--target", "compensation=0.45", "--workers", "2")
    assert code in (0, 1), out
    assert "iterations" in out or "not solved" in out
    code, out = await run_operator(year, "what-if", "demo-county-employee", "--year", str(YEAR))
    assert code == 2 and "scheme_variants.employee.basic.annual_cap" in out  # refused: inputs not supplied
    after = await _state(year)
    assert after == before


async def test_the_employee_profile_runs_once_its_inputs_are_supplied(year: Namespace) -> None:
    overlay = Path(__file__).resolve().parents[1] / "data" / "employee-test-inputs.yaml"
    code, out = await run_operator(year, "what-if", "demo-county-employee", "--year", str(YEAR), "--overlay",
                                   str(overlay), "--workers", "1")
    assert code == 0, out
    text = " ".join(out.split())
    assert "candidate demo-county-employee v1 (operator inputs: scheme_variants.employee.basic.deductible_basis" in text
    assert "0 claim(s) change" in text  # the year's persons are all residents: priced as demo-county does


async def test_a_year_without_claims_is_reported(year: Namespace) -> None:
    code, out = await run_operator(year, "what-if", "demo-county", "--year", "2031")
    assert code == 1 and "no claim of insurance year 2031" in out

