"""The intake service (医院接入): hospitals' requests topics in, `claims.discharges` and
`claims.refusals` out; `claims.statements` and `claims.refusals` in, the hospitals' statements
topics out. See `services.intake` and docs/architecture.md ("Hospitals' topics")."""

from __future__ import annotations

from contracts import (
    ClaimRequestRefused,
    DischargeCorrected,
    DischargeRecorded,
    ReversalRequested,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
)
from contracts.topics import HOSPITAL_REQUESTS, REFUSALS, STATEMENTS, hospital_requests_pattern
from runtime.app import ServiceContext, ServiceSpec
from runtime.consumer import Subscription
from services.intake.handlers import AnswersHandler, RequestsHandler
from services.intake.hospital_topics import HospitalTopics


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    topics = HospitalTopics(ctx.settings.kafka_options())
    answers = AnswersHandler(topics.ensure)
    return [
        Subscription(HOSPITAL_REQUESTS, RequestsHandler(), (DischargeRecorded, DischargeCorrected, ReversalRequested),
                     pattern=hospital_requests_pattern(ctx.settings.topic_prefix)),
        Subscription(STATEMENTS, answers, (SettlementStatement, SettlementAdjusted, SettlementReversed),
                     dead_letters=False),
        Subscription(REFUSALS, answers, (ClaimRequestRefused,), dead_letters=False),
    ]


SPEC = ServiceSpec(name="intake", migrations=(), subscriptions=subscriptions)
