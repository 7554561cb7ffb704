"""Fund-supervision rules (基金监管): each one triggered, and a near miss that must not trigger."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from contracts import BillLine, DischargeCorrected, DischargeRecorded, PersonSnapshot, ReversalRequested
from contracts.enrollment import CategoryPeriod, CoveragePeriod, Suspension
from policy import load_profile
from services.audit import reconciliation as rec
from services.audit import rules
from services.audit.rules import DischargeContext, Reversal, Stay

POLICY = load_profile("demo-county").audit
assert POLICY is not None
PID = "500240198001010016"


def line(code: str = "DRG-001", *, unit: str = "支", qty: str = "1", price: str = "10.00",
         day: date = date(2026, 3, 2), cls: str = "A") -> BillLine:
    amount = (Decimal(qty) * Decimal(price)).quantize(Decimal("0.01"))
    return BillLine(item_code=code, item_name="项目", catalogue_class=cls, quantity=Decimal(qty), unit=unit,
                    unit_price=Decimal(price), amount=amount, service_date=day)


def discharge(number: str = "ZY1", *, hospital: str = "H001", admission: date = date(2026, 3, 1),
              out: date = date(2026, 3, 5), lines: tuple[BillLine, ...] | None = None, location: str = "in_pool",
              person: str = PID) -> DischargeRecorded:
    lines = lines or (line(),)
    return DischargeRecorded(hospital_claim_id=number, hospital_id=hospital, person_id=person,
                             admission_date=admission, discharge_date=out, care_location=location, referred=False,
                             diagnosis_codes=("J18.9",), lines=lines,
                             total_amount=sum((ln.amount for ln in lines), start=Decimal("0.00")))


def stay(claim: str, hospital: str, admission: date, out: date, person: str = PID) -> Stay:
    return Stay(claim, person, hospital, admission, out)


def person(*, death: date | None = None, suspensions: tuple[Suspension, ...] = ()) -> PersonSnapshot:
    return PersonSnapshot(
        person_id=PID, version=3, scheme="resident",
        status="deceased" if death else "suspended" if suspensions and suspensions[-1].end is None else "active",
        categories=("ordinary",), category_history=(CategoryPeriod(effective_from=date(2026, 1, 1),
                                                                    categories=("ordinary",)),),
        coverage=(CoveragePeriod(coverage_year=2026, payment_date=date(2025, 11, 1), benefits_from=date(2026, 1, 1),
                                 waiting_period=False),),
        suspensions=suspensions, date_of_death=death)


# ----------------------------------------------------------------- split admission


def test_readmission_to_the_same_hospital_within_the_window_is_a_split_admission() -> None:
    first = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 10))
    again = stay("H001:B", "H001", date(2026, 3, 25), date(2026, 3, 30))  # 15 days after the discharge
    found = rules.split_admission(again, [first], POLICY)
    assert [(f.rule, f.claim_id) for f in found] == [("split_admission", "H001:B")]
    assert found[0].evidence["previous_claim_id"] == "H001:A" and found[0].evidence["days_between"] == "15"
    assert found[0].source == "F003 L161, F004 L33"
    # the same pair judged from the earlier stay (arriving second) flags the same readmission
    assert [f.alert_id for f in rules.split_admission(first, [again], POLICY)] == ["split_admission:H001:B"]


def test_readmission_after_the_window_or_elsewhere_is_not_a_split_admission() -> None:
    first = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 10))
    late = stay("H001:B", "H001", date(2026, 3, 26), date(2026, 3, 30))  # 16 days
    other = stay("H002:C", "H002", date(2026, 3, 12), date(2026, 3, 14))
    someone_else = stay("H001:D", "H001", date(2026, 3, 11), date(2026, 3, 14), person="110105194912310021")
    assert rules.split_admission(late, [first, other, someone_else], POLICY) == []
    assert rules.split_admission(other, [first], POLICY) == []
    assert rules.split_admission(someone_else, [first], POLICY) == []


# ----------------------------------------------------------------- overlapping stays


def test_one_night_at_two_hospitals_is_an_overlap_flagged_on_the_later_admission() -> None:
    a = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 6))
    b = stay("H002:B", "H002", date(2026, 3, 5), date(2026, 3, 9))
    found = rules.overlapping_stays(a, [b], POLICY)
    assert [(f.rule, f.claim_id) for f in found] == [("overlapping_stays", "H002:B")]
    assert found[0].evidence["overlap_nights"] == "1" and found[0].evidence["other_claim_id"] == "H001:A"
    assert [f.alert_id for f in rules.overlapping_stays(b, [a], POLICY)] == ["overlapping_stays:H002:B"]


def test_a_transfer_on_the_discharge_day_is_not_an_overlap() -> None:
    a = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 6))
    transfer = stay("H002:B", "H002", date(2026, 3, 6), date(2026, 3, 9))  # shares a day, not a night
    readmitted = stay("H001:C", "H001", date(2026, 3, 6), date(2026, 3, 8))  # the same hospital, the same way
    assert rules.overlapping_stays(transfer, [a], POLICY) == []
    assert rules.overlapping_stays(readmitted, [a], POLICY) == []


def test_two_overlapping_stays_at_the_same_hospital_are_an_overlap_too() -> None:
    a = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 6))
    billed_again = stay("H001:B", "H001", date(2026, 3, 1), date(2026, 3, 6))  # the same stay, another claim id
    inside = stay("H001:C", "H001", date(2026, 3, 2), date(2026, 3, 4))
    [f] = rules.overlapping_stays(billed_again, [a], POLICY)
    assert (f.rule, f.claim_id, f.alert_id) == ("overlapping_stays", "H001:B", "overlapping_stays:H001:B")
    assert f.evidence["same_hospital"] == "true" and f.evidence["overlap_nights"] == "5"
    assert f.evidence["other_claim_id"] == "H001:A"
    # judged from the other side of the pair: the same alert (the later admission, then the larger claim id)
    assert [g.alert_id for g in rules.overlapping_stays(a, [billed_again], POLICY)] == ["overlapping_stays:H001:B"]
    assert [g.alert_id for g in rules.overlapping_stays(a, [inside], POLICY)] == ["overlapping_stays:H001:C"]
    other = rules.overlapping_stays(stay("H002:D", "H002", date(2026, 3, 5), date(2026, 3, 9)), [a], POLICY)
    assert other[0].evidence["same_hospital"] == "false"


def test_reversed_stays_count_for_no_stay_rule() -> None:
    a = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 6))
    gone = replace(a, reversed=True)
    again = stay("H001:B", "H001", date(2026, 3, 1), date(2026, 3, 6))
    readmission = stay("H001:C", "H001", date(2026, 3, 10), date(2026, 3, 12))
    assert rules.overlapping_stays(again, [a], POLICY) != []
    assert rules.overlapping_stays(again, [gone], POLICY) == []
    assert rules.split_admission(readmission, [a], POLICY) != []
    assert rules.split_admission(readmission, [gone], POLICY) == []
    night = {date(2026, 3, 2): [a, again]}
    assert rules.stacked_beds(again, night, 1, POLICY) != []
    assert rules.stacked_beds(again, {date(2026, 3, 2): [gone, again]}, 1, POLICY) == []
    dead = person(death=date(2026, 2, 1))
    assert rules.person_findings(dead, [a], POLICY) != [] and rules.person_findings(dead, [gone], POLICY) == []
    assert rules.stay_findings(replace(again, reversed=True), DischargeContext(person_stays=[a], person=dead),
                               POLICY) == []


# ----------------------------------------------------------------- time-billed items


def test_more_than_24_hours_of_a_time_billed_item_in_one_day() -> None:
    d = discharge(lines=(line("HRS-002", unit="小时", qty="20", price="6.00"),
                         line("HRS-002", unit="小时", qty="220", price="6.00")))  # 240 h on one day (F002 L45)
    f = rules.time_billed_over_24h(d, POLICY)
    assert f is not None and f.rule == "time_billed_over_24h"
    assert f.evidence["hours_billed"] == "240" and f.evidence["item_code"] == "HRS-002"
    assert rules.time_billed_over_24h(discharge(lines=(line("HRS-001", unit="h", qty="25"),)), POLICY) is not None


def test_24_hours_a_day_or_many_units_of_a_counted_item_are_fine() -> None:
    d = discharge(lines=(line("HRS-002", unit="小时", qty="24", day=date(2026, 3, 2)),
                         line("HRS-002", unit="小时", qty="24", day=date(2026, 3, 3)),
                         line("DRG-003", unit="粒", qty="90")))
    assert rules.time_billed_over_24h(d, POLICY) is None


# ----------------------------------------------------------------- duplicate lines


def test_the_same_code_date_and_amount_twice_is_a_duplicate_line() -> None:
    d = discharge(lines=(line("EXM-008", price="280.00"), line("EXM-008", price="280.00"), line("DRG-001")))
    f = rules.duplicate_lines(d, POLICY)
    assert f is not None and f.evidence["item_code"] == "EXM-008" and f.evidence["times"] == "2"
    assert f.source == "F003 L155"


def test_same_code_on_another_day_or_with_another_amount_is_not_a_duplicate() -> None:
    d = discharge(lines=(line("EXM-008", price="280.00"), line("EXM-008", price="280.00", day=date(2026, 3, 3)),
                         line("EXM-008", qty="2", price="280.00")))
    assert rules.duplicate_lines(d, POLICY) is None


# ----------------------------------------------------------------- large out-of-area invoice


def test_a_large_invoice_outside_the_pool_is_flagged_for_verification() -> None:
    d = discharge(lines=(line("SUR-005", price="20000.00"),), location="out_of_province")
    f = rules.large_out_of_area_invoice(d, POLICY)
    assert f is not None and f.evidence["total_amount"] == "20000.00" and f.source == "F001 L675"


def test_a_large_invoice_in_the_pool_or_a_smaller_one_outside_is_not() -> None:
    assert rules.large_out_of_area_invoice(discharge(lines=(line(price="25000.00"),)), POLICY) is None
    assert rules.large_out_of_area_invoice(discharge(lines=(line(price="19999.99"),), location="in_province"),
                                           POLICY) is None


# ----------------------------------------------------------------- deceased or suspended


def test_a_claim_for_a_person_deceased_or_suspended_on_admission() -> None:
    s = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 5))
    dead = rules.deceased_or_suspended(s, person(death=date(2026, 2, 20)), POLICY)
    assert dead is not None and dead.evidence["status_at_admission"] == "deceased"
    suspended = rules.deceased_or_suspended(s, person(suspensions=(Suspension(start=date(2026, 2, 1), reason="x"),)),
                                            POLICY)
    assert suspended is not None and suspended.evidence["suspended_since"] == "2026-02-01"


def test_death_during_the_stay_or_a_suspension_that_ended_is_no_signal() -> None:
    s = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 5))
    assert rules.deceased_or_suspended(s, person(death=date(2026, 3, 4)), POLICY) is None
    ended = Suspension(start=date(2026, 2, 1), end=date(2026, 3, 1), reason="x")  # resumed on the admission day
    assert rules.deceased_or_suspended(s, person(suspensions=(ended,)), POLICY) is None
    assert rules.deceased_or_suspended(s, None, POLICY) is None


# ----------------------------------------------------------------- stacked beds


def test_more_concurrent_inpatients_than_licensed_beds_flags_the_last_admitted() -> None:
    first = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 4), person="P1")
    second = stay("H001:B", "H001", date(2026, 3, 2), date(2026, 3, 5), person="P2")
    third = stay("H001:C", "H001", date(2026, 3, 2), date(2026, 3, 3), person="P3")
    nights = {date(2026, 3, 1): [first], date(2026, 3, 2): [first, second, third], date(2026, 3, 3): [first, second]}
    found = rules.stacked_beds(first, nights, 2, POLICY)  # the earliest admission revealed the night
    assert [f.claim_id for f in found] == ["H001:C"]
    assert found[0].evidence == {"night": "2026-03-02", "concurrent_inpatients": "3", "licensed_beds": "2",
                                 "trigger_claim_id": "H001:A"}
    assert [f.claim_id for f in rules.stacked_beds(third, nights, 1, POLICY)] == ["H001:B", "H001:C"]


def test_a_full_hospital_is_not_stacked_beds() -> None:
    a = stay("H001:A", "H001", date(2026, 3, 1), date(2026, 3, 4), person="P1")
    b = stay("H001:B", "H001", date(2026, 3, 1), date(2026, 3, 4), person="P2")
    assert rules.stacked_beds(a, {date(2026, 3, 1): [a, b], date(2026, 3, 2): [a, b]}, 2, POLICY) == []
    assert rules.stacked_beds(a, {date(2026, 3, 1): [a, b]}, None, POLICY) == []  # provider unknown
    assert rules.nights_of(stay("X:1", "X", date(2026, 3, 1), date(2026, 3, 1))) == []


# ----------------------------------------------------------------- the 5% sample


def test_the_review_sample_is_deterministic_and_about_five_percent() -> None:
    claims = [f"H001:ZY{i:05d}" for i in range(20_000)]
    sampled = [c for c in claims if rules.in_review_sample(c, POLICY.manual_review_sample_rate)]
    assert 0.045 < len(sampled) / len(claims) < 0.055
    inside = stay(sampled[0], "H001", date(2026, 3, 1), date(2026, 3, 2))
    f = rules.manual_review_sample(inside, POLICY)
    assert f is not None and f.severity == "info" and f.source == "F003 L147"
    assert rules.manual_review_sample(inside, POLICY) == f


def test_a_claim_outside_the_sample_is_not_sampled() -> None:
    outside = next(f"H001:ZY{i:05d}" for i in range(100) if not rules.in_review_sample(f"H001:ZY{i:05d}",
                                                                                      Decimal("0.05")))
    assert rules.manual_review_sample(stay(outside, "H001", date(2026, 3, 1), date(2026, 3, 2)), POLICY) is None


# ----------------------------------------------------------------- together


def test_a_clean_discharge_raises_nothing_and_alerts_carry_no_names() -> None:
    number = next(f"ZY{i}" for i in range(100) if not rules.in_review_sample(f"H001:ZY{i}", Decimal("0.05")))
    clean = discharge(number)
    assert rules.discharge_findings(clean, DischargeContext(person=person(), licensed_beds=100), POLICY) == []
    dirty = discharge(number, lines=(line("EXM-1"), line("EXM-1")))
    [finding] = rules.discharge_findings(dirty, DischargeContext(), POLICY)
    alert = finding.to_alert(datetime(2026, 3, 6, tzinfo=UTC))
    assert alert.alert_id == f"duplicate_lines:H001:{number}" and alert.person_id == PID
    assert all(isinstance(v, str) for v in alert.evidence.values()) and "项目" not in str(alert.evidence)


def test_a_death_recorded_after_the_claim_flags_the_stays_after_it() -> None:
    stays = [stay("H001:A", "H001", date(2026, 1, 5), date(2026, 1, 9)),
             stay("H001:B", "H001", date(2026, 3, 1), date(2026, 3, 5))]
    found = rules.person_findings(person(death=date(2026, 2, 1)), stays, POLICY)
    assert [f.claim_id for f in found] == ["H001:B"]


# ----------------------------------------------------------------- the event store


@pytest.mark.parametrize("event_type, payload", [
    ("DischargeRecorded", {"hospital_id": "H001", "hospital_claim_id": "ZY1"}),
    ("DischargeCorrected", {"hospital_id": "H001", "hospital_claim_id": "ZY1", "correction_reason": "x"}),
    ("ReversalRequested", {"hospital_id": "H001", "hospital_claim_id": "ZY1", "reason": "x"}),
    ("BasicSettled", {"claim": {"claim_id": "H001:ZY1"}, "revision": 2}),
    ("CatastrophicSettled", {"claim": {"claim_id": "H001:ZY1"}, "reversed": True}),
    ("SettlementStatement", {"claim_id": "H001:ZY1"}),
    ("SettlementAdjusted", {"claim_id": "H001:ZY1", "revision": 2}),
    ("SettlementReversed", {"claim_id": "H001:ZY1", "revision": 3}),
    ("ClaimRequestRefused", {"claim_id": "H001:ZY1", "reason_code": "UNKNOWN_CLAIM"}),
    ("AuditAlert", {"claim_id": "H001:ZY1"}),
])
def test_every_claim_event_is_filed_under_its_claim(event_type: str, payload: dict[str, object]) -> None:
    from contracts import EVENT_TYPES
    from services.audit.handlers import claim_id_in

    assert event_type in EVENT_TYPES
    assert claim_id_in(event_type, payload) == "H001:ZY1"
    assert claim_id_in(event_type, {}) is None  # a payload that broke its contract: no claim to file it under


def test_registry_events_are_about_no_claim_and_no_claim_event_type_is_forgotten() -> None:
    from contracts import EVENT_TYPES
    from contracts.topics import TOPICS
    from services.audit.handlers import claim_id_in
    from services.audit.store import CLAIM_TOPICS

    claim_types = {p for t in TOPICS if t.name in CLAIM_TOPICS for p in t.payloads}
    every = {"claim_id": "H001:ZY1", "claim": {"claim_id": "H001:ZY1"}, "hospital_id": "H001",
             "hospital_claim_id": "ZY1"}
    assert {t for t in EVENT_TYPES if claim_id_in(t, every)} == claim_types | {"AuditAlert"}


# ----------------------------------------------------------------- corrections and reversals


def corrected(d: DischargeRecorded, **changes: object) -> DischargeCorrected:
    return DischargeCorrected(**{**d.model_dump(), **changes}, correction_reason="wrong discharge date")


def reversal(d: DischargeRecorded) -> ReversalRequested:
    return ReversalRequested(hospital_claim_id=d.hospital_claim_id, hospital_id=d.hospital_id, person_id=d.person_id,
                             reason="wrong patient")


def test_a_correction_moves_the_stay_and_a_reversal_marks_it_as_settlement_accepts_them() -> None:
    d = discharge("ZY1", admission=date(2026, 3, 1), out=date(2026, 3, 5))
    by_hospital = "hospital:H001"
    new, change = rules.apply_request(None, d, by_hospital)  # type: ignore[misc]
    assert (new, change) == (Stay("H001:ZY1", PID, "H001", date(2026, 3, 1), date(2026, 3, 5)), "new")
    fix = corrected(d, discharge_date=date(2026, 3, 8), lines=(line(day=date(2026, 3, 7)),))
    moved, change = rules.apply_request(new, fix, by_hospital)  # type: ignore[misc]
    assert change == "correction" and (moved.admission, moved.discharge, moved.hospital_id) == (
        date(2026, 3, 1), date(2026, 3, 8), "H001")
    gone, change = rules.apply_request(moved, reversal(d), by_hospital)  # type: ignore[misc]
    assert change == "reversal" and gone.reversed and gone.discharge == date(2026, 3, 8)
    back, change = rules.apply_request(gone, d, by_hospital)  # type: ignore[misc]
    assert change == "reinstatement" and not back.reversed and back.discharge == date(2026, 3, 5)


def test_requests_settlement_refuses_change_no_stay() -> None:
    d = discharge("ZY1", admission=date(2026, 3, 1), out=date(2026, 3, 5))
    known = Stay.of(d)
    gone = replace(known, reversed=True)
    fix = corrected(d, discharge_date=date(2026, 3, 8), lines=(line(day=date(2026, 3, 7)),))
    ok = "hospital:H001"
    assert rules.apply_request(None, fix, ok) is None  # UNKNOWN_CLAIM
    assert rules.apply_request(None, reversal(d), ok) is None  # UNKNOWN_CLAIM
    assert rules.apply_request(gone, fix, ok) is None  # ALREADY_REVERSED
    assert rules.apply_request(gone, reversal(d), ok) is None  # ALREADY_REVERSED
    for producer in ("hospital:H002", "operator", "hospital:H0011"):  # WRONG_HOSPITAL
        assert rules.apply_request(known, fix, producer) is None
        assert rules.apply_request(known, reversal(d), producer) is None
        assert rules.apply_request(gone, d, producer) is None
    other = "110105194912310021"
    assert rules.apply_request(known, corrected(d, person_id=other), ok) is None  # PERSON_CHANGED
    assert rules.apply_request(known, reversal(d.model_copy(update={"person_id": other})), ok) is None
    next_year = corrected(d, admission_date=date(2026, 12, 30), discharge_date=date(2027, 1, 2),
                          lines=(line(day=date(2026, 12, 31)),))
    assert rules.apply_request(known, next_year, ok) is None  # YEAR_CHANGED
    assert rules.apply_request(known, d, ok) is None  # the same discharge again: a duplicate
    assert rules.apply_request(known, discharge("ZY1", out=date(2026, 3, 6)), ok) is None  # CONTENT_MISMATCH
    # the same year, the same person, the filing hospital: accepted (the control of the refusals above)
    assert rules.apply_request(known, fix, ok) is not None and rules.apply_request(known, reversal(d), ok) is not None


def test_a_corrected_bill_is_judged_again() -> None:
    d = discharge("ZY1")
    fix = corrected(d, lines=(line("EXM-8", price="280.00"), line("EXM-8", price="280.00")), total_amount="560.00")
    assert rules.duplicate_lines(d, POLICY) is None
    [f] = [f for f in rules.bill_findings(fix, POLICY) if f.rule == "duplicate_lines"]
    assert f.alert_id == "duplicate_lines:H001:ZY1"  # the claim's id: raised once whatever the revision


BEIJING = timezone(timedelta(hours=8))


def reversed_at(claim: str, at: datetime, *, hospital: str = "H001", discharged: date = date(2026, 3, 1)) -> Reversal:
    return Reversal(claim, hospital, PID, at, discharged, uuid.uuid4())


def test_a_reversal_long_after_the_discharge() -> None:
    assert POLICY.late_reversal_days == 30
    late = reversed_at("H001:A", datetime(2026, 4, 1, 9, 0, tzinfo=BEIJING))  # 31 days after 2026-03-01
    f = rules.late_reversal(late, POLICY)
    assert f is not None and (f.rule, f.alert_id, f.severity) == ("late_reversal", "late_reversal:H001:A", "medium")
    assert f.evidence == {"reversed_on": "2026-04-01", "discharge_date": "2026-03-01", "days_after_discharge": "31",
                          "late_after_days": "30"}
    assert f.source == "F003 L143, F004 L41" and f.hospital_id == "H001" and f.person_id == PID
    # the day is Beijing's: 2026-03-31 16:30 UTC is already 1 April in the hospital
    assert rules.late_reversal(reversed_at("H001:A", datetime(2026, 3, 31, 16, 30, tzinfo=UTC)), POLICY) is not None


def test_a_reversal_within_the_window_is_not_late() -> None:
    assert rules.late_reversal(reversed_at("H001:A", datetime(2026, 3, 31, 23, 59, tzinfo=BEIJING)), POLICY) is None
    assert rules.late_reversal(reversed_at("H001:A", datetime(2026, 3, 31, 15, 59, tzinfo=UTC)), POLICY) is None
    assert rules.late_reversal(reversed_at("H001:A", datetime(2026, 3, 1, 10, 0, tzinfo=BEIJING)), POLICY) is None


def test_many_reversals_by_one_hospital_in_one_day() -> None:
    assert POLICY.reversals_per_hospital_day == 5
    day = date(2026, 3, 5)
    five = [reversed_at(f"H001:R{i}", datetime(2026, 3, 5, 8 + i, tzinfo=BEIJING)) for i in range(4)]
    five.append(reversed_at("H001:R9", datetime(2026, 3, 4, 16, 30, tzinfo=UTC)))  # 00:30 on 5 March in Beijing
    f = rules.reversal_burst("H001", day, five, POLICY)
    assert f is not None and f.alert_id == "reversal_burst:H001:2026-03-05" and f.claim_id is None
    assert f.hospital_id == "H001" and f.source == "F004 L279, F003 L143"
    assert f.evidence == {"day": "2026-03-05", "reversals": "5", "threshold": "5",
                          "claims": "H001:R0,H001:R1,H001:R2,H001:R3,H001:R9"}
    assert rules.reversal_burst("H001", day, list(reversed(five)), POLICY) == f  # whatever the order
    many = [reversed_at(f"H001:M{i:02d}", datetime(2026, 3, 5, 12, tzinfo=BEIJING)) for i in range(12)]
    assert rules.reversal_burst("H001", day, many, POLICY).evidence["claims"].endswith(" (+2 more)")  # type: ignore[union-attr]


def test_fewer_reversals_or_other_hospitals_and_days_are_no_burst() -> None:
    day = date(2026, 3, 5)
    four = [reversed_at(f"H001:R{i}", datetime(2026, 3, 5, 8 + i, tzinfo=BEIJING)) for i in range(4)]
    assert rules.reversal_burst("H001", day, four, POLICY) is None
    elsewhere = reversed_at("H002:X", datetime(2026, 3, 5, 9, tzinfo=BEIJING), hospital="H002")
    next_day = reversed_at("H001:Y", datetime(2026, 3, 5, 16, 30, tzinfo=UTC))  # 6 March in Beijing
    assert rules.reversal_burst("H001", day, [*four, elsewhere, next_day], POLICY) is None
    assert rules.reversal_burst("H001", day, [*four, reversed_at("H001:Z", datetime(2026, 3, 5, 23, tzinfo=BEIJING))],
                                POLICY) is not None


# ----------------------------------------------------------------- reconciliation checks


def figures(**amounts: str) -> rec.StatementFigures:
    base = {"total_cost": "100.00", "hifp_pay": "40.00", "hifmi_pay": "10.00", "maf_pay": "5.00",
            "fund_pay_sumamt": "55.00", "psn_pay": "45.00", "insurance_year": 2026, "outcome": "settled"}
    return rec.StatementFigures.of("H001:A", {**base, **amounts})


def test_statement_parts_that_do_not_add_up_are_flagged() -> None:
    assert rec.parts_finding(figures()) is None
    f = rec.parts_finding(figures(fund_pay_sumamt="56.00"))
    assert f is not None and f.rule == "statement_parts_mismatch" and f.evidence["funds"] == "55.00"
    assert rec.parts_finding(figures(psn_pay="44.00")) is not None
    assert rec.parts_finding(figures(maf_pay=None)).evidence == {"unreadable": "maf_pay"}  # type: ignore[union-attr]


def test_statement_against_layer_results_and_the_discharge() -> None:
    s = figures(details=[{"layer": "assistance", "paid": "5.00"}])  # type: ignore[arg-type]
    assert rec.layer_result_findings(s, {"basic": Decimal("40.00"), "catastrophic": Decimal("10.00")}) == []
    [f] = rec.layer_result_findings(s, {"basic": Decimal("41.00")})
    assert f.alert_id == "layer_result_mismatch:basic:H001:A"
    [m] = rec.layer_result_findings(s, {"catastrophic": None})
    assert m.evidence == {"layer": "catastrophic", "statement": "10.00", "layer_result": "missing"}
    assert s.assistance_detail == Decimal("5.00")
    [g] = rec.layer_result_findings(figures(details=[{"layer": "assistance", "paid": "4.00"}]),  # type: ignore[arg-type]
                                    {"assistance": Decimal("4.00")})
    assert g.evidence == {"layer": "assistance", "statement": "5.00", "layer_result": "4.00"}
    assert rec.discharge_finding(s, Decimal("100.00")) is None and rec.discharge_finding(s, None) is None
    d = rec.discharge_finding(s, Decimal("100.01"))
    assert d is not None and d.rule == "statement_discharge_mismatch"


@pytest.mark.parametrize(("statements", "results", "raised"), [("10.00", "10.00", False), ("10.00", "9.99", True)])
def test_layer_totals(statements: str, results: str, raised: bool) -> None:
    f = rec.total_finding("basic", 2026, Decimal(statements), Decimal(results))
    assert (f is not None) is raised
    if f:
        assert f.alert_id == "layer_total_mismatch:basic:2026:10.00:9.99" and f.claim_id is None


# ----------------------------------------------------------------- reconciliation on net amounts


def stated(event_type: str, revision: int, event_id: str, assistance: str | None, **amounts: str
           ) -> rec.StatementFigures:
    """A statement of claim H001:A (amounts: total, hifp, hifmi, maf; funds and patient follow)."""
    a = {k: Decimal(v) for k, v in amounts.items()}
    funds = a["hifp_pay"] + a["hifmi_pay"] + a["maf_pay"]
    payload: dict[str, object] = {
        "hospital_id": "H001", "person_id": PID, "insurance_year": 2026, "outcome": "settled", "revision": revision,
        **{k: str(v) for k, v in a.items()}, "fund_pay_sumamt": str(funds), "psn_pay": str(a["total_cost"] - funds)}
    if assistance is not None:
        payload["details"] = [{"layer": "assistance", "paid": assistance}]
    return rec.StatementFigures.of("H001:A", payload, event_type, event_id)


FIRST = stated("SettlementStatement", 1, "e1", "5.00", total_cost="100.00", hifp_pay="40.00", hifmi_pay="10.00",
               maf_pay="5.00")
ADJUSTED = stated("SettlementAdjusted", 2, "e2", "7.00", total_cost="-10.00", hifp_pay="-10.00", hifmi_pay="0.00",
                  maf_pay="2.00")  # after a correction: basic pays 30, critical illness 10, assistance 7
REVERSED = stated("SettlementReversed", 3, "e3", None, total_cost="-90.00", hifp_pay="-30.00", hifmi_pay="-10.00",
                  maf_pay="-7.00")


def layer(revision: int, paid: str | None, *, reversed_: bool = False) -> rec.LayerFigure:
    return rec.LayerFigure(revision, reversed_, Decimal(paid) if paid is not None else Decimal("0.00"))


def claim(statements: list[rec.StatementFigures], basic: list[rec.LayerFigure], catastrophic: list[rec.LayerFigure],
          requests: list[tuple[str, str, Decimal | None]] | None = None, refused: set[str] | None = None
          ) -> rec.ClaimEvents:
    return rec.ClaimEvents("H001:A", statements=statements, results={"basic": basic, "catastrophic": catastrophic},
                           refused=refused or set(), requests=requests if requests is not None else [
                               ("DischargeRecorded", "d1", Decimal("100.00")),
                               ("DischargeCorrected", "d2", Decimal("90.00"))])


def findings_of(check: rec.ClaimCheck) -> list[str]:
    return sorted(f.alert_id for f in check.immediate + check.settled)


def test_a_correct_adjustment_sequence_nets_to_the_layers_current_revision() -> None:
    check = rec.check_claim(claim([FIRST, ADJUSTED], [layer(1, "40.00"), layer(2, "30.00")],
                                  [layer(1, "10.00"), layer(2, "10.00")]))
    assert findings_of(check) == []
    assert check.figures is not None and dict(check.figures.stated) == dict(check.figures.results) == {
        "basic": Decimal("30.00"), "catastrophic": Decimal("10.00"), "assistance": Decimal("7.00")}
    # the same statement re-sent (same event id) is not a second statement
    assert findings_of(rec.check_claim(claim([FIRST, FIRST, ADJUSTED], [layer(2, "30.00")], [layer(2, "10.00")]))) == []


def test_an_adjustment_that_disagrees_with_the_layers_latest_revision_is_flagged() -> None:
    # basic's revision 2 pays 31.00: the adjustment's -10.00 leaves the statements at 30.00
    check = rec.check_claim(claim([FIRST, ADJUSTED], [layer(2, "31.00"), layer(1, "40.00")],
                                  [layer(1, "10.00"), layer(2, "10.00")]))
    assert check.immediate == [] and [f.alert_id for f in check.settled] == ["layer_result_mismatch:basic:H001:A:r2"]
    assert check.settled[0].evidence == {"layer": "basic", "statement": "30.00", "layer_result": "31.00"}
    # the adjustment never came: the statements still say revision 1, and the bill before its correction
    stale = rec.check_claim(claim([FIRST], [layer(1, "40.00"), layer(2, "30.00")], [layer(2, "10.00")]))
    assert sorted(f.alert_id for f in stale.settled) == ["layer_result_mismatch:basic:H001:A",
                                                         "statement_discharge_mismatch:H001:A"]
    # an assistance row that disagrees with the adjustments' sum
    off = stated("SettlementAdjusted", 2, "e2", "8.00", total_cost="-10.00", hifp_pay="-10.00", hifmi_pay="0.00",
                 maf_pay="2.00")
    check = rec.check_claim(claim([FIRST, off], [layer(2, "30.00")], [layer(2, "10.00")]))
    assert [f.alert_id for f in check.settled] == ["layer_result_mismatch:assistance:H001:A:r2"]


def test_a_reversed_claim_nets_to_zero() -> None:
    check = rec.check_claim(claim([FIRST, ADJUSTED, REVERSED], [layer(3, None, reversed_=True)],
                                  [layer(3, None, reversed_=True)]))
    assert findings_of(check) == [] and check.figures is not None
    assert set(check.figures.stated.values()) == set(check.figures.results.values()) == {Decimal("0")}


def test_a_reversed_claim_whose_statements_do_not_net_to_zero_is_flagged() -> None:
    short = stated("SettlementReversed", 3, "e3", None, total_cost="-89.00", hifp_pay="-30.00", hifmi_pay="-10.00",
                   maf_pay="-7.00")  # the patient's part is one yuan short
    check = rec.check_claim(claim([FIRST, ADJUSTED, short], [layer(3, None, reversed_=True)],
                                  [layer(3, None, reversed_=True)]))
    [f] = check.settled
    assert f.alert_id == "reversed_claim_not_zero:H001:A:r3" and f.rule == "reversed_claim_not_zero"
    assert f.evidence == {"total_cost": "1.00", "psn_pay": "1.00"}
    # the layers reversed the claim but no reversal statement came: it must net to zero all the same
    pending = rec.check_claim(claim([FIRST, ADJUSTED], [layer(3, None, reversed_=True)],
                                    [layer(3, None, reversed_=True)]))
    assert "reversed_claim_not_zero:H001:A:r2" in findings_of(pending)
    assert "layer_result_mismatch:basic:H001:A:r2" in findings_of(pending)


def test_a_duplicate_is_two_statements_of_one_revision_not_an_adjustment_or_a_reversal() -> None:
    kept, duplicates = rec.one_per_revision([FIRST, ADJUSTED, REVERSED])
    assert kept == [FIRST, ADJUSTED, REVERSED] and duplicates == []
    again = replace(ADJUSTED, event_id="e2-bis")
    kept, duplicates = rec.one_per_revision([FIRST, ADJUSTED, again, REVERSED])
    assert kept == [FIRST, ADJUSTED, REVERSED]  # the first of the revision counts in the net
    [d] = duplicates
    assert d.alert_id == "duplicate_statement:H001:A:r2" and d.evidence["event_ids"] == "e2,e2-bis"
    [d1] = rec.one_per_revision([FIRST, replace(FIRST, event_id="e1-bis")])[1]
    assert d1.alert_id == "duplicate_statement:H001:A"  # revision 1 keeps the id it always had
    check = rec.check_claim(claim([FIRST, ADJUSTED, again], [layer(2, "30.00")], [layer(2, "10.00")]))
    assert [f.alert_id for f in check.immediate] == ["duplicate_statement:H001:A:r2"] and check.settled == []


def test_the_net_total_against_the_bill_settlement_prices_now() -> None:
    d = Decimal
    recorded, corrected_, refused = ("DischargeRecorded", "d1", d("100.00")), ("DischargeCorrected", "d2", d("90.00")), \
        ("DischargeCorrected", "d3", d("80.00"))
    assert rec.current_bill_total([recorded, corrected_], set()) == d("90.00")
    assert rec.current_bill_total([recorded, corrected_, refused], {"d3"}) == d("90.00")
    assert rec.current_bill_total([recorded, ("DischargeRecorded", "d4", d("70.00"))], set()) == d("100.00")
    assert rec.current_bill_total([recorded, ("ReversalRequested", "r1", None), ("DischargeCorrected", "d5", d("1")),
                                   ("DischargeRecorded", "d6", d("70.00"))], set()) == d("70.00")  # reinstated
    assert rec.current_bill_total([("DischargeCorrected", "d2", d("90.00"))], set()) is None  # never filed
    check = rec.check_claim(claim([FIRST, ADJUSTED], [layer(2, "30.00")], [layer(2, "10.00")],
                                  requests=[recorded, corrected_, refused], refused={"d3"}))
    assert check.settled == []
    check = rec.check_claim(claim([FIRST, ADJUSTED], [layer(2, "30.00")], [layer(2, "10.00")], requests=[recorded]))
    [f] = check.settled
    assert f.alert_id == "statement_discharge_mismatch:H001:A:r2"
    assert f.evidence == {"statement_total_cost": "90.00", "discharge_total_amount": "100.00"}
