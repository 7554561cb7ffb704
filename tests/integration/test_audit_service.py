"""The audit service (基金监管) against the real broker and database: the event store, the
fund-supervision rules, reconciliation (对账) and the KPIs.

The layer services are not used: the tests publish the registry snapshots, discharges, layer
results and statements themselves, and build ledger tables with the runtime's ledger migration.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import pytest

from contracts import (
    AuditAlert,
    BasicSettled,
    BillLine,
    CatastrophicSettled,
    ClaimSummary,
    DischargeRecorded,
    Envelope,
    LayerDetail,
    PersonSnapshot,
    ProviderSnapshot,
    Rejection,
    SettlementStatement,
    derived_event_id,
    encode,
    make_envelope,
)
from contracts.enrollment import CategoryPeriod, CoveragePeriod, Suspension
from contracts.identity import make_identity_number
from contracts.topics import (
    ALERTS,
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    PERSONS,
    PROVIDERS,
    STATEMENTS,
)
from services.audit.app import make_spec, reconcile_now
from services.audit.config import AuditConfig
from services.audit.kpis import KpiQuery, compute_kpis
from services.audit.rules import in_review_sample
from tests.integration.harness import Namespace, payloads, running

pytestmark = pytest.mark.integration

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
RATE = Decimal("0.05")
QUIET = AuditConfig(RECONCILE_INTERVAL_S=0, STATEMENT_TIMEOUT_S=60)



# ----------------------------------------------------------------- builders (also used by the CLI tests)


def pid(seq: int) -> str:
    return make_identity_number("500240", date(1950 + seq % 50, 1 + seq % 12, 1 + seq % 28), seq)


def claim_number(prefix: str, hospital: str, *, sampled: bool = False, start: int = 0) -> str:
    """A hospital claim number whose claim is (or is not) in the 5% review sample."""
    return next(n for i in range(start, start + 10_000) if in_review_sample(f"{hospital}:{(n := f'{prefix}{i}')}",
                                                                            RATE) is sampled)


def provider(pid_: str, *, level: int = 2, beds: int = 300, location: str = "in_pool",
             pool: str = "500240") -> ProviderSnapshot:
    return ProviderSnapshot(provider_id=pid_, version=1, name="医院", level=level, location=location, pool_code=pool,
                            licensed_beds=beds, agreement_valid_from=date(2026, 1, 1))


def person(person_id: str, *, death: date | None = None, suspended_from: date | None = None,
           categories: tuple[str, ...] = ("ordinary",), version: int = 1) -> PersonSnapshot:
    suspensions = (Suspension(start=suspended_from, reason="停保"),) if suspended_from else ()
    return PersonSnapshot(
        person_id=person_id, version=version, scheme="resident",
        status="deceased" if death else "suspended" if suspended_from else "active", categories=categories,
        category_history=(CategoryPeriod(effective_from=date(2026, 1, 1), categories=categories),),
        coverage=(CoveragePeriod(coverage_year=2026, payment_date=date(2025, 11, 1), benefits_from=date(2026, 1, 1),
                                 waiting_period=False),),
        suspensions=suspensions, date_of_death=death)


def bill_line(code: str, price: str, day: date, *, qty: str = "1", unit: str = "次", cls: str = "A") -> BillLine:
    return BillLine(item_code=code, item_name="项目", catalogue_class=cls, quantity=Decimal(qty), unit=unit,
                    unit_price=Decimal(price), amount=(Decimal(qty) * Decimal(price)).quantize(FEN), service_date=day)


def discharge(hospital: str, number: str, person_id: str, admission: date, out: date, *,
              lines: Sequence[BillLine] | None = None, location: str = "in_pool") -> DischargeRecorded:
    lines = tuple(lines or (bill_line("BED-001", "35.00", admission), bill_line("DRG-001", "900.00", admission),
                            bill_line("OOP-001", "45.00", admission, cls="SELF")))
    return DischargeRecorded(hospital_claim_id=number, hospital_id=hospital, person_id=person_id,
                             admission_date=admission, discharge_date=out, care_location=location, referred=False,
                             diagnosis_codes=("J18.9",), lines=lines,
                             total_amount=sum((ln.amount for ln in lines), start=ZERO))


def discharge_envelope(d: DischargeRecorded) -> Envelope[Any]:
    return make_envelope(d, correlation_id=d.claim_id, producer=f"hospital:{d.hospital_id}")


def in_policy_of(d: DischargeRecorded) -> Decimal:
    return sum((ln.amount for ln in d.lines if ln.catalogue_class in ("A", "B")), start=ZERO)


def summary(d: DischargeRecorded, discharge_event_id: str, level: int = 2) -> ClaimSummary:
    in_policy = in_policy_of(d)
    by_class: dict[str, Decimal] = {}
    for ln in d.lines:
        by_class[ln.catalogue_class] = by_class.get(ln.catalogue_class, ZERO) + ln.amount
    return ClaimSummary(claim_id=d.claim_id, hospital_claim_id=d.hospital_claim_id, hospital_id=d.hospital_id,
                        person_id=d.person_id, discharge_event_id=discharge_event_id,
                        admission_date=d.admission_date, discharge_date=d.discharge_date,
                        insurance_year=d.discharge_date.year, care_location=d.care_location, referred=d.referred,
                        hospital_level=level, scheme="resident", categories=("ordinary",), total_cost=d.total_amount,
                        in_policy=in_policy, out_of_policy=d.total_amount - in_policy, amounts_by_class=by_class)


def detail(layer: str, base: Decimal, paid: Decimal, *, before: Decimal = ZERO, after: Decimal = ZERO,
           deductible: Decimal = ZERO) -> LayerDetail:
    return LayerDetail(layer=layer, base=base, deductible=deductible, paid=paid, accumulator_before=before,
                       accumulator_after=after, profile_id="demo-county", profile_version=1)


def settle(d: DischargeRecorded, hifp: Decimal, hifmi: Decimal, maf: Decimal, *, event: Envelope[Any] | None = None,
           cat_before: Decimal = ZERO, cat_after: Decimal = ZERO, threshold: Decimal = Decimal("6000.00"),
           rejected: bool = False, statement_event_id: Any = None) -> list[tuple[str, str, Envelope[Any]]]:
    """(topic, key, envelope) of the three layer events of a claim, priced as given."""
    event = event or discharge_envelope(d)
    claim = summary(d, str(event.event_id))
    in_policy = claim.in_policy
    rejection = Rejection(reason_code="NOT_ENROLLED", reason="no enrollment") if rejected else None
    outcome = "rejected" if rejected else "settled"
    basic = None if rejected else detail("basic", in_policy, hifp)
    cat = None if rejected else detail("catastrophic", in_policy - hifp, hifmi, before=cat_before, after=cat_after,
                                       deductible=threshold)
    assist = None if rejected else detail("assistance", in_policy - hifp - hifmi, maf)
    b = BasicSettled(claim=claim, outcome=outcome, rejection=rejection, basic=basic, residual_in_policy=in_policy - hifp,
                     catastrophic_base=in_policy - hifp)
    c = CatastrophicSettled(claim=claim, outcome=outcome, rejection=rejection, basic=basic, catastrophic=cat,
                            residual_in_policy=in_policy - hifp - hifmi)
    funds = hifp + hifmi + maf
    s = SettlementStatement(
        claim_id=d.claim_id, hospital_claim_id=d.hospital_claim_id, hospital_id=d.hospital_id, person_id=d.person_id,
        admission_date=d.admission_date, discharge_date=d.discharge_date, insurance_year=d.discharge_date.year,
        outcome=outcome, rejection=rejection, total_cost=d.total_amount, in_policy=in_policy,
        out_of_policy=d.total_amount - in_policy, hifp_pay=hifp, hifmi_pay=hifmi, maf_pay=maf, fund_pay_sumamt=funds,
        psn_pay=d.total_amount - funds, details=tuple(x for x in (basic, cat, assist) if x), profile_id="demo-county",
        profile_version=1, settled_at=datetime.now(UTC))
    eb = make_envelope(b, correlation_id=d.claim_id, producer="settlement", causation_id=event.event_id,
                       event_id=derived_event_id("BasicSettled", d.claim_id))
    ec = make_envelope(c, correlation_id=d.claim_id, producer="catastrophic", causation_id=eb.event_id,
                       event_id=derived_event_id("CatastrophicSettled", d.claim_id))
    es = make_envelope(s, correlation_id=d.claim_id, producer="assistance", causation_id=ec.event_id,
                       event_id=statement_event_id or derived_event_id("SettlementStatement", d.claim_id))
    return [(BASIC_SETTLED, d.person_id, eb), (CATASTROPHIC_SETTLED, d.person_id, ec), (STATEMENTS, d.person_id, es)]


async def publish_events(ns: Namespace, events: Iterable[tuple[str, str, Envelope[Any] | bytes]]) -> None:
    by_topic: dict[str, list[tuple[str, Any]]] = {}
    for topic, key, value in events:
        by_topic.setdefault(topic, []).append((key, value))
    for topic, items in by_topic.items():
        await ns.publish(topic, items)


async def wait_for_rows(ns: Namespace, sql: str, expected: int, *args: Any, timeout: float = 60.0) -> None:
    conn = await ns.connect("audit")
    try:
        deadline = time.monotonic() + timeout
        while (n := await conn.fetchval(sql, *args)) < expected:
            assert time.monotonic() < deadline, f"timed out: {n} of {expected} rows for {sql}"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def wait_stored(ns: Namespace, topic: str, expected: int, timeout: float = 60.0) -> None:
    await wait_for_rows(ns, "SELECT count(*) FROM event_store WHERE topic = $1", expected, topic, timeout=timeout)


async def fetch(ns: Namespace, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await ns.connect("audit")
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


# ----------------------------------------------------------------- the rules through the broker


async def test_rules_raise_their_alerts_once_and_clean_claims_raise_none(ns: Namespace) -> None:
    p = {name: pid(i) for i, name in enumerate(
        ("clean", "split", "overlap", "hours", "dup", "large", "dead", "bed_a", "bed_b", "sampled", "late"), start=1)}
    day = date(2026, 3, 1)

    def n(prefix: str, hospital: str = "H001", sampled: bool = False) -> str:
        return claim_number(prefix, hospital, sampled=sampled)

    clean = discharge("H001", n("CLEAN"), p["clean"], day, day + timedelta(days=4))
    split_1 = discharge("H001", n("SPA"), p["split"], day, day + timedelta(days=5))
    split_2 = discharge("H001", n("SPB"), p["split"], day + timedelta(days=15), day + timedelta(days=18))
    overlap_1 = discharge("H001", n("OVA"), p["overlap"], day, day + timedelta(days=5))
    overlap_2 = discharge("H003", n("OVB", "H003"), p["overlap"], day + timedelta(days=3), day + timedelta(days=8),
                          location="out_of_province")
    hours = discharge("H001", n("HRS"), p["hours"], day, day + timedelta(days=2),
                      lines=[bill_line("HRS-002", "6.00", day, qty="30", unit="小时")])
    dup = discharge("H001", n("DUP"), p["dup"], day, day + timedelta(days=2),
                    lines=[bill_line("EXM-008", "280.00", day), bill_line("EXM-008", "280.00", day)])
    large = discharge("H003", n("BIG", "H003"), p["large"], day, day + timedelta(days=9), location="out_of_province",
                      lines=[bill_line("SUR-005", "21000.00", day)])
    dead = discharge("H001", n("DEAD"), p["dead"], day, day + timedelta(days=3))
    bed_a = discharge("H002", n("BEDA", "H002"), p["bed_a"], day, day + timedelta(days=3))
    bed_b = discharge("H002", n("BEDB", "H002"), p["bed_b"], day + timedelta(days=1), day + timedelta(days=4))
    sampled = discharge("H001", n("SMP", sampled=True), p["sampled"], day, day + timedelta(days=2))
    late = discharge("H001", n("LATE"), p["late"], day, day + timedelta(days=2))
    discharges = [clean, split_1, split_2, overlap_1, overlap_2, hours, dup, large, dead, bed_a, bed_b, sampled, late]
    expected = {("split_admission", split_2.claim_id), ("overlapping_stays", overlap_2.claim_id),
                ("time_billed_over_24h", hours.claim_id), ("duplicate_lines", dup.claim_id),
                ("large_out_of_area_invoice", large.claim_id), ("deceased_or_suspended_person", dead.claim_id),
                ("manual_review_sample", sampled.claim_id), ("deceased_or_suspended_person", late.claim_id),
                ("stacked_beds", bed_b.claim_id)}  # one bed: the later admission of two concurrent inpatients

    async with running(make_spec(QUIET), ns.settings("audit")):
        await ns.publish(PROVIDERS, [(h.provider_id, h) for h in (
            provider("H001"), provider("H002", level=1, beds=1),
            provider("H003", level=3, location="out_of_province", pool="510107"))])
        persons = [person(v) for k, v in p.items() if k not in ("dead", "late")]
        await ns.publish(PERSONS, [(s.person_id, s) for s in [*persons, person(p["dead"], death=date(2026, 2, 20))]])
        await wait_stored(ns, PERSONS, len(persons) + 1)
        await wait_stored(ns, PROVIDERS, 3)
        sent = await ns.publish(DISCHARGES, [(d.person_id, discharge_envelope(d)) for d in discharges])
        await wait_stored(ns, DISCHARGES, len(discharges))
        # a suspension recorded after the claim still flags it (judged as of the admission date)
        await ns.publish(PERSONS, [(p["late"], person(p["late"], suspended_from=date(2026, 2, 1), version=2))])
        # the same discharge delivered again (same event id) is stored but judged once
        await ns.publish(DISCHARGES, [(split_2.person_id, sent[2])])
        records = await ns.read(ALERTS, until=lambda rs: len(rs) >= len(expected))
        await wait_stored(ns, DISCHARGES, len(discharges) + 1)
        await wait_stored(ns, ALERTS, len(expected))

    alerts = payloads(records, AuditAlert)
    assert {(a.rule, a.claim_id) for a in alerts} == expected
    assert len(alerts) == len(expected)  # each raised once, the redelivered discharge raised nothing
    by_rule = {a.rule: a for a in alerts}
    assert by_rule["stacked_beds"].evidence["licensed_beds"] == "1"
    assert by_rule["stacked_beds"].evidence["concurrent_inpatients"] == "2"
    assert by_rule["split_admission"].evidence["previous_claim_id"] == split_1.claim_id
    assert by_rule["split_admission"].source == "F003 L161, F004 L33"
    assert by_rule["overlapping_stays"].evidence["overlap_nights"] == "2"
    assert all(r.key.decode() == payloads([r], AuditAlert)[0].claim_id for r in records)
    assert all(a.alert_id == f"{a.rule}:{a.claim_id}" for a in alerts)
    for r in records:  # alert event ids are derived from the alert id: a replay re-sends the same id
        env = Envelope[dict[str, Any]].model_validate_json(r.value)
        assert env.event_id == derived_event_id("AuditAlert", env.payload["alert_id"])

    stored = await fetch(ns, "SELECT claim_id, event_id FROM event_store WHERE topic = $1 ORDER BY id", DISCHARGES)
    assert sorted(r["claim_id"] for r in stored[:len(discharges)]) == sorted(d.claim_id for d in discharges)
    assert stored[-1]["event_id"] == sent[2].event_id  # the redelivery is in the store, once more
    assert (await fetch(ns, "SELECT count(*) AS n FROM alert"))[0]["n"] == len(expected)


# ----------------------------------------------------------------- reconciliation


async def test_reconciliation_flags_a_missing_statement_and_every_discrepancy(ns: Namespace) -> None:
    config = AuditConfig(RECONCILE_INTERVAL_S=0, STATEMENT_TIMEOUT_S=60)
    day = date(2026, 4, 1)
    ok, never, off, twice, broken, wrong_total = (
        discharge("H001", claim_number(f"R{i}", "H001"), pid(40 + i), day, day + timedelta(days=3)) for i in range(6))
    amounts = {d.claim_id: (Decimal("300.00"), Decimal("100.00"), Decimal("50.00"))
               for d in (ok, off, twice, broken, wrong_total)}
    events: list[tuple[str, str, Any]] = []
    for d in (ok, never, off, twice, broken, wrong_total):
        env = discharge_envelope(d)
        events.append((DISCHARGES, d.person_id, env))
        if d is off:  # critical illness published 90.00, the statement says 100.00
            hifp, hifmi, maf = amounts[d.claim_id]
            events += [e for e in settle(d, hifp, hifmi - 10, maf, event=env) if e[0] != STATEMENTS]
            events += [e for e in settle(d, hifp, hifmi, maf, event=env) if e[0] == STATEMENTS]
        elif d is not never:  # the statement of `never` is deliberately never produced
            events += settle(d, *amounts[d.claim_id], event=env)
    events.append(settle(twice, *amounts[twice.claim_id], statement_event_id=derived_event_id("x", "again"))[2])

    def statement_of(d: DischargeRecorded) -> tuple[str, str, Any]:
        return next(e for e in events if e[0] == STATEMENTS and e[2].payload.claim_id == d.claim_id)

    raw = encode(statement_of(broken)[2])  # make its parts not add up
    events.remove(statement_of(broken))
    events.append((STATEMENTS, broken.person_id, raw.replace(b'"fund_pay_sumamt":"450.00"',
                                                              b'"fund_pay_sumamt":"460.00"')))
    right = statement_of(wrong_total)  # a statement that adds up, but not to the discharge's total
    events.remove(right)
    bigger = right[2].payload.model_copy(update={"total_cost": right[2].payload.total_cost + 1,
                                                 "out_of_policy": right[2].payload.out_of_policy + 1,
                                                 "psn_pay": right[2].payload.psn_pay + 1})
    events.append((STATEMENTS, right[1], right[2].model_copy(update={"payload": bigger})))

    async with running(make_spec(config), ns.settings("audit")) as ctx:
        await publish_events(ns, events)
        await wait_stored(ns, DISCHARGES, 6)
        await wait_stored(ns, STATEMENTS, 6)
        await wait_stored(ns, CATASTROPHIC_SETTLED, 5)
        await wait_stored(ns, BASIC_SETTLED, 5)
        early = await reconcile_now(ctx)  # the missing statement is not late yet
        late = await reconcile_now(ctx, datetime.now(UTC) + timedelta(seconds=61))
        again = await reconcile_now(ctx, datetime.now(UTC) + timedelta(seconds=120))
        records = await ns.read(ALERTS, until=lambda rs: len(rs) >= len(early.raised) + len(late.raised))

    raised = {(a.rule, a.claim_id) for a in early.raised + late.raised}
    assert ("missing_statement", never.claim_id) not in {(a.rule, a.claim_id) for a in early.raised}
    assert raised == {("missing_statement", never.claim_id), ("duplicate_statement", twice.claim_id),
                      ("statement_parts_mismatch", broken.claim_id), ("layer_result_mismatch", off.claim_id),
                      ("statement_discharge_mismatch", wrong_total.claim_id), ("layer_total_mismatch", None)}
    assert again.raised == []  # nothing is raised twice
    assert {a.alert_id for a in payloads(records, AuditAlert)} == {a.alert_id for a in early.raised + late.raised}
    mismatch = next(a for a in early.raised + late.raised if a.rule == "layer_result_mismatch")
    assert mismatch.evidence == {"layer": "catastrophic", "statement": "100.00", "layer_result": "90.00"}
    total = next(a for a in early.raised + late.raised if a.rule == "layer_total_mismatch")
    assert total.evidence["layer"] == "catastrophic" and total.evidence["difference"] == "10.00"
    wrong = next(a for a in early.raised + late.raised if a.rule == "statement_discharge_mismatch")
    assert wrong.evidence["discharge_total_amount"] == str(wrong_total.total_amount)
    basic_2026 = next(t for t in late.totals if (t.layer, t.insurance_year) == ("basic", 2026))
    assert basic_2026.statements == basic_2026.layer_results == Decimal("1500.00")  # 5 claims × 300.00
    assert early.claims_checked + late.claims_checked == 5 and again.claims_checked == 0


async def test_the_reconciliation_timer_raises_a_missing_statement_by_itself(ns: Namespace) -> None:
    config = AuditConfig(RECONCILE_INTERVAL_S=0.3, STATEMENT_TIMEOUT_S=0.5)
    d = discharge("H001", claim_number("T", "H001"), pid(77), date(2026, 5, 1), date(2026, 5, 3))
    async with running(make_spec(config), ns.settings("audit")):
        await ns.publish(DISCHARGES, [(d.person_id, discharge_envelope(d))])
        records = await ns.read(ALERTS, until=lambda rs: len(rs) >= 1, timeout=30)
    [alert] = payloads(records, AuditAlert)
    assert (alert.rule, alert.claim_id, alert.severity) == ("missing_statement", d.claim_id, "high")


# ----------------------------------------------------------------- KPIs on a generated dataset


def independent_statements(discharges: Sequence[DischargeRecorded], levels: dict[str, int],
                           poor: set[str], enrolled: set[str]) -> list[list[tuple[str, str, Envelope[Any]]]]:
    """A simple pricing of its own (not the platform's): basic by level on in-policy cost, critical
    illness 50% above 6,000 accumulated per person, assistance 70% of the rest for the poor."""
    ratio = {1: Decimal("0.60"), 2: Decimal("0.50"), 3: Decimal("0.40")}
    accumulated: dict[str, Decimal] = {}
    out = []
    for d in sorted(discharges, key=lambda x: (x.discharge_date, x.claim_id)):
        if d.person_id not in enrolled:
            out.append(settle(d, ZERO, ZERO, ZERO, rejected=True))
            continue
        in_policy = in_policy_of(d)
        hifp = (in_policy * ratio[levels[d.hospital_id]]).quantize(FEN, ROUND_HALF_UP)
        before = accumulated.get(d.person_id, ZERO)
        after = accumulated[d.person_id] = before + in_policy - hifp
        above = max(after - 6000, ZERO) - max(before - 6000, ZERO)
        hifmi = (above * Decimal("0.5")).quantize(FEN, ROUND_HALF_UP)
        maf = ((in_policy - hifp - hifmi) * Decimal("0.7")).quantize(FEN, ROUND_HALF_UP) if d.person_id in poor else ZERO
        out.append(settle(d, hifp, hifmi, maf, cat_before=before, cat_after=after))
    return out


async def test_kpis_equal_the_figures_computed_from_the_statements(ns: Namespace) -> None:
    from services.enrollment.domain import EnrollmentRules, apply, apply_provider
    from tools.generate import generate_discharges, generate_population

    providers, commands = generate_population(persons=400, providers=12, seed=11, year=2026)
    discharges = generate_discharges(150, seed=11, year=2026, providers=providers, persons=commands,
                                     ineligible_share=0.05)
    provider_snaps = [apply_provider(None, c, "x").snapshot for c in providers]
    person_snaps = [s for c in commands if (s := apply(None, c, EnrollmentRules(), "x").snapshot) is not None]
    levels = {s.provider_id: s.level for s in provider_snaps}
    poor = {s.person_id for s in person_snaps if {"dibao", "tekun"} & set(s.categories)}
    chains = independent_statements(discharges, levels, poor, {s.person_id for s in person_snaps})

    async with running(make_spec(QUIET), ns.settings("audit")) as ctx:
        await ns.publish(PROVIDERS, [(s.provider_id, s) for s in provider_snaps])
        await ns.publish(PERSONS, [(s.person_id, s) for s in person_snaps])
        await ns.publish(DISCHARGES, [(d.person_id, discharge_envelope(d)) for d in discharges])
        await publish_events(ns, [c[2] for c in chains])
        statements = payloads(await ns.read(STATEMENTS, until=lambda rs: len(rs) >= len(discharges)),
                              SettlementStatement)
        await wait_stored(ns, STATEMENTS, len(discharges))
        await wait_stored(ns, PERSONS, len(person_snaps))
        await wait_stored(ns, PROVIDERS, len(provider_snaps))
        await wait_stored(ns, DISCHARGES, len(discharges))
        await asyncio.sleep(1.0)  # alerts raised on the discharges come back through audit.alerts
        n_alerts = (await fetch(ns, "SELECT count(*) AS n FROM alert"))[0]["n"]
        await wait_stored(ns, ALERTS, n_alerts)
        alert_rows = await fetch(ns, "SELECT rule, claim_id FROM alert")
        pool = next(s.pool_code for s in provider_snaps if s.location != "in_pool")
        queries = [KpiQuery(date(2026, 1, 1), date(2026, 12, 31)), KpiQuery(date(2026, 4, 1), date(2026, 6, 30)),
                   KpiQuery(date(2026, 1, 1), date(2026, 12, 31), region="demo-county", pool=pool),
                   KpiQuery(date(2026, 1, 1), date(2026, 12, 31), region="another-county")]
        pool_conn = ctx.require_pool()
        async with pool_conn.acquire() as conn:
            results = [await compute_kpis(conn, q) for q in queries]

    pools = {s.provider_id: s.pool_code for s in provider_snaps}
    discharged = {d.claim_id: d.discharge_date for d in discharges}
    for q, k in zip(queries, results, strict=True):
        chosen = [s for s in statements if q.start <= s.discharge_date <= q.end
                  and (q.region is None or s.profile_id == q.region) and (q.pool is None or pools[s.hospital_id] == q.pool)]
        settled = [s for s in chosen if s.outcome == "settled"]
        total = sum((s.total_cost for s in settled), ZERO)
        funds = sum((s.fund_pay_sumamt for s in settled), ZERO)
        people = {s.person_id for s in settled}
        assert (k.settlements, k.settled, k.rejected) == (len(chosen), len(settled), len(chosen) - len(settled))
        assert k.total_cost == total and k.funds_paid == funds
        assert k.basic_paid == sum((s.hifp_pay for s in settled), ZERO)
        assert k.catastrophic_paid == sum((s.hifmi_pay for s in settled), ZERO)
        assert k.assistance_paid == sum((s.maf_pay for s in settled), ZERO)
        assert k.patient_paid == sum((s.psn_pay for s in settled), ZERO)
        assert k.actual_compensation_ratio == (round(funds / total, 4) if total else None)
        assert k.cost_per_stay == ((total / len(settled)).quantize(FEN, ROUND_HALF_UP) if settled else None)
        assert k.compensation_per_inpatient == ((funds / len(people)).quantize(FEN, ROUND_HALF_UP) if people else None)
        for lv in k.in_policy_ratio_by_level:
            at = [s for s in settled if levels[s.hospital_id] == lv.level]
            in_policy = sum((s.in_policy for s in at), ZERO)
            assert (lv.stays, lv.in_policy) == (len(at), in_policy)
            assert lv.ratio == round(sum((s.fund_pay_sumamt for s in at), ZERO) / in_policy, 4)
        low = [s for s in settled if levels[s.hospital_id] <= 2]
        low_in_policy = sum((s.in_policy for s in low), ZERO)
        assert k.in_policy_ratio_level2_and_below == (
            round(sum((s.fund_pay_sumamt for s in low), ZERO) / low_in_policy, 4) if low_in_policy else None)
        cat = [d for s in settled for d in s.details if d.layer == "catastrophic"]
        above = sum((max(d.accumulator_after - d.deductible, ZERO) - max(d.accumulator_before - d.deductible, ZERO)
                     for d in cat), ZERO)
        assert k.catastrophic_above_threshold == above
        hifmi = sum((s.hifmi_pay for s in settled), ZERO)
        assert k.catastrophic_payment_ratio == (round(hifmi / above, 4) if above else None)
        in_period = Counter(r["rule"] for r in alert_rows if q.start <= discharged[r["claim_id"]] <= q.end
                            and (q.pool is None or pools[r["claim_id"].split(":")[0]] == q.pool)
                            and (q.region in (None, "demo-county")))
        assert k.alerts_by_rule == dict(in_period)

    year = results[0]
    assert year.settled > 100 and year.rejected > 0 and year.catastrophic_paid > 0 and year.assistance_paid > 0
    assert year.catastrophic_payment_ratio == Decimal("0.5000")  # the test's own pricing pays 50% above 6,000
    assert year.alerts_by_rule.get("manual_review_sample", 0) > 0
    insured = [s for s in person_snaps if any(c.coverage_year == 2026 for c in s.coverage)]
    assert year.insured_total == len(insured)
    expected_categories = Counter(c for s in insured for c in set(s.category_history[-1].categories))
    assert year.insured_by_category == dict(expected_categories)
    assert results[3].settlements == 0 and results[3].actual_compensation_ratio is None
