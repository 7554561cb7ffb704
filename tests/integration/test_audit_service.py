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
    Cause,
    ClaimRequestRefused,
    ClaimSummary,
    DischargeCorrected,
    DischargeRecorded,
    Envelope,
    LayerDetail,
    PersonSnapshot,
    ProviderSnapshot,
    Rejection,
    ReversalRequested,
    SettlementAdjusted,
    SettlementReversed,
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
    REFUSALS,
    STATEMENTS,
    dead_letter_topic,
)
from services.audit.app import make_spec, reconcile_now
from services.audit.config import AuditConfig
from services.audit.kpis import KpiQuery, compute_kpis, compute_kpis_full
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


AMOUNTS = ("total_cost", "in_policy", "out_of_policy", "hifp_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt", "psn_pay")
Net = dict[str, Decimal]
"""A claim's amounts by statement field (net amounts: the sum of its statements)."""
Events = list[tuple[str, str, Envelope[Any]]]


def amounts_of(d: DischargeRecorded, hifp: Decimal, hifmi: Decimal, maf: Decimal, *, rejected: bool = False) -> Net:
    """What a statement of the bill `d` says, priced (hifp, hifmi, maf)."""
    in_policy = in_policy_of(d)
    funds = ZERO if rejected else hifp + hifmi + maf
    paid = (ZERO, ZERO, ZERO) if rejected else (hifp, hifmi, maf)
    return dict(zip(AMOUNTS, (d.total_amount, in_policy, d.total_amount - in_policy, *paid, funds,
                              d.total_amount - funds), strict=True))


def net_of(statements: Iterable[Any]) -> Net:
    """The sum of statements (payload models), field by field."""
    return {k: sum((getattr(s, k) for s in statements), ZERO) for k in AMOUNTS}


def event_id_of(event_type: str, claim_id: str, revision: int) -> Any:
    """A layer event's id: `<EventType>:<claim id>` for revision 1, `...:<revision>` after."""
    return derived_event_id(event_type, claim_id if revision == 1 else f"{claim_id}:{revision}")


def cause_of(kind: str, request: Envelope[Any], reason: str = "bill corrected") -> Cause:
    """Why a revision was made: the hospital's request (its claim, its event id)."""
    return Cause(kind=kind, claim_id=request.payload.claim_id, reason=reason, request_event_id=str(request.event_id))


def request_envelope(request: Any, *, producer: str | None = None, occurred_at: datetime | None = None
                     ) -> Envelope[Any]:
    """A hospital's request (discharge, correction, reversal) as the hospital sends it."""
    return make_envelope(request, correlation_id=request.claim_id,
                         producer=producer or f"hospital:{request.hospital_id}", occurred_at=occurred_at)


def settle(d: DischargeRecorded, hifp: Decimal, hifmi: Decimal, maf: Decimal, *, event: Envelope[Any] | None = None,
           cat_before: Decimal = ZERO, cat_after: Decimal = ZERO, threshold: Decimal = Decimal("6000.00"),
           rejected: bool = False, statement_event_id: Any = None, revision: int = 1, cause: Cause | None = None,
           net: Net | None = None) -> Events:
    """(topic, key, envelope) of the three layer events of a claim whose bill is `d`, priced as given.
    Revision 1 ends in a `SettlementStatement`; a later revision (with its cause) in a
    `SettlementAdjusted` with the differences from `net`, the claim's net amounts so far."""
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
                     catastrophic_base=in_policy - hifp, revision=revision, cause=cause)
    c = CatastrophicSettled(claim=claim, outcome=outcome, rejection=rejection, basic=basic, catastrophic=cat,
                            residual_in_policy=in_policy - hifp - hifmi, revision=revision, cause=cause)
    now = amounts_of(d, hifp, hifmi, maf, rejected=rejected)
    stated = {"claim_id": d.claim_id, "hospital_claim_id": d.hospital_claim_id, "hospital_id": d.hospital_id,
              "person_id": d.person_id, "admission_date": d.admission_date, "discharge_date": d.discharge_date,
              "insurance_year": d.discharge_date.year, "outcome": outcome, "rejection": rejection,
              "details": tuple(x for x in (basic, cat, assist) if x), "profile_id": "demo-county",
              "profile_version": 1, "settled_at": datetime.now(UTC), "revision": revision}
    s: SettlementStatement | SettlementAdjusted
    if revision == 1:
        s = SettlementStatement(**stated, **now)
    else:
        assert cause is not None and net is not None
        s = SettlementAdjusted(**stated, cause=cause, **{k: now[k] - net[k] for k in AMOUNTS})
    eb = make_envelope(b, correlation_id=d.claim_id, producer="settlement", causation_id=event.event_id,
                       event_id=event_id_of("BasicSettled", d.claim_id, revision))
    ec = make_envelope(c, correlation_id=d.claim_id, producer="catastrophic", causation_id=eb.event_id,
                       event_id=event_id_of("CatastrophicSettled", d.claim_id, revision))
    es = make_envelope(s, correlation_id=d.claim_id, producer="assistance", causation_id=ec.event_id,
                       event_id=statement_event_id or event_id_of(type(s).__name__, d.claim_id, revision))
    return [(BASIC_SETTLED, d.person_id, eb), (CATASTROPHIC_SETTLED, d.person_id, ec), (STATEMENTS, d.person_id, es)]


def reverse(d: DischargeRecorded, net: Net, *, revision: int, cause: Cause, event: Envelope[Any]) -> Events:
    """The reversal of a claim (bill `d`, net amounts so far `net`): both layers' reversed results and
    the `SettlementReversed` with the net negated."""
    claim = summary(d, str(event.event_id))
    b = BasicSettled(claim=claim, outcome="settled", residual_in_policy=ZERO, catastrophic_base=ZERO,
                     revision=revision, reversed=True, cause=cause)
    c = CatastrophicSettled(claim=claim, outcome="settled", residual_in_policy=ZERO, revision=revision, reversed=True,
                            cause=cause)
    s = SettlementReversed(claim_id=d.claim_id, hospital_claim_id=d.hospital_claim_id, hospital_id=d.hospital_id,
                           person_id=d.person_id, admission_date=d.admission_date, discharge_date=d.discharge_date,
                           insurance_year=d.discharge_date.year, revision=revision, cause=cause,
                           settled_at=datetime.now(UTC), **{k: -net[k] for k in AMOUNTS})
    eb = make_envelope(b, correlation_id=d.claim_id, producer="settlement", causation_id=event.event_id,
                       event_id=event_id_of("BasicSettled", d.claim_id, revision))
    ec = make_envelope(c, correlation_id=d.claim_id, producer="catastrophic", causation_id=eb.event_id,
                       event_id=event_id_of("CatastrophicSettled", d.claim_id, revision))
    es = make_envelope(s, correlation_id=d.claim_id, producer="assistance", causation_id=ec.event_id,
                       event_id=event_id_of("SettlementReversed", d.claim_id, revision))
    return [(BASIC_SETTLED, d.person_id, eb), (CATASTROPHIC_SETTLED, d.person_id, ec), (STATEMENTS, d.person_id, es)]


def corrected_then_reversed(d: DischargeRecorded, correction: str = "bed days billed twice",
                            reversal: str = "patient was not admitted") -> tuple[Events, Envelope[Any]]:
    """A claim's life (`d` with the default bill: 980.00, 935.00 in policy): settled (300.00, 100.00,
    50.00), corrected without its bed line (945.00; re-priced 280.00, 95.00, 50.00: an adjustment of
    -35.00 in total, the patient -10.00), then reversed (-945.00, nets to zero). Returns the events in
    order, the hospital's requests included, and the correction's envelope."""
    first = request_envelope(d)
    events: Events = [(DISCHARGES, d.person_id, first)]
    events += (settled := settle(d, Decimal("300.00"), Decimal("100.00"), Decimal("50.00"), event=first))
    fixed = correct(d, reason=correction, lines=[ln for ln in d.lines if ln.item_code != "BED-001"])
    fix = request_envelope(fixed)
    events.append((DISCHARGES, d.person_id, fix))
    events += (adjusted := settle(fixed, Decimal("280.00"), Decimal("95.00"), Decimal("50.00"), event=fix,
                                  revision=2, net=net_of([statement_in(settled)]),
                                  cause=cause_of("correction", fix, correction)))
    back = request_envelope(reversal_of(fixed, reversal))
    events.append((DISCHARGES, d.person_id, back))
    events += reverse(fixed, net_of([statement_in(settled), statement_in(adjusted)]), revision=3, event=back,
                      cause=cause_of("reversal", back, reversal))
    return events, fix


def statement_in(events: Events) -> Any:
    return next(e[2].payload for e in events if e[0] == STATEMENTS)


def correct(d: DischargeRecorded, *, reason: str = "bill corrected", **changes: Any) -> DischargeCorrected:
    """The correction of `d`: its bill with `changes`, the total recomputed from the lines."""
    fields = {**d.model_dump(exclude={"correction_reason"}), **changes}
    fields["total_amount"] = sum((BillLine.model_validate(ln).amount for ln in fields["lines"]), ZERO)
    return DischargeCorrected(**fields, correction_reason=reason)


def reversal_of(d: DischargeRecorded, reason: str = "wrong patient") -> ReversalRequested:
    return ReversalRequested(hospital_claim_id=d.hospital_claim_id, hospital_id=d.hospital_id, person_id=d.person_id,
                             reason=reason)


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


async def test_corrections_and_reversals_change_the_stays_the_rules_see(ns: Namespace) -> None:
    day = date(2026, 3, 1)
    p = {name: pid(100 + i) for i, name in enumerate(("moved", "reversed", "refused", "late"))}

    def n(prefix: str, hospital: str = "H001") -> str:
        return claim_number(prefix, hospital)

    first = discharge("H001", n("MA"), p["moved"], day, day + timedelta(days=5))
    far = discharge("H001", n("MB"), p["moved"], date(2026, 4, 20), date(2026, 4, 22))  # 45 days later: no rule
    moved = correct(far, admission_date=day + timedelta(days=3), discharge_date=day + timedelta(days=7),
                    lines=[bill_line("BED-001", "35.00", day + timedelta(days=3))])  # now inside the first stay
    gone = discharge("H001", n("RA"), p["reversed"], day, day + timedelta(days=5))
    after_gone = discharge("H002", n("RB", "H002"), p["reversed"], day + timedelta(days=1), day + timedelta(days=3))
    kept = discharge("H001", n("FA"), p["refused"], day, day + timedelta(days=5))
    over_kept = discharge("H002", n("FB", "H002"), p["refused"], day + timedelta(days=1), day + timedelta(days=3))
    late = discharge("H001", n("LA"), p["late"], date(2026, 1, 5), date(2026, 1, 8))
    burst_day = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    # five reversals at H004 on 5 March (Beijing), one of them 00:30 Beijing = 4 March in UTC; four at
    # H005 that day and a fifth already on 6 March in Beijing
    bursts = {h: [discharge(h, n(f"B{h}{i}", h), pid(200 + 10 * int(h[-1]) + i), day, day + timedelta(days=1))
                  for i in range(5)] for h in ("H004", "H005")}
    when = {"H004": [datetime(2026, 3, 4, 16, 30, tzinfo=UTC), *(burst_day + timedelta(hours=i) for i in range(4))],
            "H005": [*(burst_day + timedelta(hours=i) for i in range(4)), datetime(2026, 3, 5, 16, 30, tzinfo=UTC)]}
    requests: list[tuple[str, Any]] = [(d.person_id, request_envelope(d)) for d in (
        first, far, gone, kept, late, *bursts["H004"], *bursts["H005"])]
    requests += [(moved.person_id, request_envelope(moved)),
                 (gone.person_id, request_envelope(reversal_of(gone), occurred_at=datetime(2026, 3, 7, tzinfo=UTC))),
                 (kept.person_id, request_envelope(reversal_of(kept), producer="hospital:H002",  # not its filer
                                                   occurred_at=datetime(2026, 3, 7, tzinfo=UTC))),
                 (late.person_id, request_envelope(reversal_of(late), occurred_at=datetime(2026, 3, 1, tzinfo=UTC))),
                 *((d.person_id, request_envelope(reversal_of(d), occurred_at=at))
                   for h in ("H004", "H005") for d, at in zip(bursts[h], when[h], strict=True)),
                 *((d.person_id, request_envelope(d)) for d in (after_gone, over_kept))]
    expected = {("overlapping_stays", moved.claim_id), ("overlapping_stays", over_kept.claim_id),
                ("late_reversal", late.claim_id), ("reversal_burst", None),
                ("unexpected_producer", kept.claim_id)}  # H002 reversing H001's claim

    async with running(make_spec(QUIET), ns.settings("audit")):
        await ns.publish(DISCHARGES, requests)
        records = await ns.read(ALERTS, until=lambda rs: len(rs) >= len(expected))
        await wait_stored(ns, DISCHARGES, len(requests))
        await wait_stored(ns, ALERTS, len(expected))

    alerts = payloads(records, AuditAlert)
    assert {(a.rule, a.claim_id) for a in alerts} == expected and len(alerts) == len(expected)
    by_rule = {a.rule: a for a in alerts if a.claim_id != over_kept.claim_id}
    overlap = by_rule["overlapping_stays"]
    assert overlap.evidence["other_claim_id"] == first.claim_id and overlap.evidence["same_hospital"] == "true"
    assert overlap.evidence["overlap_nights"] == "2"  # 4–6 March: the corrected dates, not the first ones
    burst = by_rule["reversal_burst"]
    assert burst.alert_id == "reversal_burst:H004:2026-03-05" and burst.hospital_id == "H004"
    assert burst.evidence["reversals"] == "5"
    assert burst.evidence["claims"] == ",".join(sorted(d.claim_id for d in bursts["H004"]))
    assert by_rule["late_reversal"].evidence["days_after_discharge"] == "52"
    stays = {r["claim_id"]: r for r in await fetch(ns, "SELECT * FROM stay")}
    assert (stays[far.claim_id]["admission_date"], stays[far.claim_id]["discharge_date"]) == (
        moved.admission_date, moved.discharge_date)
    assert stays[gone.claim_id]["reversed"] and not stays[kept.claim_id]["reversed"]
    assert stays[far.claim_id]["event_id"] != stays[far.claim_id]["changed_by"]  # the discharge, then the correction
    reversals = await fetch(ns, "SELECT claim_id, requested_on FROM reversal")
    assert len(reversals) == 12 and kept.claim_id not in {r["claim_id"] for r in reversals}


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


def refusal(request: Envelope[Any], code: str) -> tuple[str, str, Envelope[Any]]:
    r = request.payload
    refused = ClaimRequestRefused(request_event_id=str(request.event_id), request_type=request.event_type,
                                  claim_id=r.claim_id, hospital_claim_id=r.hospital_claim_id, hospital_id=r.hospital_id,
                                  person_id=r.person_id, reason_code=code, reason="refused by settlement")
    return REFUSALS, r.person_id, make_envelope(refused, correlation_id=r.claim_id, producer="settlement",
                                                causation_id=request.event_id)


async def test_reconciliation_works_on_net_amounts_across_adjustments_and_reversals(ns: Namespace) -> None:
    day = date(2026, 5, 4)
    names = ("adjusted", "knock_on", "reversed", "reinstated", "not_zero", "disagrees", "stale", "twice", "refused",
             "unknown")
    d = {name: discharge("H001", claim_number(f"N{i}-", "H001"), pid(300 + i), day, day + timedelta(days=3),
                         lines=[bill_line("DRG-001", "900.00", day), bill_line("BED-001", "35.00", day),
                                bill_line("OOP-001", "45.00", day, cls="SELF")])
         for i, name in enumerate(names)}
    D = Decimal
    events: list[tuple[str, str, Any]] = []
    statements: dict[str, list[Any]] = {}  # what the test publishes per claim, in revision order

    def add(chain: Events) -> None:
        events.extend(chain)
        s = statement_in(chain)
        statements.setdefault(s.claim_id, []).append(s)

    def net(name: str) -> Net:
        return net_of(statements[d[name].claim_id])

    def correction_of(name: str, **changes: Any) -> tuple[DischargeCorrected, Envelope[Any]]:
        c = correct(d[name], **changes)
        env = request_envelope(c)
        events.append((DISCHARGES, c.person_id, env))
        return c, env

    def reversal_request(name: str) -> Envelope[Any]:
        env = request_envelope(reversal_of(d[name]))
        events.append((DISCHARGES, d[name].person_id, env))
        return env

    fewer = [bill_line("DRG-001", "800.00", day), bill_line("BED-001", "35.00", day),
             bill_line("OOP-001", "45.00", day, cls="SELF")]
    for name in names[:-1]:
        env = request_envelope(d[name])
        events.append((DISCHARGES, d[name].person_id, env))
        add(settle(d[name], D("300.00"), D("100.00"), D("50.00"), event=env))
    # a correction, priced again and adjusted; a later claim of the year re-priced by it
    fixed, env = correction_of("adjusted", lines=fewer)
    add(settle(fixed, D("250.00"), D("80.00"), D("40.00"), event=env, revision=2, net=net("adjusted"),
               cause=cause_of("correction", env)))
    add(settle(d["knock_on"], D("300.00"), D("120.00"), D("45.00"), event=env, revision=2, net=net("knock_on"),
               cause=cause_of("correction", env)))
    # reversals: one nets to zero, one is reinstated afterwards, one leaves the patient's part
    env = reversal_request("reversed")
    events.extend(chain := reverse(d["reversed"], net("reversed"), revision=2, cause=cause_of("reversal", env),
                                   event=env))
    statements[d["reversed"].claim_id].append(statement_in(chain))
    env = reversal_request("reinstated")
    events.extend(chain := reverse(d["reinstated"], net("reinstated"), revision=2, cause=cause_of("reversal", env),
                                   event=env))
    statements[d["reinstated"].claim_id].append(statement_in(chain))
    again = request_envelope(d["reinstated"])
    events.append((DISCHARGES, d["reinstated"].person_id, again))
    add(settle(d["reinstated"], D("300.00"), D("100.00"), D("50.00"), event=again, revision=3, net=net("reinstated"),
               cause=cause_of("reinstatement", again)))
    env = reversal_request("not_zero")
    chain = reverse(d["not_zero"], net("not_zero"), revision=2, cause=cause_of("reversal", env), event=env)
    short = statement_in(chain).model_copy(update={k: statement_in(chain).__dict__[k] + 10
                                                   for k in ("total_cost", "out_of_policy", "psn_pay")})
    events.extend([*chain[:2], (STATEMENTS, short.person_id, chain[2][2].model_copy(update={"payload": short}))])
    statements[short.claim_id].append(short)
    # an adjustment that disagrees with the layers: basic's revision 2 pays 250.00, the adjustment says 240.00
    fixed, env = correction_of("disagrees", lines=fewer)
    layers = settle(fixed, D("250.00"), D("80.00"), D("40.00"), event=env, revision=2, net=net("disagrees"),
                    cause=cause_of("correction", env))
    wrong = settle(fixed, D("240.00"), D("80.00"), D("40.00"), event=env, revision=2, net=net("disagrees"),
                   cause=cause_of("correction", env))
    events.extend(layers[:2])
    add(wrong[2:])
    # a revision that never reached the statements: basic's revision 2 only
    fixed, env = correction_of("stale", discharge_date=day + timedelta(days=4))
    events.append(settle(fixed, D("280.00"), D("100.00"), D("50.00"), event=env, revision=2, net=net("stale"),
                         cause=cause_of("correction", env))[0])
    # an adjustment sent twice under two event ids
    fixed, env = correction_of("twice", lines=fewer)
    add(settle(fixed, D("250.00"), D("80.00"), D("40.00"), event=env, revision=2, net=net("twice"),
               cause=cause_of("correction", env)))
    events.append(settle(fixed, D("250.00"), D("80.00"), D("40.00"), event=env, revision=2, net=net_of(
        statements[d["twice"].claim_id][:1]), cause=cause_of("correction", env),
        statement_event_id=derived_event_id("x", "twice"))[2])
    # refused requests change nothing: a correction from another producer, a correction of no claim
    _, env = correction_of("refused", lines=fewer)
    events[-1] = (DISCHARGES, d["refused"].person_id, env := request_envelope(env.payload, producer="hospital:H009"))
    events.append(refusal(env, "WRONG_HOSPITAL"))
    unknown = request_envelope(correct(d["unknown"], lines=fewer))
    events += [(DISCHARGES, d["unknown"].person_id, unknown), refusal(unknown, "UNKNOWN_CLAIM")]

    by_topic = Counter(topic for topic, _, _ in events)
    async with running(make_spec(QUIET), ns.settings("audit")) as ctx:
        await publish_events(ns, events)
        for topic, count in by_topic.items():
            await wait_stored(ns, topic, count)
        early = await reconcile_now(ctx)
        late = await reconcile_now(ctx, datetime.now(UTC) + timedelta(seconds=61))
        again_ = await reconcile_now(ctx, datetime.now(UTC) + timedelta(seconds=120))

    claim = {name: d[name].claim_id for name in names}
    assert [a.alert_id for a in early.raised] == [f"duplicate_statement:{claim['twice']}:r2"]
    assert early.claims_in_flight == 3  # the three discrepancies wait: a revision may be on its way
    raised = {a.alert_id: a for a in late.raised}
    total = next(a for a in late.raised if a.rule == "layer_total_mismatch")
    assert set(raised) == {f"reversed_claim_not_zero:{claim['not_zero']}:r2",
                           f"layer_result_mismatch:basic:{claim['disagrees']}:r2",
                           f"layer_result_mismatch:basic:{claim['stale']}", total.alert_id}
    assert raised[f"reversed_claim_not_zero:{claim['not_zero']}:r2"].evidence == {"total_cost": "10.00",
                                                                                  "psn_pay": "10.00"}
    assert raised[f"layer_result_mismatch:basic:{claim['disagrees']}:r2"].evidence == {
        "layer": "basic", "statement": "240.00", "layer_result": "250.00"}
    assert raised[f"layer_result_mismatch:basic:{claim['stale']}"].evidence == {
        "layer": "basic", "statement": "300.00", "layer_result": "280.00"}
    assert total.evidence["layer"] == "basic" and total.evidence["difference"] == "10.00"  # -10.00 + 20.00
    assert again_.raised == [] and again_.claims_checked == 0
    assert early.claims_checked + late.claims_checked == len(names) - 1  # every claim with a statement, once

    # the per-layer totals: the statements' net amounts against the layers' latest results, as the
    # test published them
    latest: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for topic, _, env in events:
        if topic in (BASIC_SETTLED, CATASTROPHIC_SETTLED):
            layer = "basic" if topic == BASIC_SETTLED else "catastrophic"
            p = env.payload
            paid = ZERO if p.reversed or getattr(p, layer) is None else getattr(p, layer).paid
            key = (layer, p.claim.claim_id)
            if key not in latest or p.revision > latest[key][0]:
                latest[key] = (p.revision, paid)
    for layer, fld in (("basic", "hifp_pay"), ("catastrophic", "hifmi_pay"), ("assistance", "maf_pay")):
        stated = sum((getattr(s, fld) for ss in statements.values() for s in ss), ZERO)
        if layer == "assistance":
            results = sum((next((x.paid for x in ss[-1].details if x.layer == "assistance"), ZERO)
                           if not isinstance(ss[-1], SettlementReversed) else ZERO for ss in statements.values()), ZERO)
        else:
            results = sum((paid for (lay, _), (_, paid) in latest.items() if lay == layer), ZERO)
        [t] = [t for t in late.totals if (t.layer, t.insurance_year) == (layer, 2026)]
        assert (t.statements, t.layer_results) == (stated, results), layer
    assert len(late.totals) == 3


async def test_the_audit_stores_refusals_and_dead_letters_a_broken_one(ns: Namespace) -> None:
    d = discharge("H001", claim_number("RF", "H001"), pid(90), date(2026, 3, 1), date(2026, 3, 3))
    _, key, refused = refusal(request_envelope(reversal_of(d)), "UNKNOWN_CLAIM")
    broken = encode(refused).replace(b'"UNKNOWN_CLAIM"', b'"NO_SUCH_CODE"')  # the payload breaks its contract
    async with running(make_spec(QUIET), ns.settings("audit")):
        await ns.publish(REFUSALS, [(key, refused), (key, broken)])
        letters = await ns.read(dead_letter_topic(REFUSALS), until=lambda rs: len(rs) >= 1)
        await wait_stored(ns, REFUSALS, 2)
    stored = await fetch(ns, "SELECT claim_id, event_type, error FROM event_store WHERE topic = $1 ORDER BY id",
                         REFUSALS)
    assert [(r["claim_id"], r["event_type"], r["error"] is None) for r in stored] == [
        (d.claim_id, "ClaimRequestRefused", True), (d.claim_id, "ClaimRequestRefused", False)]
    [letter] = letters  # the audit owns claims.refusals: it alone dead-letters it, once
    headers = dict(letter.headers)
    assert headers["dlt.service"] == b"audit" and letter.value == broken
    assert b"reason_code" in headers["dlt.field"]


async def test_the_reconciliation_timer_raises_a_missing_statement_by_itself(ns: Namespace) -> None:
    config = AuditConfig(RECONCILE_INTERVAL_S=0.3, STATEMENT_TIMEOUT_S=0.5)
    d = discharge("H001", claim_number("T", "H001"), pid(77), date(2026, 5, 1), date(2026, 5, 3))
    async with running(make_spec(config), ns.settings("audit")):
        await ns.publish(DISCHARGES, [(d.person_id, discharge_envelope(d))])
        records = await ns.read(ALERTS, until=lambda rs: len(rs) >= 1, timeout=30)
    [alert] = payloads(records, AuditAlert)
    assert (alert.rule, alert.claim_id, alert.severity) == ("missing_statement", d.claim_id, "high")


# ----------------------------------------------------------------- KPIs on a generated dataset


RATIOS = {1: Decimal("0.60"), 2: Decimal("0.50"), 3: Decimal("0.40")}


def own_pricing(d: DischargeRecorded, level: int, poor: bool, before: Decimal
                ) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """A simple pricing of its own (not the platform's): basic by level on in-policy cost, critical
    illness 50% above 6,000 accumulated per person, assistance 70% of the rest for the poor.
    Returns (hifp, hifmi, maf, the accumulation after)."""
    in_policy = in_policy_of(d)
    hifp = (in_policy * RATIOS[level]).quantize(FEN, ROUND_HALF_UP)
    after = before + in_policy - hifp
    above = max(after - 6000, ZERO) - max(before - 6000, ZERO)
    hifmi = (above * Decimal("0.5")).quantize(FEN, ROUND_HALF_UP)
    maf = ((in_policy - hifp - hifmi) * Decimal("0.7")).quantize(FEN, ROUND_HALF_UP) if poor else ZERO
    return hifp, hifmi, maf, after


def independent_statements(discharges: Sequence[DischargeRecorded], levels: dict[str, int],
                           poor: set[str], enrolled: set[str]) -> list[Events]:
    accumulated: dict[str, Decimal] = {}
    out = []
    for d in sorted(discharges, key=lambda x: (x.discharge_date, x.claim_id)):
        if d.person_id not in enrolled:
            out.append(settle(d, ZERO, ZERO, ZERO, rejected=True))
            continue
        before = accumulated.get(d.person_id, ZERO)
        hifp, hifmi, maf, accumulated[d.person_id] = own_pricing(d, levels[d.hospital_id], d.person_id in poor, before)
        out.append(settle(d, hifp, hifmi, maf, cat_before=before, cat_after=accumulated[d.person_id]))
    return out


def revisions(chains: list[Events], bills: dict[str, DischargeRecorded], poor: set[str]) -> tuple[Events, set[str]]:
    """Corrections, reversals, a reinstatement and adjustments of later claims (the cause another
    claim's request) on some of the settled claims, with the test's own arithmetic, in order, and
    the claims corrected (a refused correction is among the events too, and changes nothing)."""
    out: Events = []
    corrected: set[str] = set()
    net: dict[str, Net] = {}
    revision: dict[str, int] = {}
    bill: dict[str, DischargeRecorded] = {}
    settled = []
    for chain in chains:
        s = statement_in(chain)
        net[s.claim_id], revision[s.claim_id] = net_of([s]), 1
        if s.outcome == "settled":
            settled.append(s)
    by_person: dict[str, list[str]] = {}
    for s in settled:
        by_person.setdefault(s.person_id, []).append(s.claim_id)

    def revise(claim: str, d: DischargeRecorded, hifp: Decimal, hifmi: Decimal, maf: Decimal, cause: Cause,
               event: Envelope[Any], before: Decimal = ZERO, after: Decimal = ZERO) -> None:
        revision[claim] += 1
        chain = settle(d, hifp, hifmi, maf, event=event, revision=revision[claim], cause=cause, net=net[claim],
                       cat_before=before, cat_after=after)
        out.extend(chain)
        net[claim] = {k: net[claim][k] + getattr(statement_in(chain), k) for k in AMOUNTS}

    def reverse_(claim: str, d: DischargeRecorded, cause: Cause, event: Envelope[Any]) -> None:
        revision[claim] += 1
        chain = reverse(d, net[claim], revision=revision[claim], cause=cause, event=event)
        out.extend(chain)
        net[claim] = dict.fromkeys(AMOUNTS, ZERO)

    reinstated = False
    for i, s in enumerate(settled):
        level = next(c for c in chains if statement_in(c).claim_id == s.claim_id)[0][2].payload.claim.hospital_level
        d = bill.setdefault(s.claim_id, bills[s.claim_id])
        cat_row = next(x for x in s.details if x.layer == "catastrophic")
        if i % 5 == 1 and len(d.lines) > 1:  # a correction: the last bill line was wrong
            fixed = correct(d, lines=list(d.lines[:-1]))
            env = request_envelope(fixed)
            out.append((DISCHARGES, d.person_id, env))
            corrected.add(s.claim_id)
            hifp, hifmi, maf, after = own_pricing(fixed, level, s.person_id in poor,
                                                  cat_row.accumulator_before)
            revise(s.claim_id, fixed, hifp, hifmi, maf, cause_of("correction", env), env,
                   cat_row.accumulator_before, after)
            bill[s.claim_id] = fixed
            later = by_person[s.person_id][by_person[s.person_id].index(s.claim_id) + 1:]
            other = next((x for x in settled if later and x.claim_id == later[0]), None)
            if other is not None and other.hifp_pay >= 1:  # the person's next claim: basic pays one yuan less
                other_cat = next(x for x in other.details if x.layer == "catastrophic")
                revise(other.claim_id, bill.get(other.claim_id, bills[other.claim_id]), other.hifp_pay - 1,
                       other.hifmi_pay,
                       other.maf_pay, cause_of("correction", env), env, other_cat.accumulator_before,
                       other_cat.accumulator_after)
        if i % 7 == 3:  # a reversal
            env = request_envelope(reversal_of(bill[s.claim_id]))
            out.append((DISCHARGES, d.person_id, env))
            reverse_(s.claim_id, bill[s.claim_id], cause_of("reversal", env, "wrong patient"), env)
            if not reinstated:  # the first one is sent again and settled again
                reinstated = True
                env = request_envelope(bill[s.claim_id])
                out.append((DISCHARGES, d.person_id, env))
                revise(s.claim_id, bill[s.claim_id], s.hifp_pay, s.hifmi_pay, s.maf_pay,
                       cause_of("reinstatement", env, "reversed by mistake"), env, cat_row.accumulator_before,
                       cat_row.accumulator_after)
        if i % 11 == 4:  # a correction settlement refuses: it changes nothing
            env = request_envelope(correct(bill[s.claim_id], lines=list(bill[s.claim_id].lines[:1])),
                                   producer="hospital:NOT-IT")
            out += [(DISCHARGES, d.person_id, env), refusal(env, "WRONG_HOSPITAL")]
    return out, corrected


def claims_now(statements: Sequence[Any]) -> dict[str, list[Any]]:
    """Each claim's statements, one per revision (the first received), in revision order."""
    out: dict[str, dict[int, Any]] = {}
    for s in statements:
        out.setdefault(s.claim_id, {}).setdefault(s.revision, s)
    return {claim: [by_rev[r] for r in sorted(by_rev)] for claim, by_rev in out.items()}


def check_kpis(k: Any, q: KpiQuery, statements: Sequence[Any], levels: dict[str, int], pools: dict[str, str],
               alert_rows: Sequence[Any], corrected: set[str]) -> None:
    """The KPIs against what the test computes itself from the statements it published: net amounts
    per claim, the claim's state and dates its latest statement's."""
    claims = claims_now(statements)
    latest = {c: ss[-1] for c, ss in claims.items()}
    profile = {c: next(s.profile_id for s in reversed(ss) if getattr(s, "profile_id", None)) for c, ss in claims.items()}
    state = {c: "reversed" if isinstance(s, SettlementReversed) else s.outcome for c, s in latest.items()}
    chosen = [c for c, s in latest.items() if q.start <= s.discharge_date <= q.end
              and (q.region is None or profile[c] == q.region) and (q.pool is None or pools[s.hospital_id] == q.pool)]
    net = {c: net_of(claims[c]) for c in chosen}
    settled = [c for c in chosen if state[c] == "settled"]
    paying = [c for c in chosen if state[c] != "rejected"]  # a reversed claim's net is zero

    def total(field: str, among: Sequence[str] = paying) -> Decimal:
        return sum((net[c][field] for c in among), ZERO)

    people = {latest[c].person_id for c in settled}
    assert (k.settlements, k.settled, k.rejected, k.reversed) == (
        len(settled) + sum(state[c] == "rejected" for c in chosen), len(settled),
        sum(state[c] == "rejected" for c in chosen), sum(state[c] == "reversed" for c in chosen))
    assert all(total(f, [c for c in paying if state[c] == "reversed"]) == 0 for f in AMOUNTS)
    cost, funds = total("total_cost"), total("fund_pay_sumamt")
    assert (k.total_cost, k.in_policy, k.funds_paid, k.patient_paid) == (cost, total("in_policy"), funds,
                                                                         total("psn_pay"))
    assert (k.basic_paid, k.catastrophic_paid, k.assistance_paid) == (total("hifp_pay"), total("hifmi_pay"),
                                                                     total("maf_pay"))
    assert k.actual_compensation_ratio == (round(funds / cost, 4) if cost else None)
    assert k.cost_per_stay == ((cost / len(settled)).quantize(FEN, ROUND_HALF_UP) if settled else None)
    assert k.compensation_per_inpatient == ((funds / len(people)).quantize(FEN, ROUND_HALF_UP) if people else None)
    for lv in k.in_policy_ratio_by_level:
        at = [c for c in settled if levels[latest[c].hospital_id] == lv.level]
        assert (lv.stays, lv.in_policy) == (len(at), total("in_policy", at))
        assert lv.ratio == round(total("fund_pay_sumamt", at) / total("in_policy", at), 4)
    low = [c for c in settled if levels[latest[c].hospital_id] <= 2]
    assert k.in_policy_ratio_level2_and_below == (
        round(total("fund_pay_sumamt", low) / total("in_policy", low), 4) if total("in_policy", low) else None)
    cat = [x for c in settled for x in latest[c].details if x.layer == "catastrophic"]
    above = sum((max(x.accumulator_after - x.deductible, ZERO) - max(x.accumulator_before - x.deductible, ZERO)
                 for x in cat), ZERO)
    assert k.catastrophic_above_threshold == above
    assert k.catastrophic_payment_ratio == (round(total("hifmi_pay", settled) / above, 4) if above else None)
    later = [s for c in chosen for s in claims[c][1:]]
    reversals = [s for s in later if isinstance(s, SettlementReversed)]
    assert (k.movement("reversal").statements, k.movement("reversal").funds, k.movement("reversal").patients) == (
        len(reversals), sum((s.fund_pay_sumamt for s in reversals), ZERO), sum((s.psn_pay for s in reversals), ZERO))
    for kind in ("correction", "reversal", "reinstatement"):
        adjusted = [s for s in later if isinstance(s, SettlementAdjusted) and s.cause.kind == kind]
        m = k.movement(f"adjustment:{kind}")
        assert (m.statements, m.claims, m.funds, m.patients) == (
            len(adjusted), len({s.claim_id for s in adjusted}), sum((s.fund_pay_sumamt for s in adjusted), ZERO),
            sum((s.psn_pay for s in adjusted), ZERO)), kind
    assert k.movement("adjustment").statements == sum(isinstance(s, SettlementAdjusted) for s in later)
    assert k.corrections == len(corrected & set(chosen))
    # an alert counts on its claim's discharge date; one about no claim (a hospital's reversals in a
    # day) on the day it was raised, and only without a region (no claim: no profile)
    in_period = Counter(r["rule"] for r in alert_rows if r["claim_id"] in latest
                        and q.start <= latest[r["claim_id"]].discharge_date <= q.end
                        and (q.pool is None or pools[r["claim_id"].split(":")[0]] == q.pool)
                        and (q.region in (None, "demo-county")))
    in_period.update(r["rule"] for r in alert_rows if r["claim_id"] is None
                     and q.start <= r["detected_at"].astimezone(UTC).date() <= q.end
                     and (q.pool is None or pools[r["hospital_id"]] == q.pool) and q.region is None)
    assert k.alerts_by_rule == dict(in_period)


@pytest.mark.parametrize("revised", [False, True], ids=["first-statements", "with-corrections-and-reversals"])
async def test_kpis_equal_the_figures_computed_from_the_statements(ns: Namespace, revised: bool) -> None:
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
    later, corrected = revisions(chains, {d.claim_id: d for d in discharges}, poor) if revised else ([], set())
    n_statements = len(discharges) + sum(1 for topic, _, _ in later if topic == STATEMENTS)

    async with running(make_spec(QUIET), ns.settings("audit")) as ctx:
        await ns.publish(PROVIDERS, [(s.provider_id, s) for s in provider_snaps])
        await ns.publish(PERSONS, [(s.person_id, s) for s in person_snaps])
        await ns.publish(DISCHARGES, [(d.person_id, discharge_envelope(d)) for d in discharges])
        await publish_events(ns, [c[2] for c in chains])
        await publish_events(ns, later)
        statements = payloads(await ns.read(STATEMENTS, until=lambda rs: len(rs) >= n_statements),
                              SettlementStatement, SettlementAdjusted, SettlementReversed)
        await wait_stored(ns, STATEMENTS, n_statements)
        await wait_stored(ns, PERSONS, len(person_snaps))
        await wait_stored(ns, PROVIDERS, len(provider_snaps))
        await wait_stored(ns, DISCHARGES, len(discharges) + sum(1 for t, _, _ in later if t == DISCHARGES))
        await wait_stored(ns, REFUSALS, sum(1 for t, _, _ in later if t == REFUSALS))
        await asyncio.sleep(1.0)  # alerts raised on the discharges come back through audit.alerts
        n_alerts = (await fetch(ns, "SELECT count(*) AS n FROM alert"))[0]["n"]
        await wait_stored(ns, ALERTS, n_alerts)
        alert_rows = await fetch(ns, "SELECT rule, claim_id, hospital_id, detected_at FROM alert")
        pool = next(s.pool_code for s in provider_snaps if s.location != "in_pool")
        queries = [KpiQuery(date(2026, 1, 1), date(2026, 12, 31)), KpiQuery(date(2026, 4, 1), date(2026, 6, 30)),
                   KpiQuery(date(2026, 1, 1), date(2026, 12, 31), region="demo-county", pool=pool),
                   KpiQuery(date(2026, 1, 1), date(2026, 12, 31), region="another-county"),
                   KpiQuery(date(2020, 1, 1), date(2099, 12, 31), pool=pool)]
        pool_conn = ctx.require_pool()
        async with pool_conn.acquire() as conn:
            results = [await compute_kpis(conn, q) for q in queries]
            # the summary kept per batch says what a full scan of the event store says
            assert results == [await compute_kpis_full(conn, q) for q in queries]

    pools = {s.provider_id: s.pool_code for s in provider_snaps}
    for q, k in zip(queries, results, strict=True):
        check_kpis(k, q, statements, levels, pools, alert_rows, corrected)
    if revised:  # the revisions are there to be counted
        year = results[0]
        assert year.reversed > 0 and year.corrections > 0 and year.movement("reversal").funds < 0
        for kind in ("correction", "reinstatement"):
            assert year.movement(f"adjustment:{kind}").statements > 0, kind
        assert year.corrections < sum(1 for t, _, e in later if t == DISCHARGES and e.event_type == "DischargeCorrected")
    year = results[0]
    assert year.settled > 100 and year.rejected > 0 and year.catastrophic_paid > 0 and year.assistance_paid > 0
    assert year.catastrophic_payment_ratio == Decimal("0.5000")  # the test's own pricing pays 50% above 6,000
    assert year.alerts_by_rule.get("manual_review_sample", 0) > 0
    insured = [s for s in person_snaps if any(c.coverage_year == 2026 for c in s.coverage)]
    assert year.insured_total == len(insured)
    expected_categories = Counter(c for s in insured for c in set(s.category_history[-1].categories))
    assert year.insured_by_category == dict(expected_categories)
    assert results[3].settlements == 0 and results[3].actual_compensation_ratio is None
