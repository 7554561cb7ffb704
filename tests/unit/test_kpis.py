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
