"""Real valid envelopes of every consumed topic, made by the platform's own pure code.

Commands come from the generator (`tools.generate`) and the integration helpers
(`tests.integration.platform`); snapshots and rejections from the enrollment domain
(`services.enrollment.domain.Registry`); `BasicSettled`, `CatastrophicSettled` and
`SettlementStatement` from the three layers' pure decisions on a discharge; alerts from the audit
rules' `Finding`. Envelopes carry the ids, keys, producers and causation the services give them,
and a fixed `occurred_at`, so the same arguments always give the same bytes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from contracts import (
    AuditAlert,
    ClaimRequestRefused,
    CommandRejected,
    Contract,
    DischargeRecorded,
    EnrollPerson,
    PersonSnapshot,
    ProviderSnapshot,
    RegisterProvider,
    derived_event_id,
    encode,
    make_envelope,
)
from contracts.enrollment import ChangeCategories, RecordDeath, ResumePerson, SuspendPerson
from contracts.topics import (
    ALERTS,
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    ENROLLMENT_REJECTIONS,
    PERSONS,
    PROVIDERS,
    REFUSALS,
    STATEMENTS,
)
from policy import PolicyProfile, load_profile
from policy.calculators.assistance import AssistanceYearState
from policy.calculators.basic import BasicYearState
from policy.calculators.catastrophic import CatastrophicYearState
from policy.decisions import assistance, catastrophic
from policy.decisions import basic as settlement
from services.audit.alerts import alert_event_id
from services.audit.rules import MANUAL_REVIEW_SAMPLE, SOURCES, Finding
from services.enrollment.app import rules_of
from services.enrollment.domain import Registry
from tests.hostile.jsonbytes import dumps
from tools.hospital.publish import content_event_id

CLOCK = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
"""`occurred_at` (and `settled_at`, `detected_at`) of every envelope made here."""

PROFILE = "demo-county"

OWNER: dict[str, str] = {
    ENROLLMENT_COMMANDS: "enrollment",
    PERSONS: "settlement",  # its registry projection
    PROVIDERS: "settlement",
    DISCHARGES: "settlement",
    BASIC_SETTLED: "catastrophic",
    CATASTROPHIC_SETTLED: "assistance",
    STATEMENTS: "audit",
    REFUSALS: "audit",
    ENROLLMENT_REJECTIONS: "audit",
    ALERTS: "audit",
}
"""The one consumer that dead-letters each topic."""


def subject_of(topic: str, payload: Any) -> str | None:
    """What the Kafka key of a record on `topic` must be, from its payload (a JSON dict)."""
    if not isinstance(payload, dict):
        return None
    if topic == ENROLLMENT_COMMANDS:
        return payload.get("person_id") or payload.get("provider_id")
    if topic in (BASIC_SETTLED, CATASTROPHIC_SETTLED):
        claim = payload.get("claim")
        return claim.get("person_id") if isinstance(claim, dict) else None
    name = {PERSONS: "person_id", PROVIDERS: "provider_id", ENROLLMENT_REJECTIONS: "subject_id",
            DISCHARGES: "person_id", STATEMENTS: "person_id", REFUSALS: "person_id"}.get(topic)
    if name is not None:
        return payload.get(name)
    return payload.get("claim_id") or payload.get("alert_id")  # audit.alerts


def claim_of(topic: str, payload: Any) -> str | None:
    """The claim id a claim-topic payload is about (None elsewhere)."""
    if not isinstance(payload, dict):
        return None
    if topic == DISCHARGES:
        h, n = payload.get("hospital_id"), payload.get("hospital_claim_id")
        return f"{h}:{n}" if isinstance(h, str) and isinstance(n, str) else None
    if topic in (BASIC_SETTLED, CATASTROPHIC_SETTLED):
        claim = payload.get("claim")
        value = claim.get("claim_id") if isinstance(claim, dict) else None
    else:
        value = payload.get("claim_id") if topic in (STATEMENTS, REFUSALS, ALERTS) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Base:
    """One valid envelope as it is on the wire: topic, key (the subject) and the JSON tree."""

    topic: str
    key: str
    envelope: dict[str, Any]
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def event_id(self) -> str:
        return str(self.envelope["event_id"])

    @property
    def value(self) -> bytes:
        return dumps(self.envelope)


def _base(topic: str, key: str, payload: Contract, *, producer: str, event_id: uuid.UUID,
          correlation_id: str | None = None, causation_id: uuid.UUID | None = None) -> Base:
    env = make_envelope(payload, correlation_id=correlation_id or key, producer=producer, event_id=event_id,
                        causation_id=causation_id, occurred_at=CLOCK)
    return Base(topic, key, json.loads(encode(env)), (("event_type", type(payload).__name__.encode()),))


@dataclass
class Chain:
    """The platform's pure decisions in order: the registry, then the three layers and the audit."""

    profile: PolicyProfile = field(default_factory=lambda: load_profile(PROFILE))
    registry: Registry | None = None

    def __post_init__(self) -> None:
        if self.registry is None:
            self.registry = Registry(rules=rules_of(self.profile))

    def command(self, cmd: Contract) -> tuple[Base, Base]:
        """The command's envelope (as `tools.hospital.publish` sends it) and its outcome: a snapshot or a rejection."""
        assert self.registry is not None
        key = cmd.provider_id if isinstance(cmd, RegisterProvider) else cmd.person_id  # type: ignore[attr-defined]
        event_id = content_event_id(cmd)
        command = _base(ENROLLMENT_COMMANDS, key, cmd, producer="operator", event_id=event_id)
        outcome = self.registry.handle(cmd, str(event_id))  # type: ignore[arg-type]
        if outcome is None:
            raise ValueError("the same command twice: give it other content")
        if outcome.rejection is not None:
            r: CommandRejected = outcome.rejection
            return command, _base(ENROLLMENT_REJECTIONS, r.subject_id, r, producer="enrollment",
                                  event_id=derived_event_id("CommandRejected", r.command_event_id),
                                  correlation_id=r.subject_id or r.command_event_id)
        snap = outcome.snapshot
        if isinstance(snap, ProviderSnapshot):
            return command, _base(PROVIDERS, snap.provider_id, snap, producer="enrollment", causation_id=event_id,
                                  event_id=derived_event_id("ProviderSnapshot", f"{snap.provider_id}:{snap.version}"))
        assert isinstance(snap, PersonSnapshot)
        return command, _base(PERSONS, snap.person_id, snap, producer="enrollment", causation_id=event_id,
                              event_id=derived_event_id("PersonSnapshot", f"{snap.person_id}:{snap.version}"))

    def settle(self, d: DischargeRecorded) -> dict[str, Base]:
        """The discharge's envelope and what each layer and the audit make of it (fresh accumulators)."""
        assert self.registry is not None
        discharge_id = content_event_id(d)
        out = {DISCHARGES: _base(DISCHARGES, d.person_id, d, producer=f"hospital:{d.hospital_id}",
                                 event_id=discharge_id, correlation_id=d.claim_id)}
        basic = settlement.decide(d, str(discharge_id), self.registry.persons.get(d.person_id),
                                  self.registry.providers.get(d.hospital_id), self.profile, BasicYearState()).event
        basic_id = derived_event_id("BasicSettled", d.claim_id)
        out[BASIC_SETTLED] = _base(BASIC_SETTLED, d.person_id, basic, producer="settlement", event_id=basic_id,
                                   correlation_id=d.claim_id, causation_id=discharge_id)
        cat = catastrophic.decide(basic, self.profile, CatastrophicYearState()).event
        cat_id = derived_event_id("CatastrophicSettled", d.claim_id)
        out[CATASTROPHIC_SETTLED] = _base(CATASTROPHIC_SETTLED, d.person_id, cat, producer="catastrophic",
                                          event_id=cat_id, correlation_id=d.claim_id, causation_id=basic_id)
        statement = assistance.decide(cat, self.profile, AssistanceYearState(), CLOCK).statement
        out[STATEMENTS] = _base(STATEMENTS, d.person_id, statement, producer="assistance", correlation_id=d.claim_id,
                                event_id=derived_event_id("SettlementStatement", d.claim_id), causation_id=cat_id)
        request = uuid.uuid5(uuid.NAMESPACE_URL, f"reversal of {d.claim_id}")
        refusal = ClaimRequestRefused(request_event_id=str(request), request_type="ReversalRequested",
                                      claim_id=d.claim_id, hospital_claim_id=d.hospital_claim_id,
                                      hospital_id=d.hospital_id, person_id=d.person_id, reason_code="UNKNOWN_CLAIM",
                                      reason=f"claim {d.claim_id} was never settled: there is nothing to reverse")
        out[REFUSALS] = _base(REFUSALS, d.person_id, refusal, producer="settlement", correlation_id=d.claim_id,
                              event_id=derived_event_id("ClaimRequestRefused", str(request)))
        alert = Finding(MANUAL_REVIEW_SAMPLE, "info", {"sample_rate": "0.05"}, SOURCES[MANUAL_REVIEW_SAMPLE],
                        claim_id=d.claim_id, person_id=d.person_id, hospital_id=d.hospital_id).to_alert(CLOCK)
        out[ALERTS] = alert_base(alert, causation_id=discharge_id)
        return out


def alert_base(alert: AuditAlert, causation_id: uuid.UUID | None = None) -> Base:
    key = alert.claim_id or alert.alert_id
    return _base(ALERTS, key, alert, producer="audit", event_id=alert_event_id(alert.alert_id),
                 causation_id=causation_id)


# ------------------------------------------------------------------ the fuzz world


def fuzz_bases(persons: Sequence[EnrollPerson], providers: Sequence[RegisterProvider],
               discharges: Sequence[DischargeRecorded], extra_persons: Sequence[str]) -> dict[str, list[Base]]:
    """Valid envelopes of every topic to mutate.

    Claim topics: the given discharges of an enrolled population (`persons`, `providers`, which the
    run enrolls for real) and what the chain makes of them. Registry topics: commands for
    `extra_persons` (identity numbers nobody else uses, so a mutated command that is applied
    changes no one the valid discharges depend on), their snapshots and rejections."""
    from tests.integration.platform import enroll, provider

    chain = Chain()
    for cmd in [*providers, *persons]:
        chain.command(cmd)
    out: dict[str, list[Base]] = {t: [] for t in OWNER}
    for d in discharges:
        for topic, base in chain.settle(d).items():
            out[topic].append(base)
    fuzz = Chain()
    commands: list[Contract] = []
    for i, pid in enumerate(extra_persons):
        commands.append(enroll(pid, ("ordinary", "dibao", "disabled")[i % 3]) if i % 3 != 2 else
                        EnrollPerson(person_id=pid, name="测试", scheme="resident", categories=("disabled",),
                                     disability_grade=2, payment_date=date(2025, 11, 20), coverage_year=2026))
        match i % 5:
            case 1:
                commands.append(ChangeCategories(person_id=pid, categories=("tekun",), effective_date=date(2026, 3, 1)))
            case 2:
                commands += [SuspendPerson(person_id=pid, effective_date=date(2026, 2, 1), reason="外出务工"),
                             ResumePerson(person_id=pid, effective_date=date(2026, 4, 1))]
            case 3:
                commands.append(RecordDeath(person_id=pid, date_of_death=date(2026, 7, 9)))
            case 4:  # refused: a second enrollment with another payment (CONFLICT), a death before enrollment
                commands += [enroll(pid).model_copy(update={"payment_date": date(2025, 12, 5)}),
                             RecordDeath(person_id=pid, date_of_death=date(2020, 1, 1))]
    commands += [provider(f"FZH{i}", 1 + i % 3, ("in_pool", "in_province", "out_of_province")[i % 3], 20 + i)
                 for i in range(3)]
    commands.append(RecordDeath(person_id="110105194912310021", date_of_death=date(2026, 1, 1)))  # bad check digit
    for cmd in commands:
        command, outcome = fuzz.command(cmd)
        out[ENROLLMENT_COMMANDS].append(command)
        out[outcome.topic].append(outcome)
    return out
