"""Enrollment (参保登记) commands, the registry snapshots, and command rejections.

Commands are published by operators (or the generator) on `enrollment.commands`, keyed by person
id or provider id. The enrollment service validates them (identity-number check digit, dates in
order, known categories) and keeps the temporal history; it publishes the current state as
compacted snapshots that other services project locally.

Identity numbers and names are personal data: they travel in these payloads, never in logs.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from contracts.envelope import Contract
from contracts.types import CareLocation, PersonCategory, PersonStatus, ProviderLevel, Scheme

PersonId = str
"""18-character resident identity number (GB 11643). Its check digit is verified by enrollment,
which rejects an invalid one with a `CommandRejected` naming the field."""


class EnrollPerson(Contract):
    """Enroll a person for a coverage year (参保缴费): benefits start the month after payment."""

    person_id: PersonId = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=100)
    scheme: Scheme
    categories: tuple[PersonCategory, ...] = Field(min_length=1)
    disability_grade: int | None = Field(default=None, ge=1, le=4)
    payment_date: date
    coverage_year: int = Field(ge=2000, le=2100)
    previous_coverage_end: date | None = Field(
        default=None,
        description="last day of the person's coverage before this enrollment, if any (e.g. in another pool);"
        " decides the waiting period together with the registry's own history",
    )


class ChangeCategories(Contract):
    """Change a person's categories (e.g. becomes dibao) from a date."""

    person_id: PersonId = Field(min_length=1, max_length=32)
    categories: tuple[PersonCategory, ...] = Field(min_length=1)
    disability_grade: int | None = Field(default=None, ge=1, le=4)
    effective_date: date


class SuspendPerson(Contract):
    """Suspend benefits (停保) from a date."""

    person_id: PersonId = Field(min_length=1, max_length=32)
    effective_date: date
    reason: str = Field(min_length=1, max_length=200)


class ResumePerson(Contract):
    """Resume suspended benefits from a date."""

    person_id: PersonId = Field(min_length=1, max_length=32)
    effective_date: date


class RecordDeath(Contract):
    """Record a death: no benefits from that date."""

    person_id: PersonId = Field(min_length=1, max_length=32)
    date_of_death: date


class RegisterProvider(Contract):
    """Register or update a designated provider (定点医疗机构) and its service agreement."""

    provider_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    level: ProviderLevel
    location: CareLocation = Field(description="relative to the pool this platform serves")
    pool_code: str = Field(min_length=1, max_length=40)
    licensed_beds: int = Field(ge=0)
    agreement_valid_from: date
    agreement_valid_to: date | None = None


PERSON_COMMANDS = (EnrollPerson, ChangeCategories, SuspendPerson, ResumePerson, RecordDeath)
ENROLLMENT_COMMANDS = PERSON_COMMANDS + (RegisterProvider,)


class CoveragePeriod(Contract):
    """One paid coverage year and the day its benefits start."""

    coverage_year: int
    payment_date: date
    benefits_from: date
    waiting_period: bool = Field(description="benefits delayed by the 6-month waiting period")


class CategoryPeriod(Contract):
    effective_from: date
    categories: tuple[PersonCategory, ...]
    disability_grade: int | None = None


class Suspension(Contract):
    start: date
    end: date | None = None
    reason: str


class PersonSnapshot(Contract):
    """Everything needed to judge a person's eligibility as of any date (compacted, keyed by person id)."""

    person_id: PersonId
    version: int = Field(ge=1, description="number of accepted commands; projections keep the highest")
    scheme: Scheme
    status: PersonStatus
    categories: tuple[PersonCategory, ...]
    disability_grade: int | None = None
    category_history: tuple[CategoryPeriod, ...]
    coverage: tuple[CoveragePeriod, ...]
    suspensions: tuple[Suspension, ...] = ()
    date_of_death: date | None = None


class ProviderSnapshot(Contract):
    """A designated provider as registered (compacted, keyed by provider id)."""

    provider_id: str
    version: int = Field(ge=1)
    name: str
    level: ProviderLevel
    location: CareLocation
    pool_code: str
    licensed_beds: int
    agreement_valid_from: date
    agreement_valid_to: date | None = None


class CommandRejected(Contract):
    """A command enrollment refused, with the field and the reason."""

    command_event_id: str
    command_type: str
    subject_id: str = Field(description="the person or provider id as sent (may be the invalid one)")
    field: str | None = None
    reason_code: Literal[
        "INVALID_ID_NUMBER", "INVALID_FIELD", "DATES_OUT_OF_ORDER", "UNKNOWN_PERSON", "UNKNOWN_COMMAND",
        "ALREADY_ENROLLED", "DECEASED", "NOT_SUSPENDED", "CONFLICT",
    ]
    reason: str
