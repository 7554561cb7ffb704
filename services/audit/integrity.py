"""Integrity rules (信息安全控制): forged or impossible events, as pure functions.

Kafka's ACLs let only a topic's producing service write it; these rules are the second line, for
what gets past them (a leaked service credential, an operator's mistake, a bug):

* **An event id that repeats with other content** (`event_id_conflict`): event ids are derived
  from their content's natural key, so the same id twice is a redelivery or a replay — unless
  the content differs, which means one of the two is forged (or a producer is broken). Compared:
  the event type and the payload but the time it was computed (`VOLATILE_FIELDS`), on any topic
  but the audit's own alerts. One alert per event id.
* **A producer that is not the topic's owner** (`unexpected_producer`): every event names its
  producer; on each topic only its owning service may appear (`contracts.topics.TopicSpec.
  producers`), and a hospital's request must come from that hospital (`hospital:<hospital_id>`,
  which the intake stamps). One alert per event id.
* **An impossible registry history** (`registry_version_jump`): enrollment numbers each person's
  and provider's snapshots 1, 2, 3, …; a snapshot more than one version after the last one the
  audit saw (or one not after it, with another event id) did not come from enrollment. When the
  audit is rebuilt from a compacted registry topic it sees only the latest versions: the first
  snapshot of a subject is never judged by this rule.
* **A snapshot with no command behind it** (`snapshot_without_command`): each snapshot's
  `causation_id` is the enrollment command it follows from, which the audit keeps from
  `enrollment.commands` (retained forever). Judged by reconciliation once the command had time
  to arrive (`statement_timeout_s`), since the two topics are consumed independently.

Sources: F004 L207 (information security controls, user and password management, electronic
controls on business and finance), F004 L59 (data security of the insurance system).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.topics import BY_NAME, HOSPITAL_PRODUCER
from services.audit.rules import Finding

EVENT_ID_CONFLICT = "event_id_conflict"
UNEXPECTED_PRODUCER = "unexpected_producer"
REGISTRY_VERSION_JUMP = "registry_version_jump"
SNAPSHOT_WITHOUT_COMMAND = "snapshot_without_command"

SOURCE = "F004 L207, F004 L59"
SOURCES: dict[str, str] = dict.fromkeys((EVENT_ID_CONFLICT, UNEXPECTED_PRODUCER, REGISTRY_VERSION_JUMP, SNAPSHOT_WITHOUT_COMMAND), SOURCE)


@dataclass(frozen=True)
class StoredEvent:
    """An event as the audit stored it (what the integrity rules compare)."""

    event_id: uuid.UUID
    topic: str
    partition: int
    offset: int
    event_type: str
    producer: str
    payload: Any
    """the payload as decoded JSON (compared by value: key order and spacing do not matter)"""

    def where(self) -> str:
        return f"{self.topic} {self.partition}/{self.offset} ({self.event_type}, producer {self.producer})"


def _claim_fields(payload: Any) -> dict[str, str | None]:
    if not isinstance(payload, Mapping):
        return {}
    inner = payload.get("claim")
    claim: Mapping[str, Any] = inner if isinstance(inner, Mapping) else payload
    out = {k: claim.get(k) for k in ("claim_id", "person_id", "hospital_id")}
    if out["claim_id"] is None and isinstance(claim.get("hospital_claim_id"), str):  # a hospital's request
        out["claim_id"] = f"{claim.get('hospital_id')}:{claim['hospital_claim_id']}"
    return {k: v if isinstance(v, str) and len(v) <= 120 else None for k, v in out.items()}


VOLATILE_FIELDS = frozenset({"settled_at", "detected_at"})
"""When a service computed a payload, not what it says: a layer that settles a claim again after
its database was rebuilt re-emits the same event id with a new `settled_at`."""


def content(event: StoredEvent) -> tuple[str, Any]:
    """What must be equal for two events with one id to be the same event."""
    payload = event.payload
    if isinstance(payload, Mapping):
        payload = {k: v for k, v in payload.items() if k not in VOLATILE_FIELDS}
    return event.event_type, payload


def event_id_conflicts(events: Iterable[StoredEvent]) -> list[Finding]:
    """Each event id stored with two different contents (event type or payload but
    `VOLATILE_FIELDS`): one finding, showing the first content and the first different one."""
    first: dict[uuid.UUID, StoredEvent] = {}
    findings: dict[uuid.UUID, Finding] = {}
    for e in events:
        seen = first.setdefault(e.event_id, e)
        if e.event_id in findings or content(seen) == content(e):
            continue
        fields = _claim_fields(e.payload)
        findings[e.event_id] = Finding(
            EVENT_ID_CONFLICT, "high",
            {"event_id": str(e.event_id), "first": seen.where(), "conflicting": e.where(),
             "explanation": "the same event id with different content: one of the two is forged or its producer is "
                            "broken; consumers that deduplicate by event id kept whichever came first"},
            SOURCE, claim_id=fields.get("claim_id"), person_id=fields.get("person_id"),
            hospital_id=fields.get("hospital_id"), subject=str(e.event_id))
    return list(findings.values())


def unexpected_producer(topic: str, event: StoredEvent) -> Finding | None:
    """A finding when the event's producer may not write `topic` (unprefixed)."""
    spec = BY_NAME.get(topic)
    if spec is None or not spec.producers:
        return None
    fields = _claim_fields(event.payload)
    allowed = [f"hospital:{fields.get('hospital_id')}" if p == HOSPITAL_PRODUCER else p for p in spec.producers]
    if event.producer in allowed:
        return None
    return Finding(UNEXPECTED_PRODUCER, "high",
                   {"event_id": str(event.event_id), "topic": topic, "producer": event.producer,
                    "expected": " or ".join(allowed),
                    "where": event.where()},
                   SOURCE, claim_id=fields.get("claim_id"), person_id=fields.get("person_id"),
                   hospital_id=fields.get("hospital_id"), subject=str(event.event_id))


def registry_version_jump(kind: str, subject: str, known_version: int | None, version: int,
                          event_id: uuid.UUID) -> Finding | None:
    """A finding when a new `kind` ("person" or "provider") snapshot of `subject` at `version`
    cannot follow the last one seen (`known_version`, None when none was). A snapshot's event id is
    derived from its subject and version, so the same version again with another id is new."""
    if known_version is None or version == known_version + 1:
        return None
    what = "skips versions" if version > known_version else "does not come after the last one"
    return Finding(REGISTRY_VERSION_JUMP, "high",
                   {"kind": kind, "version": str(version), "last_seen_version": str(known_version),
                    "event_id": str(event_id),
                    "explanation": f"the snapshot {what}: enrollment numbers each {kind}'s snapshots one by one"},
                   SOURCE, person_id=subject if kind == "person" else None,
                   hospital_id=subject if kind == "provider" else None, subject=f"{kind}:{subject}:{version}")


def snapshot_without_command(kind: str, subject: str, version: int, event_id: uuid.UUID,
                             causation_id: uuid.UUID | None, recorded_at: datetime) -> Finding:
    """A snapshot whose causing command the audit never received."""
    return Finding(SNAPSHOT_WITHOUT_COMMAND, "high",
                   {"kind": kind, "version": str(version), "event_id": str(event_id),
                    "causation_id": str(causation_id) if causation_id else "none",
                    "recorded_at": recorded_at.isoformat(),
                    "explanation": "no enrollment command has this snapshot's causation id: it was not made by "
                                   "enrollment from a command"},
                   SOURCE, person_id=subject if kind == "person" else None,
                   hospital_id=subject if kind == "provider" else None, subject=str(event_id))
