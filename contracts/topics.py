"""The topic registry: every topic of the platform, its key, partitions and cleanup policy.

Every claim topic is keyed by person id, so one person's events keep their order in one
partition. Snapshot topics are compacted: the latest snapshot per key is the registry's state.
"""

from __future__ import annotations

import re
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
    producers: tuple[str, ...] = ()
    """The `producer` an event on the topic may name: its owning service. `HOSPITAL_PRODUCER` stands
    for `hospital:<id>` with the id of the payload's hospital, which the intake stamps on what it moves
    from that hospital's requests topic; `operator` for operators' tools. The broker lets the services
    named here write the topic — intake for `HOSPITAL_PRODUCER`, admin for `operator` — and no other
    principal (`tools.stack.principals`)."""
    readers: tuple[str, ...] = ()
    """The services that read it: in consumer groups (`services/*/app.py` subscriptions) or as a
    registry projection without a group. Each may read this topic and nothing it does not list."""


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

GATEWAY = "gateway"
"""The hospitals' HTTP API (`services.gateway`): publishes as the signed-in hospital, and keeps a read
model of what the platform answers (statements, adjustments, reversals, refusals) for them."""
INTAKE = "intake"
"""The service that moves a hospital's requests from `hospital.<id>.requests` to `claims.discharges`
(the sender known from the topic) and its statements and refusals to `hospital.<id>.statements`."""
HOSPITAL_PRODUCER = "hospital:<hospital_id>"
"""In `TopicSpec.producers`: the event names `hospital:<id>`, `<id>` being its payload's hospital."""

_RETAINED = {"retention.ms": "-1"}  # the claim log is the audit trail: keep it
_COMPACTED = {"min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"}

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(ENROLLMENT_COMMANDS, "person id (persons) or provider id (providers)", 3, "delete",
              ("EnrollPerson", "ChangeCategories", "SuspendPerson", "ResumePerson", "RecordDeath",
               "RegisterProvider"), _RETAINED, "enrollment", ("operator",), ("enrollment", "audit")),
    TopicSpec(PERSONS, "person id", 3, "compact", ("PersonSnapshot",), _COMPACTED, "settlement", ("enrollment",),
              ("settlement", "audit", GATEWAY)),
    TopicSpec(PROVIDERS, "provider id", 3, "compact", ("ProviderSnapshot",), _COMPACTED, "settlement",
              ("enrollment",), ("settlement", "audit", GATEWAY)),
    TopicSpec(ENROLLMENT_REJECTIONS, "person id or provider id (as sent), else the command's event id", 3, "delete",
              ("CommandRejected",), _RETAINED, "audit", ("enrollment",), ("audit",)),
    TopicSpec(DISCHARGES, "person id", 6, "delete", ("DischargeRecorded", "DischargeCorrected", "ReversalRequested"),
              _RETAINED, "settlement", (HOSPITAL_PRODUCER,), ("settlement", "audit")),
    TopicSpec(REFUSALS, "person id", 6, "delete", ("ClaimRequestRefused",), _RETAINED, "audit",
              ("settlement", INTAKE), ("audit", INTAKE, GATEWAY)),
    TopicSpec(BASIC_SETTLED, "person id", 6, "delete", ("BasicSettled",), _RETAINED, "catastrophic",
              ("settlement",), ("catastrophic", "audit")),
    TopicSpec(CATASTROPHIC_SETTLED, "person id", 6, "delete", ("CatastrophicSettled",), _RETAINED,
              "assistance", ("catastrophic",), ("assistance", "audit")),
    TopicSpec(STATEMENTS, "person id", 6, "delete", ("SettlementStatement", "SettlementAdjusted", "SettlementReversed"),
              _RETAINED, "audit", ("assistance",), ("audit", INTAKE, GATEWAY)),
    TopicSpec(ALERTS, "claim id, else the alert id", 3, "delete", ("AuditAlert",), _RETAINED, "audit", ("audit",),
              ("audit",)),
)

BY_NAME: dict[str, TopicSpec] = {t.name: t for t in TOPICS}


# Hospitals' own topics (医院专属通道): a hospital principal writes only `hospital.<id>.requests` and
# reads only `hospital.<id>.statements`; the intake service moves requests into `claims.discharges`
# (refusing a request for another hospital's provider id) and copies each hospital's statements,
# adjustments, reversals and refusals to its statements topic.
HOSPITAL_TOPIC_PREFIX = "hospital."
HOSPITAL_REQUESTS_DLT = "hospital.requests.dlt"
HOSPITAL_TOPIC_PARTITIONS = 3
HOSPITAL_TOPIC_CONFIG = _RETAINED
HOSPITAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"
"""A hospital that is a principal has an id without dots (a provider id may have them): its consumer
groups are `hospital.<id>.…`, and with a dot one hospital's prefix could cover another's
(`hospital.H.` would match `hospital.H.1.…`)."""
_HOSPITAL_REQUESTS = re.compile(r"^(?P<prefix>.*?)hospital\.(?P<hospital>.+)\.requests$")
# a provider id may hold dots: the hospital's part is all between `hospital.` and the last
# `.requests` (the topic names of two hospitals never coincide; ACLs on them are literal)


def hospital_requests_topic(hospital_id: str) -> str:
    """`hospital.<id>.requests`: the hospital's discharges, corrections and reversals (keyed by
    person id), written only by that hospital."""
    return f"{HOSPITAL_TOPIC_PREFIX}{hospital_id}.requests"


def hospital_statements_topic(hospital_id: str) -> str:
    """`hospital.<id>.statements`: what the platform answers that hospital (keyed by person id),
    readable only by it."""
    return f"{HOSPITAL_TOPIC_PREFIX}{hospital_id}.statements"


def hospital_group_prefix(hospital_id: str) -> str:
    """The hospital's own consumer groups: `hospital.<id>.…`."""
    return f"{HOSPITAL_TOPIC_PREFIX}{hospital_id}."


def hospital_requests_pattern(topic_prefix: str = "") -> str:
    """The regular expression of every hospital's requests topic (the intake's subscription)."""
    return rf"^{re.escape(topic_prefix)}hospital\..+\.requests$"


HOSPITAL_REQUESTS = "hospital.requests"
"""The intake's one subscription to every hospital's requests topic (its consumer group's suffix)."""


def subscription_of(topic: str) -> str:
    """The subscription (consumer group suffix) that consumes `topic` (unprefixed): the topic
    itself, or `HOSPITAL_REQUESTS` for a hospital's requests topic."""
    return HOSPITAL_REQUESTS if sender_of(topic) is not None else topic


def sender_of(topic: str, topic_prefix: str = "") -> str | None:
    """The hospital whose requests topic `topic` is (None for any other topic)."""
    m = _HOSPITAL_REQUESTS.match(topic)
    return m.group("hospital") if m is not None and m.group("prefix") == topic_prefix else None


def dead_letter_topic(name: str) -> str:
    """`<topic>.dlt`: where a consumer of `name` puts what it cannot process, with the reason (for
    a hospital's requests topic, the one `hospital.requests.dlt` of the intake)."""
    if (m := _HOSPITAL_REQUESTS.match(name)) is not None:
        return m.group("prefix") + HOSPITAL_REQUESTS_DLT
    return name + DLT_SUFFIX


DEAD_LETTER_TOPICS: tuple[TopicSpec, ...] = (
    *(TopicSpec(dead_letter_topic(t.name), "as the input topic", 1, "delete", (), _RETAINED) for t in TOPICS),
    TopicSpec(HOSPITAL_REQUESTS_DLT, "as the hospital's requests topic", 1, "delete", (), _RETAINED),
)

ALL_TOPICS: tuple[TopicSpec, ...] = TOPICS + DEAD_LETTER_TOPICS
