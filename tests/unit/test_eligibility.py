"""Eligibility as of a date, rule by rule of demo-county.md (Eligibility), with hand-computed dates."""

from datetime import date

import pytest

from contracts import (
    ChangeCategories,
    EnrollPerson,
    PersonSnapshot,
    RecordDeath,
    ResumePerson,
    SuspendPerson,
)
from policy.eligibility import Eligible, Ineligible, eligibility
from services.enrollment.domain import Accepted, EnrollmentRules, apply

PID = "11010519491231002X"
TODAY = date(2026, 11, 22)


def run(*commands) -> PersonSnapshot:
    state = None
    for i, command in enumerate(commands):
        outcome = apply(state, command, EnrollmentRules(), f"e{i}", today=TODAY)
        assert isinstance(outcome, Accepted), outcome
        state = outcome.snapshot
    assert state is not None
    return state


def enroll(paid: date, previous: date | None = date(2025, 12, 31), year: int = 2026, **over) -> EnrollPerson:
    return EnrollPerson(person_id=PID, name="马芳", scheme="resident", categories=over.pop("categories", ("ordinary",)),
                        payment_date=paid, coverage_year=year, previous_coverage_end=previous, **over)


def code(result: Eligible | Ineligible) -> str:
    return "ELIGIBLE" if isinstance(result, Eligible) else result.reason_code


def test_no_snapshot_is_not_enrolled() -> None:
    assert code(eligibility(None, date(2026, 5, 1))) == "NOT_ENROLLED"


def test_paid_before_the_year_benefits_start_on_1_january() -> None:
    person = run(enroll(date(2025, 10, 15)))
    assert code(eligibility(person, date(2026, 1, 1))) == "ELIGIBLE"
    assert code(eligibility(person, date(2026, 12, 31))) == "ELIGIBLE"
    # no coverage paid for 2025 or 2027
    assert code(eligibility(person, date(2025, 12, 31))) == "NOT_ENROLLED"
    assert code(eligibility(person, date(2027, 1, 1))) == "NOT_ENROLLED"


def test_benefits_start_the_month_after_payment() -> None:
    person = run(enroll(date(2026, 3, 15)))  # continuous coverage: no waiting period
    result = eligibility(person, date(2026, 3, 31))
    assert isinstance(result, Ineligible) and result.reason_code == "NOT_ENROLLED"
    assert "2026-04-01" in result.reason
    assert code(eligibility(person, date(2026, 4, 1))) == "ELIGIBLE"


def test_waiting_period_without_previous_coverage() -> None:
    person = run(enroll(date(2026, 3, 15), previous=None))  # 6 months after 2026-03-15
    assert code(eligibility(person, date(2026, 4, 1))) == "WAITING_PERIOD"
    assert code(eligibility(person, date(2026, 9, 14))) == "WAITING_PERIOD"
    assert code(eligibility(person, date(2026, 9, 15))) == "ELIGIBLE"


def test_waiting_period_after_a_gap_of_six_months() -> None:
    # last covered 2025-05-31, uncovered from 2025-06-01; 6 months → 2025-12-01 <= payment 2026-01-20
    person = run(enroll(date(2026, 1, 20), previous=date(2025, 5, 31)))
    assert code(eligibility(person, date(2026, 2, 1))) == "WAITING_PERIOD"
    assert code(eligibility(person, date(2026, 7, 19))) == "WAITING_PERIOD"
    assert code(eligibility(person, date(2026, 7, 20))) == "ELIGIBLE"


def test_no_waiting_period_for_continuous_coverage() -> None:
    person = run(enroll(date(2026, 2, 10), previous=date(2025, 12, 31)))  # gap of 41 days
    assert code(eligibility(person, date(2026, 2, 28))) == "NOT_ENROLLED"
    assert code(eligibility(person, date(2026, 3, 1))) == "ELIGIBLE"


def test_no_waiting_period_when_paying_before_the_year_starts() -> None:
    person = run(enroll(date(2025, 12, 20), previous=None))
    assert code(eligibility(person, date(2026, 1, 1))) == "ELIGIBLE"


def test_suspension_and_resume() -> None:
    person = run(enroll(date(2025, 10, 15)),
                 SuspendPerson(person_id=PID, effective_date=date(2026, 5, 1), reason="arrears"))
    assert code(eligibility(person, date(2026, 4, 30))) == "ELIGIBLE"
    assert code(eligibility(person, date(2026, 5, 1))) == "SUSPENDED"
    assert code(eligibility(person, date(2026, 12, 31))) == "SUSPENDED"
    resumed = run(enroll(date(2025, 10, 15)),
                  SuspendPerson(person_id=PID, effective_date=date(2026, 5, 1), reason="arrears"),
                  ResumePerson(person_id=PID, effective_date=date(2026, 6, 1)))
    assert code(eligibility(resumed, date(2026, 5, 31))) == "SUSPENDED"
    assert code(eligibility(resumed, date(2026, 6, 1))) == "ELIGIBLE"


def test_death() -> None:
    person = run(enroll(date(2025, 10, 15)), RecordDeath(person_id=PID, date_of_death=date(2026, 8, 10)))
    assert code(eligibility(person, date(2026, 8, 9))) == "ELIGIBLE"
    assert code(eligibility(person, date(2026, 8, 10))) == "DECEASED"
    # death is reported even for a year that was never paid (a 冒领 signal)
    assert code(eligibility(person, date(2027, 3, 1))) == "DECEASED"


def test_categories_as_of_the_date() -> None:
    person = run(enroll(date(2025, 10, 15)),
                 ChangeCategories(person_id=PID, categories=("disabled", "poverty_registered"), disability_grade=2,
                                  effective_date=date(2026, 5, 1)))
    assert eligibility(person, date(2026, 4, 30)) == Eligible(("ordinary",), None)
    assert eligibility(person, date(2026, 5, 1)) == Eligible(("disabled", "poverty_registered"), 2)


@pytest.mark.parametrize(("as_of", "expected"), [
    (date(2026, 6, 30), "WAITING_PERIOD"),  # suspension not yet, waiting until 2026-09-15
    (date(2026, 10, 1), "SUSPENDED"),
    (date(2026, 11, 5), "DECEASED"),
])
def test_order_of_checks(as_of: date, expected: str) -> None:
    person = run(enroll(date(2026, 3, 15), previous=None),
                 SuspendPerson(person_id=PID, effective_date=date(2026, 10, 1), reason="x"),
                 RecordDeath(person_id=PID, date_of_death=date(2026, 11, 5)))
    assert code(eligibility(person, as_of)) == expected
