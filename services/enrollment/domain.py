"""The registry of insured persons (参保登记) and designated providers (定点医疗机构), as pure decisions.

`apply(state, command, rules, command_event_id)` turns a person's current `PersonSnapshot` (or None
for a person never seen) and one command into either `Accepted(snapshot)` — the new snapshot,
`version` + 1 — or `Rejected(CommandRejected)` naming the field and the reason. No I/O.

Decisions:

* **State is exactly the contract `PersonSnapshot`** (resp. `ProviderSnapshot`): it is what the
  service stores as JSONB and publishes on the compacted topic, and everything (status, current
  categories, the registry's own last coverage) is derived from its temporal history.
* **Redelivery is deduped by the caller**, by command event id, in the same transaction as the
  effect (the service's `processed_event`; `Registry` below does the same in memory). The
  snapshot keeps no command ids. A *different* command with the same content is not a redelivery:
  enrolling a coverage year again with the same payment date is `ALREADY_ENROLLED`, with another
  payment date `CONFLICT`; state is unchanged either way.
* **`ordinary` (普通居民) stands alone**: in F000 L7 it is the rest of the partition of the insured
  (those in none of the special categories), so combining it with another category is refused.
* **Categories are a history of periods**: a command states the categories *from its date on*
  (enrollment: from `max(1 Jan of the coverage year, payment date)`; `ChangeCategories`: from its
  effective date) and replaces whatever the history said from that date on. The snapshot's
  `categories` are those of the latest period.
* **A suspension's `end` is the day benefits resume** (the `ResumePerson` effective date):
  the person is suspended on days `start <= d < end`.
* **The enrollment date** is the earliest payment date; suspension, resume, death and category
  dates may not be before it. A deceased person accepts no further command (`DECEASED`).
* **A plausible payment date** lies between 1 Jan of the year before the coverage year and 31 Dec
  of the coverage year, and not before the birth date in the identity number.
* **The scheme belongs to the person**, not to a coverage period (the contract has one `scheme`):
  an enrollment under another scheme replaces it.
* **The waiting period's gap** is measured from the last covered day — the later of the command's
  `previous_coverage_end` and 31 Dec of the registry's last coverage year before this one —
  to the payment date; suspensions do not count as gaps.
* **Benefits start by `DATE_MAX`**: a payment whose benefits would start after the last business
  date of the contracts (late 2099: the 1st of the next month, or a waiting period) is refused
  (`DATES_OUT_OF_ORDER` on `payment_date`); its coverage period could not be stated, let alone used.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import ClassVar, Generic, Literal, TypeVar

from contracts.enrollment import (
    PERSON_COMMAND_MODELS,
    CategoryPeriod,
    ChangeCategories,
    CommandRejected,
    CoveragePeriod,
    EnrollPerson,
    PersonCommand,
    PersonSnapshot,
    ProviderSnapshot,
    RecordDeath,
    RegisterProvider,
    ResumePerson,
    SuspendPerson,
    Suspension,
)
from contracts.identity import (
    birth_date_of,
    mask_identity_number,
    validate_identity_number,
)
from contracts.limits import DATE_MAX
from contracts.types import CommandRejectionCode, PersonCategory


@dataclass(frozen=True)
class EnrollmentRules:
    """Enrollment parameters of a policy profile; the defaults are `demo-county`'s.

    Field names follow the profile's `enrollment` section, so the service builds this from it.
    """

    # 当月缴费,次月享受: benefits from the 1st of the month after payment (F002 L141, F003 L113).
    # "same_month" (E点通, F004 L333): from the 1st of the payment month.
    benefits_start: Literal["next_month_after_payment", "same_month"] = "next_month_after_payment"
    # Waiting period (等待期): covered only from 6 months after the payment date (F002 L141).
    waiting_period_months: int = 6
    # ...for a person with a gap in coverage of 6 months or more (中断缴费6个月以上, F002 L141).
    waiting_period_min_gap_months: int = 6
    # ...who pays strictly after this day: 1 Jan of the coverage year (demo-county.md, Eligibility),
    # or a fixed date (GZ: paid by 2009-06-30 → no waiting period, F002 L141).
    waiting_period_if_paid_after: Literal["coverage_year_start"] | date = "coverage_year_start"


S = TypeVar("S", PersonSnapshot, ProviderSnapshot)


@dataclass(frozen=True)
class Accepted(Generic[S]):
    """The command is accepted: `snapshot` is the new state (to store and publish)."""

    snapshot: S
    rejection: ClassVar[None] = None

    @property
    def new_state(self) -> S:
        return self.snapshot


@dataclass(frozen=True)
class Rejected:
    """The command is refused; the state is unchanged. `payload` goes to `enrollment.rejections`."""

    payload: CommandRejected
    snapshot: ClassVar[None] = None

    @property
    def rejection(self) -> CommandRejected:
        return self.payload


class _Refused(Exception):
    def __init__(self, code: CommandRejectionCode, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.code, self.field, self.reason = code, field, reason


# ------------------------------------------------------------------ dates


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clamped to the end of a shorter month (31 Aug + 6 → 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def first_of_next_month(day: date) -> date:
    return add_months(day.replace(day=1), 1)


def benefits_start(coverage_year: int, payment_date: date, last_coverage_end: date | None,
                   rules: EnrollmentRules) -> tuple[date, bool]:
    """The day the benefits bought by a payment start, and whether a waiting period delays them.

    Plain rule: the 1st of the month after payment, not before 1 Jan of the coverage year.
    Waiting period (等待期): with no earlier coverage, or a gap of `waiting_period_min_gap_months`
    or more between the last covered day and the payment date, a payment after the coverage year
    began is covered only from `waiting_period_months` after the payment date; the later day wins.
    """
    year_start = date(coverage_year, 1, 1)
    month_start = payment_date.replace(day=1)
    plain = max(year_start, month_start if rules.benefits_start == "same_month" else first_of_next_month(payment_date))
    paid_after = rules.waiting_period_if_paid_after
    cutoff = year_start if paid_after == "coverage_year_start" else paid_after
    gap = last_coverage_end is None or payment_date >= add_months(
        last_coverage_end + timedelta(days=1), rules.waiting_period_min_gap_months)
    waiting_from = add_months(payment_date, rules.waiting_period_months)
    waiting = payment_date > cutoff and gap and waiting_from > plain
    return (waiting_from if waiting else plain), waiting


def coverage_period(coverage_year: int, payment_date: date, last_coverage_end: date | None,
                    rules: EnrollmentRules) -> CoveragePeriod:
    """The coverage period bought by a payment, with the day its benefits start (`benefits_start`)."""
    start, waiting = benefits_start(coverage_year, payment_date, last_coverage_end, rules)
    return CoveragePeriod(coverage_year=coverage_year, payment_date=payment_date, benefits_from=start,
                          waiting_period=waiting)


def enrollment_date(snapshot: PersonSnapshot) -> date:
    """The earliest payment date: nothing in a person's history may be dated before it."""
    return min(p.payment_date for p in snapshot.coverage)


def registry_coverage_end(snapshot: PersonSnapshot | None, coverage_year: int) -> date | None:
    """Last covered day known to the registry before `coverage_year` (31 Dec of the last paid year)."""
    years = [p.coverage_year for p in snapshot.coverage if p.coverage_year < coverage_year] if snapshot else []
    return date(max(years), 12, 31) if years else None


def open_suspension(snapshot: PersonSnapshot) -> Suspension | None:
    last = snapshot.suspensions[-1] if snapshot.suspensions else None
    return last if last is not None and last.end is None else None


# ------------------------------------------------------------------ persons


def apply(state: PersonSnapshot | None, command: PersonCommand, rules: EnrollmentRules, command_event_id: str,
          *, today: date | None = None) -> Accepted[PersonSnapshot] | Rejected:
    """Decide one person command against the person's current snapshot (None: never enrolled).

    `today` only bounds the birth date inside the identity number (default: the system date).
    Raises ValueError if `state` belongs to another person (a caller bug, not bad input).
    """
    subject = str(getattr(command, "person_id", "") or getattr(command, "provider_id", ""))
    try:
        if not isinstance(command, PERSON_COMMAND_MODELS):
            raise _Refused("UNKNOWN_COMMAND", None, f"{type(command).__name__} is not a person command")
        if state is not None and state.person_id != command.person_id:
            raise ValueError(f"state of {mask_identity_number(state.person_id)} given for a command of "
                             f"{mask_identity_number(command.person_id)}")
        if (problem := validate_identity_number(command.person_id, today=today)) is not None:
            raise _Refused("INVALID_ID_NUMBER", "person_id", f"person_id is not a valid identity number: {problem}")
        if state is None and not isinstance(command, EnrollPerson):
            raise _Refused("UNKNOWN_PERSON", "person_id", "no enrollment is registered for this person")
        if state is not None and state.date_of_death is not None:
            raise _Refused("DECEASED", "person_id",
                           f"the person died on {state.date_of_death.isoformat()}: no further command is accepted")
        match command:
            case EnrollPerson():
                new = _enroll(state, command, rules)
            case _ if state is None:  # unreachable: checked above, narrows the type
                raise _Refused("UNKNOWN_PERSON", "person_id", "no enrollment is registered for this person")
            case ChangeCategories():
                new = _change_categories(state, command)
            case SuspendPerson():
                new = _suspend(state, command)
            case ResumePerson():
                new = _resume(state, command)
            case RecordDeath():
                new = _record_death(state, command)
    except _Refused as refused:
        return Rejected(CommandRejected(
            command_event_id=command_event_id, command_type=type(command).__name__, subject_id=subject,
            field=refused.field, reason_code=refused.code, reason=refused.reason))
    return Accepted(new)


def _check_categories(categories: tuple[PersonCategory, ...], grade: int | None) -> None:
    if len(set(categories)) != len(categories):
        twice = next(c for c in categories if categories.count(c) > 1)
        raise _Refused("INVALID_FIELD", "categories", f"category {twice!r} is listed twice")
    if "ordinary" in categories and len(categories) > 1:
        raise _Refused("INVALID_FIELD", "categories",
                       "'ordinary' cannot be combined with other categories: it means none of them applies")
    if "disabled" in categories and grade is None:
        raise _Refused("INVALID_FIELD", "disability_grade", "category 'disabled' requires a disability grade 1–4")
    if grade is not None and "disabled" not in categories:
        raise _Refused("INVALID_FIELD", "disability_grade",
                       f"disability grade {grade} given without the category 'disabled'")


def _with_categories(history: tuple[CategoryPeriod, ...], effective_from: date,
                     categories: tuple[PersonCategory, ...], grade: int | None) -> tuple[CategoryPeriod, ...]:
    """The history with `categories` from `effective_from` on, replacing later periods."""
    kept = tuple(p for p in history if p.effective_from < effective_from)
    if kept and set(kept[-1].categories) == set(categories) and kept[-1].disability_grade == grade:
        return kept
    return (*kept, CategoryPeriod(effective_from=effective_from, categories=categories, disability_grade=grade))


def _person(prev: PersonSnapshot | None, *, person_id: str, scheme: str, history: tuple[CategoryPeriod, ...],
            coverage: tuple[CoveragePeriod, ...], suspensions: tuple[Suspension, ...],
            date_of_death: date | None) -> PersonSnapshot:
    suspended = bool(suspensions) and suspensions[-1].end is None
    return PersonSnapshot(
        person_id=person_id, version=prev.version + 1 if prev else 1, scheme=scheme,
        status="deceased" if date_of_death else "suspended" if suspended else "active",
        categories=history[-1].categories, disability_grade=history[-1].disability_grade,
        category_history=history, coverage=tuple(sorted(coverage, key=lambda p: p.coverage_year)),
        suspensions=suspensions, date_of_death=date_of_death)


def _enroll(state: PersonSnapshot | None, cmd: EnrollPerson, rules: EnrollmentRules) -> PersonSnapshot:
    _check_categories(cmd.categories, cmd.disability_grade)
    year, paid = cmd.coverage_year, cmd.payment_date
    if paid > date(year, 12, 31):
        raise _Refused("DATES_OUT_OF_ORDER", "payment_date",
                       f"payment_date {paid.isoformat()} is after the end of coverage year {year}")
    if paid < date(year - 1, 1, 1):
        raise _Refused("DATES_OUT_OF_ORDER", "payment_date",
                       f"payment_date {paid.isoformat()} is more than a year before coverage year {year}")
    if paid < birth_date_of(cmd.person_id):
        raise _Refused("DATES_OUT_OF_ORDER", "payment_date",
                       f"payment_date {paid.isoformat()} is before the birth date in person_id")
    if cmd.previous_coverage_end is not None and cmd.previous_coverage_end > date(year, 12, 31):
        raise _Refused("DATES_OUT_OF_ORDER", "previous_coverage_end",
                       f"previous_coverage_end {cmd.previous_coverage_end.isoformat()} is after coverage year {year}")
    existing = next((p for p in state.coverage if p.coverage_year == year), None) if state else None
    if existing is not None and existing.payment_date == paid:
        raise _Refused("ALREADY_ENROLLED", "coverage_year",
                       f"already enrolled for {year} with the payment of {paid.isoformat()}")
    if existing is not None:
        raise _Refused("CONFLICT", "payment_date", f"already enrolled for {year} with a payment on "
                       f"{existing.payment_date.isoformat()}, not {paid.isoformat()}")
    own_end = registry_coverage_end(state, year)
    ends = [d for d in (cmd.previous_coverage_end, own_end) if d is not None]
    last_end = max(ends) if ends else None
    start, _ = benefits_start(year, paid, last_end, rules)
    if start > DATE_MAX:
        raise _Refused("DATES_OUT_OF_ORDER", "payment_date",
                       f"the benefits of a payment on {paid.isoformat()} would start on {start.isoformat()}, after "
                       f"the last date the platform handles ({DATE_MAX.isoformat()})")
    period = coverage_period(year, paid, last_end, rules)
    history = _with_categories(state.category_history if state else (), max(date(year, 1, 1), paid),
                               cmd.categories, cmd.disability_grade)
    return _person(state, person_id=cmd.person_id, scheme=cmd.scheme, history=history,
                   coverage=(*(state.coverage if state else ()), period),
                   suspensions=state.suspensions if state else (), date_of_death=None)


def _not_before_enrollment(state: PersonSnapshot, day: date, field_name: str) -> None:
    enrolled = enrollment_date(state)
    if day < enrolled:
        raise _Refused("DATES_OUT_OF_ORDER", field_name,
                       f"{field_name} {day.isoformat()} is before the enrollment on {enrolled.isoformat()}")


def _change_categories(state: PersonSnapshot, cmd: ChangeCategories) -> PersonSnapshot:
    _check_categories(cmd.categories, cmd.disability_grade)
    _not_before_enrollment(state, cmd.effective_date, "effective_date")
    history = _with_categories(state.category_history, cmd.effective_date, cmd.categories, cmd.disability_grade)
    return _person(state, person_id=state.person_id, scheme=state.scheme, history=history, coverage=state.coverage,
                   suspensions=state.suspensions, date_of_death=None)


def _suspend(state: PersonSnapshot, cmd: SuspendPerson) -> PersonSnapshot:
    _not_before_enrollment(state, cmd.effective_date, "effective_date")
    if (current := open_suspension(state)) is not None:
        raise _Refused("CONFLICT", "effective_date", f"already suspended since {current.start.isoformat()}")
    if state.suspensions and cmd.effective_date < (last_end := state.suspensions[-1].end or date.min):
        raise _Refused("DATES_OUT_OF_ORDER", "effective_date", f"effective_date {cmd.effective_date.isoformat()} is "
                       f"before the end of the previous suspension on {last_end.isoformat()}")
    suspensions = (*state.suspensions, Suspension(start=cmd.effective_date, end=None, reason=cmd.reason))
    return _person(state, person_id=state.person_id, scheme=state.scheme, history=state.category_history,
                   coverage=state.coverage, suspensions=suspensions, date_of_death=None)


def _resume(state: PersonSnapshot, cmd: ResumePerson) -> PersonSnapshot:
    current = open_suspension(state)
    if current is None:
        raise _Refused("NOT_SUSPENDED", "person_id", "the person is not suspended")
    if cmd.effective_date < current.start:
        raise _Refused("DATES_OUT_OF_ORDER", "effective_date", f"effective_date {cmd.effective_date.isoformat()} is "
                       f"before the suspension's start on {current.start.isoformat()}")
    suspensions = (*state.suspensions[:-1], current.model_copy(update={"end": cmd.effective_date}))
    return _person(state, person_id=state.person_id, scheme=state.scheme, history=state.category_history,
                   coverage=state.coverage, suspensions=suspensions, date_of_death=None)


def _record_death(state: PersonSnapshot, cmd: RecordDeath) -> PersonSnapshot:
    _not_before_enrollment(state, cmd.date_of_death, "date_of_death")
    return _person(state, person_id=state.person_id, scheme=state.scheme, history=state.category_history,
                   coverage=state.coverage, suspensions=state.suspensions, date_of_death=cmd.date_of_death)


# ------------------------------------------------------------------ providers



def apply_provider(state: ProviderSnapshot | None, command: RegisterProvider,
                   command_event_id: str) -> Accepted[ProviderSnapshot] | Rejected:
    """Register a designated provider (定点医疗机构) or update its registration (version + 1)."""
    def refuse(code: CommandRejectionCode, field_name: str | None, reason: str) -> Rejected:
        return Rejected(CommandRejected(
            command_event_id=command_event_id, command_type=type(command).__name__,
            subject_id=str(getattr(command, "provider_id", "") or getattr(command, "person_id", "")),
            field=field_name, reason_code=code, reason=reason))

    if not isinstance(command, RegisterProvider):
        return refuse("UNKNOWN_COMMAND", None, f"{type(command).__name__} is not a provider command")
    if state is not None and state.provider_id != command.provider_id:
        raise ValueError(f"state of {state.provider_id} given for a command of {command.provider_id}")
    if command.agreement_valid_to is not None and command.agreement_valid_to < command.agreement_valid_from:
        return refuse("DATES_OUT_OF_ORDER", "agreement_valid_to",
                      f"agreement_valid_to {command.agreement_valid_to.isoformat()} is before "
                      f"agreement_valid_from {command.agreement_valid_from.isoformat()}")
    return Accepted(ProviderSnapshot(
        version=state.version + 1 if state else 1,
        **command.model_dump(include={"provider_id", "name", "level", "location", "pool_code", "licensed_beds",
                                      "agreement_valid_from", "agreement_valid_to"})))


# ------------------------------------------------------------------ an in-memory registry


@dataclass
class Registry:
    """The registry in memory, deduping by command event id as the service does in its database.

    For tests, the generator and benches: `handle` returns None for a command already processed
    (accepted or rejected), else the decision, and keeps the state.
    """

    rules: EnrollmentRules = field(default_factory=EnrollmentRules)
    persons: dict[str, PersonSnapshot] = field(default_factory=dict)
    providers: dict[str, ProviderSnapshot] = field(default_factory=dict)
    processed: set[str] = field(default_factory=set)

    def handle(self, command: PersonCommand | RegisterProvider, command_event_id: str, *,
               today: date | None = None) -> Accepted[PersonSnapshot] | Accepted[ProviderSnapshot] | Rejected | None:
        if command_event_id in self.processed:
            return None
        self.processed.add(command_event_id)
        if isinstance(command, RegisterProvider):
            outcome = apply_provider(self.providers.get(command.provider_id), command, command_event_id)
            if isinstance(outcome, Accepted):
                self.providers[command.provider_id] = outcome.snapshot
            return outcome
        decision = apply(self.persons.get(command.person_id), command, self.rules, command_event_id, today=today)
        if isinstance(decision, Accepted):
            self.persons[command.person_id] = decision.snapshot
        return decision
