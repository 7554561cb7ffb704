"""Enrollment command handling: one batch of commands → one transaction of registry state,
snapshots and rejections.

Commands for one person arrive in order (the topic is keyed by person id). Each command is
applied once: its event id is recorded as processed in the same transaction as its effect.
"""

from __future__ import annotations

from typing import Any

from contracts import (
    CommandRejected,
    ContractError,
    PersonSnapshot,
    ProviderSnapshot,
    RegisterProvider,
    derived_event_id,
    make_envelope,
)
from contracts.limits import printable
from contracts.topics import ENROLLMENT_REJECTIONS, PERSONS, PROVIDERS
from runtime.unit_of_work import Inbound, PostgresUnitOfWork
from services.enrollment import store
from services.enrollment.domain import EnrollmentRules, Rejected, apply, apply_provider

PRODUCER = "enrollment"


def _subject_of(msg: Inbound) -> str:
    """The person or provider id as sent (printable and bounded: the payload may be hostile)."""
    payload = msg.payload if isinstance(msg.payload, dict) else msg.payload.model_dump()
    return printable(payload.get("person_id") or payload.get("provider_id") or msg.key or "", 64)


def _rejection_of_invalid(msg: Inbound) -> CommandRejected:
    error = msg.error
    assert isinstance(error, ContractError)
    field = (error.field or "").removeprefix("payload.") or None
    return CommandRejected(command_event_id=str(msg.envelope.event_id), command_type=msg.envelope.event_type,
                           subject_id=_subject_of(msg), field=field, reason_code="INVALID_FIELD", reason=error.reason)


class EnrollmentHandler:
    """Applies a batch of enrollment commands (参保登记) to the registry."""

    def __init__(self, rules: EnrollmentRules) -> None:
        self.rules = rules

    async def __call__(self, uow: PostgresUnitOfWork, batch: list[Inbound]) -> None:
        todo = await uow.new_only(batch, lambda m: f"command:{m.envelope.event_id}")
        if not todo:
            return
        person_ids = {_subject_of(m) for m in todo if not isinstance(m.payload, RegisterProvider)}
        provider_ids = {m.payload.provider_id for m in todo if isinstance(m.payload, RegisterProvider)}
        persons: dict[str, PersonSnapshot | None] = dict(await store.load_persons(uow.conn, person_ids))
        providers: dict[str, ProviderSnapshot | None] = dict(await store.load_providers(uow.conn, provider_ids))
        changed_persons: dict[str, PersonSnapshot] = {}
        changed_providers: dict[str, ProviderSnapshot] = {}
        person_events: list[tuple[PersonSnapshot, Inbound]] = []
        provider_events: list[tuple[ProviderSnapshot, Inbound]] = []
        rejections: list[CommandRejected] = []

        for msg in todo:
            if msg.error is not None:
                rejections.append(_rejection_of_invalid(msg))
                continue
            command: Any = msg.payload
            event_id = str(msg.envelope.event_id)
            if isinstance(command, RegisterProvider):
                registered = apply_provider(providers.get(command.provider_id), command, event_id)
                if isinstance(registered, Rejected):
                    rejections.append(registered.rejection)
                    continue
                provider = registered.snapshot
                providers[provider.provider_id] = changed_providers[provider.provider_id] = provider
                provider_events.append((provider, msg))
            else:
                enrolled = apply(persons.get(command.person_id), command, self.rules, event_id)
                if isinstance(enrolled, Rejected):
                    rejections.append(enrolled.rejection)
                    continue
                person = enrolled.snapshot
                persons[person.person_id] = changed_persons[person.person_id] = person
                person_events.append((person, msg))

        await store.save_persons(uow.conn, changed_persons.values(), person_events)
        await store.save_providers(uow.conn, changed_providers.values(), provider_events)
        await store.save_rejections(uow.conn, rejections)

        for person_snapshot, msg in person_events:
            uow.emit(PERSONS, make_envelope(
                person_snapshot, correlation_id=person_snapshot.person_id, producer=PRODUCER,
                causation_id=msg.envelope.event_id,
                event_id=derived_event_id("PersonSnapshot", f"{person_snapshot.person_id}:{person_snapshot.version}")))
        for provider_snapshot, msg in provider_events:
            uow.emit(PROVIDERS, make_envelope(
                provider_snapshot, correlation_id=provider_snapshot.provider_id, producer=PRODUCER,
                causation_id=msg.envelope.event_id,
                event_id=derived_event_id("ProviderSnapshot",
                                          f"{provider_snapshot.provider_id}:{provider_snapshot.version}")))
        for rejection in rejections:
            uow.emit(ENROLLMENT_REJECTIONS, make_envelope(
                rejection, correlation_id=rejection.message_key(), producer=PRODUCER,
                event_id=derived_event_id("CommandRejected", rejection.command_event_id)))
