"""Enrollment (参保登记) commands, the registry snapshots, and command rejections.

Commands are published by operators (or the generator) on `enrollment.commands`, keyed by person
id or provider id. The enrollment service validates them (identity-number check digit, dates in
order, known categories) and keeps the temporal history; it publishes the current state as
compacted snapshots that other services project locally.

Identity numbers and names are personal data: they travel in these payloads, never in logs.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from contracts.envelope import Contract
from contracts.limits import (
    MAX_HISTORY,
    MAX_LICENSED_BEDS,
    Day,
    IdentityNumber,
    Name,
    PersonReference,
    PoolCode,
    ProviderId,
    Reason,
    Version,
    Year,
    text,
)
from contracts.types import (
    CareLocation,
    CommandRejectionCode,
    PersonCategory,
    PersonStatus,
    ProviderLevel,
    Scheme,
)

PersonId = PersonReference
"""18-character resident identity number (GB 11643) as sent. Its check digit is verified by
enrollment, which rejects an invalid one with a `CommandRejected` naming the field; registry
snapshots carry only valid ones (`IdentityNumber`)."""


class PersonCommand(Contract):
    """A command about one insured person, keyed by the person id."""

    person_id: PersonId

    def message_key(self) -> str:
        return self.person_id


class EnrollPerson(PersonCommand):
    """Enroll a person for a coverage year (参保缴费): benefits start the month after payment."""

    name: Name
    scheme: Scheme
    categories: tuple[PersonCategory, ...] = Field(min_length=1, max_length=8)
    disability_grade: int | None = Field(default=None, ge=1, le=4)
    payment_date: Day
    coverage_year: Year
    previous_coverage_end: Day | None = Field(
        default=None,
        description="last day of the person's coverage before this enrollment, if any (e.g. in another pool);"
        " decides the waiting period together with the registry's own history",
    )


class ChangeCategories(PersonCommand):
    """Change a person's categories (e.g. becomes dibao) from a date."""

    categories: tuple[PersonCategory, ...] = Field(min_length=1, max_length=8)
    disability_grade: int | None = Field(default=None, ge=1, le=4)
    effective_date: Day


class SuspendPerson(PersonCommand):
    """Suspend benefits (停保) from a date."""

    effective_date: Day
    reason: Annotated[str, text(200)]


class ResumePerson(PersonCommand):
    """Resume suspended benefits from a date."""

    effective_date: Day


class RecordDeath(PersonCommand):
    """Record a death: no benefits from that date."""

    date_of_death: Day


class RegisterProvider(Contract):
    """Register or update a designated provider (定点医疗机构) and its service agreement."""

    provider_id: ProviderId
    name: Annotated[str, text(200)]
    level: ProviderLevel
    location: CareLocation = Field(description="relative to the pool this platform serves")
    pool_code: PoolCode
    licensed_beds: int = Field(ge=0, le=MAX_LICENSED_BEDS)
    agreement_valid_from: Day
    agreement_valid_to: Day | None = None

    def message_key(self) -> str:
        return self.provider_id


PERSON_COMMAND_MODELS: tuple[type[PersonCommand], ...] = (EnrollPerson, ChangeCategories, SuspendPerson, ResumePerson,
                                                          RecordDeath)
ENROLLMENT_COMMAND_MODELS: tuple[type[Contract], ...] = (*PERSON_COMMAND_MODELS, RegisterProvider)
"""Every command on `enrollment.commands` (the topic's name is `contracts.topics.ENROLLMENT_COMMANDS`)."""


class CoveragePeriod(Contract):
    """One paid coverage year and the day its benefits start."""

    coverage_year: Year
    payment_date: Day
    benefits_from: Day
    waiting_period: bool = Field(description="benefits delayed by the 6-month waiting period")


class CategoryPeriod(Contract):
    effective_from: Day
    categories: tuple[PersonCategory, ...] = Field(max_length=8)
    disability_grade: int | None = Field(default=None, ge=1, le=4)


class Suspension(Contract):
    start: Day
    end: Day | None = None
    reason: Annotated[str, text(200)]


class PersonSnapshot(Contract):
    """Everything needed to judge a person's eligibility as of any date (compacted, keyed by person id)."""

    person_id: IdentityNumber
    version: Version = Field(description="number of accepted commands; projections keep the highest")
    scheme: Scheme
    status: PersonStatus
    categories: tuple[PersonCategory, ...] = Field(max_length=8)
    disability_grade: int | None = Field(default=None, ge=1, le=4)
    category_history: tuple[CategoryPeriod, ...] = Field(max_length=MAX_HISTORY)
    coverage: tuple[CoveragePeriod, ...] = Field(max_length=MAX_HISTORY)
    suspensions: tuple[Suspension, ...] = Field(default=(), max_length=MAX_HISTORY)
    date_of_death: Day | None = None

    def message_key(self) -> str:
        return self.person_id


class ProviderSnapshot(Contract):
    """A designated provider as registered (compacted, keyed by provider id)."""

    provider_id: ProviderId
    version: Version
    name: Annotated[str, text(200)]
    level: ProviderLevel
    location: CareLocation
    pool_code: PoolCode
    licensed_beds: int = Field(ge=0, le=MAX_LICENSED_BEDS)
    agreement_valid_from: Day
    agreement_valid_to: Day | None = None

    def message_key(self) -> str:
        return self.provider_id


class CommandRejected(Contract):
    """A command enrollment refused, with the field and the reason."""

    command_event_id: Annotated[str, text(64)]
    command_type: Annotated[str, text(64)]
    subject_id: Annotated[str, text(64, min_length=0)] = Field(
        description="the person or provider id as sent (may be the invalid one; control characters removed, "
                    "at most 64 characters)")
    field: Annotated[str, text(200)] | None = None
    reason_code: CommandRejectionCode
    reason: Reason

    def message_key(self) -> str:
        return self.subject_id or self.command_event_id
