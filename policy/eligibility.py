"""Eligibility (待遇享受资格) of a person as of a date, from the registry snapshot alone.

Settlement calls `eligibility(snapshot, admission_date)` (eligibility is judged as of the
admission date, demo-county.md "Registries"). The checks, in this order, each with its reason code:

1. `NOT_ENROLLED`: no snapshot, or no coverage period (参保缴费) for the year of `as_of`.
2. `DECEASED`: `as_of` is on or after the date of death (F003 L121).
3. `SUSPENDED`: `as_of` is inside a suspension (停保), `start <= as_of < end` (F003 L113–L119).
4. `WAITING_PERIOD`: the year is paid but `as_of` is before `benefits_from` because of the waiting
   period (等待期, F002 L141).
5. `NOT_ENROLLED` too when benefits have simply not started yet (当月缴费,次月享受: the 1st of the
   month after payment, F002 L141, F003 L113); the reason says on which day they start.

Death is checked before coverage on purpose: a claim for a dead person is a fraud signal (冒领,
F003 L95) and must say so even when the year was never paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from contracts.enrollment import CategoryPeriod, PersonSnapshot
from contracts.types import PersonCategory

IneligibleCode = Literal["NOT_ENROLLED", "WAITING_PERIOD", "SUSPENDED", "DECEASED"]


@dataclass(frozen=True)
class Eligible:
    """Entitled to benefits on that day, with the categories held on that day."""

    categories: tuple[PersonCategory, ...]
    disability_grade: int | None = None


@dataclass(frozen=True)
class Ineligible:
    """No benefits on that day; `reason_code` is the settlement rejection code."""

    reason_code: IneligibleCode
    reason: str


def categories_as_of(snapshot: PersonSnapshot, as_of: date) -> CategoryPeriod:
    """The category period in force on `as_of` (the first one if `as_of` precedes the history)."""
    current = snapshot.category_history[0]
    for period in snapshot.category_history:
        if period.effective_from <= as_of:
            current = period
    return current


def eligibility(snapshot: PersonSnapshot | None, as_of: date) -> Eligible | Ineligible:
    """Is the person entitled to benefits on `as_of`? See the module docstring for the order of checks."""
    if snapshot is None:
        return Ineligible("NOT_ENROLLED", "the person is not in the registry")
    if snapshot.date_of_death is not None and as_of >= snapshot.date_of_death:
        return Ineligible("DECEASED", f"the person died on {snapshot.date_of_death.isoformat()}")
    period = next((p for p in snapshot.coverage if p.coverage_year == as_of.year), None)
    if period is None:
        return Ineligible("NOT_ENROLLED", f"no coverage paid for {as_of.year}")
    for suspension in snapshot.suspensions:
        if suspension.start <= as_of and (suspension.end is None or as_of < suspension.end):
            until = f" until {suspension.end.isoformat()}" if suspension.end else ""
            return Ineligible("SUSPENDED", f"benefits suspended from {suspension.start.isoformat()}{until}")
    if as_of < period.benefits_from:
        if period.waiting_period:
            return Ineligible("WAITING_PERIOD", f"waiting period: payment on {period.payment_date.isoformat()}, "
                              f"benefits start on {period.benefits_from.isoformat()}")
        return Ineligible("NOT_ENROLLED", f"benefits of {period.coverage_year} start on "
                          f"{period.benefits_from.isoformat()} (payment on {period.payment_date.isoformat()})")
    held = categories_as_of(snapshot, as_of)
    return Eligible(held.categories, held.disability_grade)
