"""Fund-supervision rules (基金监管): each one triggered, and a near miss that must not trigger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contracts import BillLine, DischargeRecorded, PersonSnapshot
from contracts.enrollment import CategoryPeriod, CoveragePeriod, Suspension
from policy import load_profile
from services.audit import reconciliation as rec
from services.audit import rules
from services.audit.rules import DischargeContext, Stay

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
    same_hospital = stay("H001:C", "H001", date(2026, 3, 2), date(2026, 3, 4))
    assert rules.overlapping_stays(transfer, [a], POLICY) == []
    assert rules.overlapping_stays(same_hospital, [a], POLICY) == []


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
