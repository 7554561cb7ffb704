"""The audit's batch handler: every consumed record goes to the append-only event store (事件存档);
registry snapshots and the hospitals' requests (discharges, corrections, reversals) also update the
rules' state, and the fund-supervision rules (稽核规则) run on what is new, raising alerts in the
same transaction.

A record whose payload broke its contract is stored with the error (the audit keeps everything it
saw) but no rule runs on it. No person's name is ever stored (`payload_dict`): names stay in
enrollment. Rules run once per event id and topic (`processed_event`), so a
redelivered batch or a re-sent event changes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from contracts import DischargeRecorded, PersonSnapshot, ReversalRequested
from contracts.envelope import Contract, now
from contracts.limits import printable
from contracts.topics import DISCHARGES, ENROLLMENT_COMMANDS, PERSONS, PROVIDERS
from policy.profile import AuditPolicy
from runtime.logging import get_logger
from runtime.unit_of_work import Inbound, PostgresUnitOfWork
from services.audit import integrity, rules, store
from services.audit.alerts import raise_alerts

log = get_logger("audit.handlers")


INVALID_PAYLOAD_CHARS = 16_000
"""What the event store keeps of a payload that broke its contract (as escaped JSON text)."""


PROVIDER_PAYLOADS = frozenset({"RegisterProvider", "ProviderSnapshot"})
"""The payloads whose `name` is a hospital's, not a person's."""


def _not_kept(event_type: str) -> set[str] | None:
    """The fields of a valid payload the audit does not store: a person's name."""
    return {"name"} if event_type == "EnrollPerson" else None


def payload_dict(msg: Inbound, topic: str = "") -> dict[str, Any]:
    """The payload as stored: the validated model, or for a payload that broke its contract a
    bounded, escaped copy of what was sent (it may hold anything a client can put in JSON).

    Never a person's name (names stay in enrollment): an `EnrollPerson` is kept without its `name`,
    so is any payload that broke its contract (but a hospital's, whose `name` is the hospital's), and
    an enrollment command that is not even a JSON object, or too long to be kept as one, only by its
    length. What the audit needs of a command (its ids, its person, its dates) it keeps."""
    payload = msg.payload
    event_type = msg.envelope.event_type
    if isinstance(payload, Contract):
        return payload.model_dump(mode="json", exclude=_not_kept(event_type))
    if isinstance(payload, dict) and event_type not in PROVIDER_PAYLOADS:
        payload = {k: v for k, v in payload.items() if k != "name"}
    text = json.dumps(payload, ensure_ascii=True, default=repr)
    if isinstance(payload, dict) and len(text) <= INVALID_PAYLOAD_CHARS and "\\u0000" not in text:
        return payload  # as sent: reconciliation compares its fields
    if event_type == "EnrollPerson" or topic == ENROLLMENT_COMMANDS:
        return {"invalid_payload": "(not kept: an enrollment command may carry a person's name)", "length": len(text)}
    return {"invalid_payload": text[:INVALID_PAYLOAD_CHARS], "length": len(text)}


def claim_id_in(event_type: str, payload: dict[str, Any]) -> str | None:
    """The claim an event is about, from its payload (None for registry events)."""
    def text(value: Any) -> str | None:  # the payload may have broken its contract: bound what is kept
        return printable(value, 120) if isinstance(value, str) and value else None

    if event_type in CLAIM_REQUESTS:
        hospital, number = text(payload.get("hospital_id")), text(payload.get("hospital_claim_id"))
        return f"{hospital}:{number}" if hospital and number else None
    if event_type in ("BasicSettled", "CatastrophicSettled"):
        claim = payload.get("claim")
        return text(claim.get("claim_id")) if isinstance(claim, dict) else None
    if event_type in CLAIM_ID_FIELD:
        return text(payload.get("claim_id"))
    return None


CLAIM_REQUESTS = frozenset({"DischargeRecorded", "DischargeCorrected", "ReversalRequested"})
"""A hospital's requests about a claim: the claim id is `<hospital_id>:<hospital_claim_id>`."""
CLAIM_ID_FIELD = frozenset({"SettlementStatement", "SettlementAdjusted", "SettlementReversed", "ClaimRequestRefused",
                            "AuditAlert"})
"""Events that name their claim in `claim_id`."""


def claim_head(payload: Any) -> dict[str, Any]:
    """The ids a payload names (its claim's too), as `claim_id_in` and the integrity rules read
    them: of a validated model without dumping it, of a payload that broke its contract as sent."""
    if not isinstance(payload, Contract):
        return payload if isinstance(payload, dict) else {}
    fields = payload.__dict__  # the model's fields (a missing attribute costs pydantic an exception)
    head: dict[str, Any] = {k: fields.get(k) for k in ("claim_id", "person_id", "hospital_id", "hospital_claim_id")}
    if isinstance(claim := fields.get("claim"), Contract):
        head["claim"] = claim_head(claim)
    return head


def event_row(msg: Inbound, topic: str) -> store.EventRow:
    env = msg.envelope
    if isinstance(msg.payload, Contract):  # one dump, by pydantic's serializer (the jsonb normalises it)
        payload_json = msg.payload.model_dump_json(exclude=_not_kept(env.event_type))
    else:
        payload_json = json.dumps(payload_dict(msg, topic), ensure_ascii=False)
    return store.EventRow(
        topic=topic, partition=msg.partition, offset=msg.offset,
        key=printable(msg.key, 200) if msg.key is not None else None, event_type=env.event_type,
        event_id=env.event_id, schema_version=env.schema_version, correlation_id=env.correlation_id,
        causation_id=env.causation_id, producer=env.producer,
        claim_id=claim_id_in(env.event_type, claim_head(msg.payload)),
        occurred_at=env.occurred_at, payload_json=payload_json,
        error=str(getattr(msg.error, "reason", msg.error)) if msg.error is not None else None)


class AuditHandler:
    """Stores a batch of one topic and applies the rules to what it has not seen before."""

    def __init__(self, policy: AuditPolicy, clock: Callable[[], datetime] = now) -> None:
        self.policy = policy
        self.clock = clock

    async def __call__(self, uow: PostgresUnitOfWork, batch: list[Inbound]) -> None:
        topic = batch[0].topic.removeprefix(uow.topic_prefix)
        rows = [event_row(m, topic) for m in batch]
        await store.append_events(uow.conn, rows)
        # a re-sent event counts once
        new = await uow.new_only(batch, lambda m: f"{topic}:{m.envelope.event_id}")
        await self._integrity(uow, topic, rows, batch, {m.envelope.event_id for m in new})
        fresh = [m for m in new if m.error is None]
        if not fresh:
            return
        if topic == PERSONS:
            await self._registry_versions("person", [(m.payload.person_id, m) for m in fresh], uow)
            await self._persons([m.payload for m in fresh], uow)
        elif topic == PROVIDERS:
            await self._registry_versions("provider", [(m.payload.provider_id, m) for m in fresh], uow)
            await store.upsert_providers(uow.conn, [m.payload for m in fresh])
        elif topic == DISCHARGES:
            await self._discharges(fresh, uow)

    async def _integrity(self, uow: PostgresUnitOfWork, topic: str, rows: list[store.EventRow],
                         batch: list[Inbound], new: set[uuid.UUID]) -> None:
        """Forged events (`integrity`): an event id stored again with other content, a producer
        that does not own the topic."""
        findings = integrity.event_id_conflicts(await store.repeated_events(uow.conn, (r.event_id for r in rows)))
        for r, m in zip(rows, batch, strict=True):
            if r.event_id in new:  # the producer rule reads only the ids the payload names
                event = integrity.StoredEvent(r.event_id, topic, r.partition, r.offset, r.event_type, r.producer,
                                              claim_head(m.payload))
                if (f := integrity.unexpected_producer(topic, event)) is not None:
                    findings.append(f)
        if findings:
            raised = await raise_alerts(uow, findings, self.clock())
            if raised:
                log.warning("integrity alerts raised", topic=topic, rules=sorted({a.rule for a in raised}))

    async def _registry_versions(self, kind: str, snapshots: list[tuple[str, Inbound]], uow: PostgresUnitOfWork
                                 ) -> None:
        """Snapshots that cannot follow the last version seen of their subject, in order."""
        known: dict[str, int] = await store.registry_versions(uow.conn, kind, (s for s, _ in snapshots))
        findings = []
        for subject, m in snapshots:
            version = m.payload.version
            if (f := integrity.registry_version_jump(kind, subject, known.get(subject), version,
                                                     m.envelope.event_id)) is not None:
                findings.append(f)
            known[subject] = max(version, known.get(subject, version))
        if findings:
            await raise_alerts(uow, findings, self.clock())
            log.warning("registry snapshots out of sequence", kind=kind, count=len(findings))

    async def _persons(self, snapshots: list[PersonSnapshot], uow: PostgresUnitOfWork) -> None:
        changed = await store.upsert_persons(uow.conn, snapshots)
        if not changed:
            return
        persons = await store.load_persons(uow.conn, changed)
        stays = await store.stays_of_persons(uow.conn, changed)
        findings = [f for pid, person in persons.items() for f in rules.person_findings(person, stays.get(pid, ()),
                                                                                          self.policy)]
        raised = await raise_alerts(uow, findings, self.clock())
        if raised:
            log.info("alerts raised on a registry change", count=len(raised))

    async def _discharges(self, messages: list[Inbound], uow: PostgresUnitOfWork) -> None:
        """Discharges, corrections and reversals, in order: the stays change as settlement accepts the
        requests (`rules.apply_request`), then the rules judge what changed."""
        stays = await store.load_stays(uow.conn, (m.payload.claim_id for m in messages))
        first_event: dict[str, uuid.UUID] = {}
        changed_by: dict[str, uuid.UUID] = {}
        bills: list[DischargeRecorded] = []  # every accepted content, in order
        reversals: list[rules.Reversal] = []
        causation: dict[str, uuid.UUID] = {}
        for m in messages:
            request, claim = m.payload, m.payload.claim_id
            applied = rules.apply_request(stays.get(claim), request, m.envelope.producer)
            if applied is None:
                continue
            stay, change = applied
            stays[claim] = stay
            causation[claim] = m.envelope.event_id
            if change == "new":
                first_event[claim] = m.envelope.event_id
            else:
                changed_by[claim] = m.envelope.event_id
            if isinstance(request, ReversalRequested):
                reversals.append(rules.Reversal(claim, stay.hospital_id, stay.person_id, m.envelope.occurred_at,
                                                stay.discharge, m.envelope.event_id))
            else:
                bills.append(request)
        touched = [*first_event, *(c for c in changed_by if c not in first_event)]
        if not touched:
            return
        await store.save_stays(uow.conn, [store.StayWrite(stays[c], first_event.get(c) or changed_by[c],
                                                          changed_by.get(c)) for c in touched])
        judged = {d.claim_id for d in bills}
        findings = [f for d in bills for f in rules.bill_findings(d, self.policy)]
        findings += await self._stay_findings([stays[c] for c in touched if c in judged and not stays[c].reversed],
                                              uow)
        findings += await self._reversal_findings(reversals, uow)
        raised = await raise_alerts(uow, findings, self.clock(), causation)
        log.debug("claim requests audited", claims=len(touched), reversals=len(reversals), alerts=len(raised))

    async def _stay_findings(self, todo: list[rules.Stay], uow: PostgresUnitOfWork) -> list[rules.Finding]:
        """The stay rules on new, corrected and reinstated stays, against the stays as they are now."""
        if not todo:
            return []
        person_stays = await store.stays_of_persons(uow.conn, (s.person_id for s in todo))
        persons = await store.load_persons(uow.conn, (s.person_id for s in todo))
        beds = await store.licensed_beds(uow.conn, (s.hospital_id for s in todo))
        nightly = await store.inpatients_per_night(uow.conn, [s for s in todo if s.hospital_id in beds])
        over = {s.claim_id: [n for n, count in nightly.get(s.claim_id, {}).items() if count > beds[s.hospital_id]]
                for s in todo if s.hospital_id in beds}
        crowded = await store.occupants(uow.conn, ((s.hospital_id, n) for s in todo for n in over.get(s.claim_id, ())))
        findings = []
        for s in todo:
            context = rules.DischargeContext(
                person_stays=person_stays.get(s.person_id, ()), person=persons.get(s.person_id),
                licensed_beds=beds.get(s.hospital_id),
                occupants_per_night={n: crowded[(s.hospital_id, n)] for n in over.get(s.claim_id, ())})
            findings += rules.stay_findings(s, context, self.policy)
        return findings

    async def _reversal_findings(self, reversals: list[rules.Reversal], uow: PostgresUnitOfWork
                                 ) -> list[rules.Finding]:
        """The reversal-pattern rules: each reversal's delay, each hospital-day's count."""
        if not reversals:
            return []
        await store.insert_reversals(uow.conn, reversals)
        days = sorted({(r.hospital_id, r.day) for r in reversals})
        known = await store.reversals_on(uow.conn, days)
        findings = [f for r in reversals if (f := rules.late_reversal(r, self.policy))]
        findings += [f for hospital, day in days if (f := rules.reversal_burst(hospital, day, known, self.policy))]
        return findings
