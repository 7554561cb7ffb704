"""The enrollment service: registry of insured persons (参保登记) and designated providers."""

from __future__ import annotations

from pathlib import Path

from contracts.enrollment import ENROLLMENT_COMMAND_MODELS
from contracts.topics import ENROLLMENT_COMMANDS
from policy import PolicyProfile
from runtime.app import ServiceContext, ServiceSpec
from runtime.consumer import Subscription
from services.enrollment.domain import EnrollmentRules
from services.enrollment.handlers import EnrollmentHandler


def rules_of(profile: PolicyProfile) -> EnrollmentRules:
    """The enrollment rules of a policy profile (demo-county's defaults where it has no section)."""
    if profile.enrollment is None:
        return EnrollmentRules()
    return EnrollmentRules(**profile.enrollment.model_dump(exclude={"insurance_year"}))


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    rules = rules_of(ctx.policy())
    return [Subscription(ENROLLMENT_COMMANDS, EnrollmentHandler(rules), ENROLLMENT_COMMAND_MODELS, invalid_payloads_to_handler=True)]


SPEC = ServiceSpec(name="enrollment", migrations=(Path(__file__).parent / "migrations",), subscriptions=subscriptions)
