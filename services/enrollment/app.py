"""The enrollment service: registry of insured persons (参保登记) and designated providers."""

from __future__ import annotations

from pathlib import Path

from contracts import (
    ChangeCategories,
    EnrollPerson,
    RecordDeath,
    RegisterProvider,
    ResumePerson,
    SuspendPerson,
)
from contracts.topics import ENROLLMENT_COMMANDS
from runtime.app import ServiceContext, ServiceSpec
from runtime.consumer import Subscription
from services.enrollment.domain import EnrollmentRules
from services.enrollment.handlers import EnrollmentHandler

COMMANDS = (EnrollPerson, ChangeCategories, SuspendPerson, ResumePerson, RecordDeath, RegisterProvider)


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    rules = ctx.state.get("rules") or EnrollmentRules()
    return [Subscription(ENROLLMENT_COMMANDS, EnrollmentHandler(rules), COMMANDS, invalid_payloads_to_handler=True)]


SPEC = ServiceSpec(name="enrollment", migrations=(Path(__file__).parent / "migrations",), subscriptions=subscriptions)
