"""The enrollment registry's decisions: coverage periods, temporal history, rejections, redelivery.

Expected dates are computed by hand from demo-county.md (Eligibility): benefits start on the 1st of
the month after payment, not before 1 Jan of the coverage year; a person with no earlier coverage,
or a gap of 6 months or more, who pays after 1 Jan is covered only from 6 months after payment.
"""

from datetime import date

import pytest
from pydantic import ValidationError

from contracts import (
    ChangeCategories,
    EnrollPerson,
    PersonSnapshot,
    RecordDeath,
    RegisterProvider,
    ResumePerson,
    SuspendPerson,
)
from contracts.identity import make_identity_number
from services.enrollment.domain import (
    Accepted,
    EnrollmentRules,
    Registry,
    Rejected,
    add_months,
    apply,
    apply_provider,
)

PID = "11010519491231002X"
RULES = EnrollmentRules()
TODAY = date(2026, 11, 22)


def enroll(paid: date, year: int = 2026, previous: date | None = date(2025, 12, 31), **over) -> EnrollPerson:
    fields = {"person_id": PID, "name": "谭明", "scheme": "resident", "categories": ("ordinary",),
              "payment_date": paid, "coverage_year": year, "previous_coverage_end": previous, **over}
    return EnrollPerson(**fields)


def accept(state: PersonSnapshot | None, command, event_id: str = "e") -> PersonSnapshot:
    outcome = apply(state, command, RULES, event_id, today=TODAY)
    assert isinstance(outcome, Accepted), outcome
    return outcome.snapshot


def reject(state: PersonSnapshot | None, command, event_id: str = "bad"):
    outcome = apply(state, command, RULES, event_id, today=TODAY)
    assert isinstance(outcome, Rejected), outcome
    assert outcome.snapshot is None and outcome.rejection is outcome.payload
    return outcome.payload


def enrolled(paid: date = date(2025, 10, 15)) -> PersonSnapshot:
    return accept(None, enroll(paid))


# ------------------------------------------------------------ coverage periods


@pytest.mark.parametrize(("paid", "previous", "benefits_from", "waiting"), [
    # paid before the year: the month after payment is Nov, but not before 1 Jan 2026
    (date(2025, 10, 15), date(2025, 12, 31), date(2026, 1, 1), False),
    # new enrollee paying before the year: no waiting period (the year has not begun)
    (date(2025, 11, 20), None, date(2026, 1, 1), False),
    # continuous coverage, paid in March: uncovered since 1 Jan, under 6 months → next month
    (date(2026, 3, 15), date(2025, 12, 31), date(2026, 4, 1), False),
    # no previous coverage, paid after 1 Jan: 6 months after payment
    (date(2026, 3, 15), None, date(2026, 9, 15), True),
    # paying on 1 Jan itself is not "after the year has begun"
    (date(2026, 1, 1), None, date(2026, 2, 1), False),
    # gap: last covered 2025-06-30, uncovered from 2025-07-01, 6 months → 2026-01-01 <= payment
    (date(2026, 2, 10), date(2025, 6, 30), date(2026, 8, 10), True),
    # gap of exactly 6 months (uncovered 1 Jan – 30 Jun) counts ("6 months or more")
    (date(2026, 7, 1), date(2025, 12, 31), date(2027, 1, 1), True),
    # one day short of 6 months: plain rule
    (date(2026, 6, 30), date(2025, 12, 31), date(2026, 7, 1), False),
    # 31 Aug + 6 months is clamped to the end of February
    (date(2026, 8, 31), None, date(2027, 2, 28), True),
])
def test_coverage_period_of_an_enrollment(paid: date, previous: date | None, benefits_from: date,
                                          waiting: bool) -> None:
    snapshot = accept(None, enroll(paid, previous=previous))
    (period,) = snapshot.coverage
    assert (period.coverage_year, period.payment_date) == (2026, paid)
    assert (period.benefits_from, period.waiting_period) == (benefits_from, waiting)


def test_the_registrys_own_last_year_counts_as_previous_coverage() -> None:
    first = accept(None, enroll(date(2024, 11, 1), year=2025, previous=None))
    second = accept(first, enroll(date(2026, 3, 10), previous=None))
    # covered to 2025-12-31 by the registry itself: under 6 months of gap → next month, no waiting
    assert second.coverage[-1].benefits_from == date(2026, 4, 1)
    assert not second.coverage[-1].waiting_period
    assert [p.coverage_year for p in second.coverage] == [2025, 2026]


def test_a_registry_coverage_two_years_ago_is_a_gap() -> None:
    first = accept(None, enroll(date(2023, 11, 1), year=2024, previous=None))
    second = accept(first, enroll(date(2026, 3, 10), previous=None))
    assert (second.coverage[-1].benefits_from, second.coverage[-1].waiting_period) == (date(2026, 9, 10), True)


def test_rules_are_parameters() -> None:
    same_month = EnrollmentRules(benefits_start="same_month", waiting_period_months=3)
    outcome = apply(None, enroll(date(2026, 3, 15), previous=date(2025, 12, 31)), same_month, "e", today=TODAY)
    assert isinstance(outcome, Accepted) and outcome.snapshot.coverage[0].benefits_from == date(2026, 3, 1)
    outcome = apply(None, enroll(date(2026, 3, 15), previous=None), same_month, "e", today=TODAY)
    assert isinstance(outcome, Accepted) and outcome.snapshot.coverage[0].benefits_from == date(2026, 6, 15)


def test_add_months() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 8, 31), 6) == date(2028, 2, 29)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


# ------------------------------------------------------------ history and versions


def test_versions_status_and_history() -> None:
    s1 = enrolled()
    assert (s1.version, s1.status, s1.scheme, s1.categories) == (1, "active", "resident", ("ordinary",))
    assert [(p.effective_from, p.categories) for p in s1.category_history] == [(date(2026, 1, 1), ("ordinary",))]
    s2 = accept(s1, ChangeCategories(person_id=PID, categories=("dibao",), effective_date=date(2026, 5, 1)))
    assert (s2.version, s2.categories) == (2, ("dibao",))
    s3 = accept(s2, SuspendPerson(person_id=PID, effective_date=date(2026, 6, 1), reason="moved away"))
    assert (s3.version, s3.status) == (3, "suspended")
    s4 = accept(s3, ResumePerson(person_id=PID, effective_date=date(2026, 7, 1)))
    assert (s4.version, s4.status) == (4, "active")
    assert [(s.start, s.end) for s in s4.suspensions] == [(date(2026, 6, 1), date(2026, 7, 1))]
    s5 = accept(s4, RecordDeath(person_id=PID, date_of_death=date(2026, 9, 3)))
    assert (s5.version, s5.status, s5.date_of_death) == (5, "deceased", date(2026, 9, 3))
    assert PersonSnapshot.model_validate_json(s5.model_dump_json()) == s5


def test_a_backdated_category_change_replaces_the_history_from_its_date() -> None:
    s = accept(enrolled(), ChangeCategories(person_id=PID, categories=("dibao",), effective_date=date(2026, 5, 1)))
    s = accept(s, ChangeCategories(person_id=PID, categories=("disabled",), disability_grade=2,
                                   effective_date=date(2026, 3, 1)))
    assert [(p.effective_from, p.categories, p.disability_grade) for p in s.category_history] == [
        (date(2026, 1, 1), ("ordinary",), None), (date(2026, 3, 1), ("disabled",), 2)]
    assert (s.categories, s.disability_grade) == (("disabled",), 2)


def test_re_enrolling_next_year_with_new_categories_starts_them_on_1_january() -> None:
    s = accept(enrolled(), enroll(date(2026, 10, 8), year=2027, categories=("dibao", "poverty_registered")))
    assert [(p.effective_from, p.categories) for p in s.category_history] == [
        (date(2026, 1, 1), ("ordinary",)), (date(2027, 1, 1), ("dibao", "poverty_registered"))]
    assert s.coverage[-1].benefits_from == date(2027, 1, 1)


# ------------------------------------------------------------ rejections, each with its field


@pytest.mark.parametrize(("command", "code", "field"), [
    (enroll(date(2025, 10, 15), person_id="110105194912310021"), "INVALID_ID_NUMBER", "person_id"),
    (enroll(date(2025, 10, 15), categories=("disabled",)), "INVALID_FIELD", "disability_grade"),
    (enroll(date(2025, 10, 15), categories=("dibao",), disability_grade=1), "INVALID_FIELD", "disability_grade"),
    (enroll(date(2025, 10, 15), categories=("ordinary", "dibao")), "INVALID_FIELD", "categories"),
    (enroll(date(2025, 10, 15), categories=("dibao", "dibao")), "INVALID_FIELD", "categories"),
    (enroll(date(2027, 1, 1)), "DATES_OUT_OF_ORDER", "payment_date"),
    (enroll(date(2024, 12, 31)), "DATES_OUT_OF_ORDER", "payment_date"),
    (enroll(date(2025, 10, 15), previous=date(2027, 1, 31)), "DATES_OUT_OF_ORDER", "previous_coverage_end"),
    (SuspendPerson(person_id=PID, effective_date=date(2026, 3, 1), reason="x"), "UNKNOWN_PERSON", "person_id"),
    (RegisterProvider(provider_id="H1", name="x", level=1, location="in_pool", pool_code="p", licensed_beds=1,
                      agreement_valid_from=date(2026, 1, 1)), "UNKNOWN_COMMAND", None),
])
def test_rejections_of_a_new_person(command, code: str, field: str | None) -> None:
    rejection = reject(None, command, "cmd-1")
    assert (rejection.reason_code, rejection.field) == (code, field)
    assert (rejection.command_event_id, rejection.command_type) == ("cmd-1", type(command).__name__)
    assert rejection.subject_id == getattr(command, "person_id", getattr(command, "provider_id", None))


def test_payment_before_the_birth_date_is_out_of_order() -> None:
    born = make_identity_number("110105", date(2025, 11, 1), 1)
    rejection = reject(None, enroll(date(2025, 10, 15), person_id=born))
    assert (rejection.reason_code, rejection.field) == ("DATES_OUT_OF_ORDER", "payment_date")


@pytest.mark.parametrize("paid, previous", [
    (date(2099, 12, 31), date(2099, 12, 31)),  # the 1st of the next month is 2100-01-01
    (date(2099, 8, 1), None),  # a waiting period until 2100-02-01
])
def test_benefits_starting_after_the_last_contract_date_are_refused(paid: date, previous: date | None) -> None:
    rejection = reject(None, enroll(paid, year=2099, previous=previous, person_id=PID))
    assert (rejection.reason_code, rejection.field) == ("DATES_OUT_OF_ORDER", "payment_date")
    assert "after the last date the platform handles (2099-12-31)" in rejection.reason


def test_the_last_payment_whose_benefits_start_in_range_is_accepted() -> None:
    accepted = apply(None, enroll(date(2099, 11, 30), year=2099, previous=date(2099, 12, 31)), RULES, "c")
    assert isinstance(accepted, Accepted)
    assert accepted.snapshot.coverage[-1].benefits_from == date(2099, 12, 1)


def test_a_future_birth_date_is_an_invalid_id() -> None:
    unborn = make_identity_number("110105", date(2026, 11, 30), 1)
    rejection = apply(None, enroll(date(2025, 10, 15), person_id=unborn), RULES, "e", today=TODAY).rejection
    assert rejection is not None and rejection.reason_code == "INVALID_ID_NUMBER"
    assert "birth date 2026-11-30 is in the future" in rejection.reason


@pytest.mark.parametrize(("command", "code", "field"), [
    (enroll(date(2025, 10, 15)), "ALREADY_ENROLLED", "coverage_year"),
    (enroll(date(2025, 11, 2)), "CONFLICT", "payment_date"),
    (SuspendPerson(person_id=PID, effective_date=date(2025, 10, 14), reason="x"),
     "DATES_OUT_OF_ORDER", "effective_date"),
    (ResumePerson(person_id=PID, effective_date=date(2026, 3, 1)), "NOT_SUSPENDED", "person_id"),
    (RecordDeath(person_id=PID, date_of_death=date(2025, 10, 1)), "DATES_OUT_OF_ORDER", "date_of_death"),
    (ChangeCategories(person_id=PID, categories=("dibao",), effective_date=date(2025, 9, 1)),
     "DATES_OUT_OF_ORDER", "effective_date"),
    (ChangeCategories(person_id=PID, categories=("disabled", "dibao"), effective_date=date(2026, 2, 1)),
     "INVALID_FIELD", "disability_grade"),
])
def test_rejections_of_an_enrolled_person(command, code: str, field: str) -> None:
    state = enrolled(date(2025, 10, 15))
    rejection = reject(state, command)
    assert (rejection.reason_code, rejection.field) == (code, field)


def test_suspension_rejections() -> None:
    suspended = accept(enrolled(), SuspendPerson(person_id=PID, effective_date=date(2026, 5, 1), reason="arrears"))
    again = reject(suspended, SuspendPerson(person_id=PID, effective_date=date(2026, 6, 1), reason="again"))
    assert (again.reason_code, again.field) == ("CONFLICT", "effective_date")
    early = reject(suspended, ResumePerson(person_id=PID, effective_date=date(2026, 4, 30)))
    assert (early.reason_code, early.field) == ("DATES_OUT_OF_ORDER", "effective_date")
    resumed = accept(suspended, ResumePerson(person_id=PID, effective_date=date(2026, 6, 1)))
    overlap = reject(resumed, SuspendPerson(person_id=PID, effective_date=date(2026, 5, 15), reason="x"))
    assert (overlap.reason_code, overlap.field) == ("DATES_OUT_OF_ORDER", "effective_date")


@pytest.mark.parametrize("command", [
    enroll(date(2026, 10, 1), year=2027),
    ChangeCategories(person_id=PID, categories=("dibao",), effective_date=date(2026, 2, 1)),
    SuspendPerson(person_id=PID, effective_date=date(2026, 2, 1), reason="x"),
    ResumePerson(person_id=PID, effective_date=date(2026, 2, 1)),
    RecordDeath(person_id=PID, date_of_death=date(2026, 2, 1)),
])
def test_every_command_after_death_is_refused(command) -> None:
    dead = accept(enrolled(), RecordDeath(person_id=PID, date_of_death=date(2026, 1, 20)))
    rejection = reject(dead, command)
    assert (rejection.reason_code, rejection.field) == ("DECEASED", "person_id")


def test_a_state_of_another_person_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        apply(enrolled(), enroll(date(2025, 10, 15), person_id="440524188001010014"), RULES, "e", today=TODAY)


# ------------------------------------------------------------ redelivery


def test_the_same_command_redelivered_is_a_no_op() -> None:
    registry = Registry()
    command = enroll(date(2025, 10, 15))
    first = registry.handle(command, "evt-1", today=TODAY)
    assert isinstance(first, Accepted) and first.snapshot.version == 1
    assert registry.handle(command, "evt-1", today=TODAY) is None
    assert registry.persons[PID] == first.snapshot
    change = ChangeCategories(person_id=PID, categories=("dibao",), effective_date=date(2026, 5, 1))
    assert isinstance(registry.handle(change, "evt-2", today=TODAY), Accepted)
    assert registry.handle(change, "evt-2", today=TODAY) is None
    assert registry.persons[PID].version == 2


def test_the_same_enrollment_under_a_new_event_id_changes_nothing() -> None:
    registry = Registry()
    registry.handle(enroll(date(2025, 10, 15)), "evt-1", today=TODAY)
    outcome = registry.handle(enroll(date(2025, 10, 15)), "evt-9", today=TODAY)
    assert isinstance(outcome, Rejected) and outcome.payload.reason_code == "ALREADY_ENROLLED"
    assert registry.persons[PID].version == 1


# ------------------------------------------------------------ providers


def provider(**over) -> RegisterProvider:
    fields = {"provider_id": "H50024000001", "name": "下路镇卫生院", "level": 1, "location": "in_pool",
              "pool_code": "500240", "licensed_beds": 40, "agreement_valid_from": date(2024, 1, 1),
              "agreement_valid_to": date(2026, 12, 31), **over}
    return RegisterProvider(**fields)


def test_register_and_update_a_provider() -> None:
    first = apply_provider(None, provider(), "p1")
    assert isinstance(first, Accepted) and first.snapshot.version == 1 and first.rejection is None
    assert first.snapshot.model_dump(exclude={"version"}) == provider().model_dump()
    second = apply_provider(first.snapshot, provider(licensed_beds=60), "p2")
    assert isinstance(second, Accepted) and (second.snapshot.version, second.snapshot.licensed_beds) == (2, 60)


@pytest.mark.parametrize(("command", "code", "field"), [
    (provider(agreement_valid_to=date(2023, 12, 31)), "DATES_OUT_OF_ORDER", "agreement_valid_to"),
    (enroll(date(2025, 10, 15)), "UNKNOWN_COMMAND", None),
])
def test_provider_rejections(command, code: str, field: str | None) -> None:
    outcome = apply_provider(None, command, "p9")
    assert isinstance(outcome, Rejected)
    assert (outcome.payload.reason_code, outcome.payload.field, outcome.payload.command_event_id) == (code, field, "p9")


def test_a_provider_id_with_a_colon_is_refused_by_the_contract() -> None:
    """':' separates the hospital from its claim number in every claim id."""
    with pytest.raises(ValidationError, match="provider_id"):
        provider(provider_id="H:1")
