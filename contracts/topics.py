"""The topic registry: every topic of the platform, its key, partitions and cleanup policy.

Every claim topic is keyed by person id, so one person's events keep their order in one
partition. Snapshot topics are compacted: the latest snapshot per key is the registry's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DLT_SUFFIX = ".dlt"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    """What the message key is (documentation and contract tests)."""
    partitions: int
    cleanup_policy: Literal["delete", "compact"]
    payloads: tuple[str, ...]
    """Names of the payload models (event_type) that may appear on the topic."""
    config: dict[str, str] = field(default_factory=dict)
    dead_lettered_by: str | None = None
    """The one service that dead-letters what it cannot process from this topic (other consumers
    observe: they log and skip), so each bad record is one letter on `<topic>.dlt`."""


ENROLLMENT_COMMANDS = "enrollment.commands"
PERSONS = "enrollment.persons"
PROVIDERS = "enrollment.providers"
ENROLLMENT_REJECTIONS = "enrollment.rejections"
DISCHARGES = "claims.discharges"
BASIC_SETTLED = "claims.basic-settled"
CATASTROPHIC_SETTLED = "claims.catastrophic-settled"
STATEMENTS = "claims.statements"
REFUSALS = "claims.refusals"
ALERTS = "audit.alerts"

_RETAINED = {"retention.ms": "-1"}  # the claim log is the audit trail: keep it
_COMPACTED = {"min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"}

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(ENROLLMENT_COMMANDS, "person id (persons) or provider id (providers)", 3, "delete",
              ("EnrollPerson", "ChangeCategories", "SuspendPerson", "ResumePerson", "RecordDeath",
               "RegisterProvider"), _RETAINED, "enrollment"),
    TopicSpec(PERSONS, "person id", 3, "compact", ("PersonSnapshot",), _COMPACTED, "settlement"),
    TopicSpec(PROVIDERS, "provider id", 3, "compact", ("ProviderSnapshot",), _COMPACTED, "settlement"),
    TopicSpec(ENROLLMENT_REJECTIONS, "person id or provider id (as sent), else the command's event id", 3, "delete",
              ("CommandRejected",), _RETAINED, "audit"),
    TopicSpec(DISCHARGES, "person id", 6, "delete", ("DischargeRecorded", "DischargeCorrected", "ReversalRequested"),
              _RETAINED, "settlement"),
    TopicSpec(REFUSALS, "person id", 6, "delete", ("ClaimRequestRefused",), _RETAINED, "audit"),
    TopicSpec(BASIC_SETTLED, "person id", 6, "delete", ("BasicSettled",), _RETAINED, "catastrophic"),
    TopicSpec(CATASTROPHIC_SETTLED, "person id", 6, "delete", ("CatastrophicSettled",), _RETAINED, "assistance"),
    TopicSpec(STATEMENTS, "person id", 6, "delete", ("SettlementStatement", "SettlementAdjusted", "SettlementReversed"),
              _RETAINED, "audit"),
    TopicSpec(ALERTS, "claim id, else the alert id", 3, "delete", ("AuditAlert",), _RETAINED, "audit"),
)

BY_NAME: dict[str, TopicSpec] = {t.name: t for t in TOPICS}


def dead_letter_topic(name: str) -> str:
    """`<topic>.dlt`: where a consumer of `name` puts what it cannot process, with the reason."""
    return name + DLT_SUFFIX


DEAD_LETTER_TOPICS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(dead_letter_topic(t.name), "as the input topic", 1, "delete", (), _RETAINED) for t in TOPICS
)

ALL_TOPICS: tuple[TopicSpec, ...] = TOPICS + DEAD_LETTER_TOPICS
