"""Pure helpers of the operator KPIs (经办指标)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from contracts import PersonSnapshot
from contracts.enrollment import CategoryPeriod, CoveragePeriod
from contracts.identity import make_identity_number
from services.audit import kpis


def snapshot(pid: str, *, year: int = 2026, paid: date = date(2025, 11, 1), death: date | None = None,
             history: tuple[CategoryPeriod, ...] | None = None) -> PersonSnapshot:
    history = history or (CategoryPeriod(effective_from=date(year, 1, 1), categories=("ordinary",)),)
    return PersonSnapshot(person_id=pid, version=1, scheme="resident", status="deceased" if death else "active",
                          categories=history[-1].categories, category_history=history,
                          coverage=(CoveragePeriod(coverage_year=year, payment_date=paid,
                                                   benefits_from=date(year, 1, 1), waiting_period=False),),
                          date_of_death=death)


def test_ratios_and_averages_are_exact_decimals() -> None:
    assert kpis.ratio(Decimal("1402.00"), Decimal("2827.00")) == Decimal("0.4959")
    assert kpis.ratio(Decimal("1"), Decimal("0")) is None
    assert kpis.per_unit(Decimal("10.00"), 3) == Decimal("3.33")
    assert kpis.per_unit(Decimal("10.00"), 0) is None


def test_the_part_of_an_accumulation_above_the_threshold() -> None:
    # worked example 2 of demo-county.md: 5,760 → 8,160 over a 6,000 threshold: 2,160 above it
    assert kpis.above_threshold(Decimal("6000"), Decimal("5760"), Decimal("8160")) == Decimal("2160")
    assert kpis.above_threshold(Decimal("6000"), Decimal("0"), Decimal("5760")) == 0
    assert kpis.above_threshold(Decimal("3000"), Decimal("4000"), Decimal("5000")) == Decimal("1000")


def test_insured_persons_by_category_as_of_the_period_end() -> None:
    became_dibao = (CategoryPeriod(effective_from=date(2026, 1, 1), categories=("ordinary",)),
                    CategoryPeriod(effective_from=date(2026, 6, 1), categories=("dibao", "disabled"),
                                   disability_grade=1))
    a, b, c, d, e = (make_identity_number("500242", date(1960, 1, 1), seq) for seq in range(1, 6))
    persons = [snapshot(a), snapshot(b, history=became_dibao), snapshot(c, death=date(2025, 12, 1)),
               snapshot(d, year=2025, paid=date(2024, 11, 1)), snapshot(e, paid=date(2026, 7, 1))]
    assert kpis.insured_by_category(persons, date(2026, 1, 1), date(2026, 3, 31)) == (2, {"ordinary": 2})
    total, by_category = kpis.insured_by_category(persons, date(2026, 1, 1), date(2026, 12, 31))
    assert total == 3 and by_category == {"dibao": 1, "disabled": 1, "ordinary": 2}


def test_reversals_and_adjustments_are_reported_by_kind_with_their_net_money() -> None:
    from datetime import date as day

    moves = (kpis.Movement("adjustment:correction", 3, 2, Decimal("-120.50"), Decimal("20.00")),
             kpis.Movement("adjustment:reversal", 2, 2, Decimal("15.00"), Decimal("-15.00")),
             kpis.Movement("reversal", 4, 4, Decimal("-900.00"), Decimal("-300.00")))
    k = kpis.Kpis(query=kpis.KpiQuery(day(2026, 1, 1), day(2026, 12, 31)), insured_total=0, insured_by_category={},
                  settlements=0, settled=0, rejected=0, inpatients=0, total_cost=Decimal(0), in_policy=Decimal(0),
                  basic_paid=Decimal(0), catastrophic_paid=Decimal(0), assistance_paid=Decimal(0),
                  funds_paid=Decimal(0), patient_paid=Decimal(0), actual_compensation_ratio=None,
                  in_policy_ratio_by_level=(), in_policy_ratio_level2_and_below=None, cost_per_stay=None,
                  compensation_per_inpatient=None, catastrophic_beneficiaries=0, catastrophic_above_threshold=Decimal(0),
                  catastrophic_payment_ratio=None, movements=moves)
    all_adjustments = k.movement("adjustment")
    assert (all_adjustments.statements, all_adjustments.claims, all_adjustments.funds, all_adjustments.patients) == (
        5, 4, Decimal("-105.50"), Decimal("5.00"))
    assert k.movement("reversal") == kpis.Movement("reversal", 4, 4, Decimal("-900.00"), Decimal("-300.00"))
    assert k.movement("adjustment:correction").funds == Decimal("-120.50")
    assert k.movement("adjustment:reinstatement") == kpis.Movement("adjustment:reinstatement", 0, 0, Decimal(0),
                                                                   Decimal(0))
