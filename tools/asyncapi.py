"""The platform's AsyncAPI 3.0 document, generated from the code: `contracts/asyncapi.yaml`.

    ./medsettle contracts asyncapi            # write contracts/asyncapi.yaml
    ./medsettle contracts asyncapi --check    # exit 1 if the committed document is stale

Everything in it comes from the code, nothing is written by hand:
- channels: the topic registry (`contracts.topics.TOPICS`, `DEAD_LETTER_TOPICS`, the hospitals'
  `hospital.{hospital_id}.requests` and `.statements`), each with its key, partitions and cleanup
  policy (Kafka channel bindings);
- messages: one per payload model, the envelope (`contracts.envelope.Envelope`) wrapping the real
  payload schema — the same pydantic models as the committed JSON Schemas in `contracts/schemas/`,
  their definitions under `components.schemas` — with the Kafka key and the headers
  (`event_type`, the W3C `traceparent`); a dead letter is the original bytes with `dlt.*` headers;
- operations: who sends (`TopicSpec.producers`, the dead-letter owner `TopicSpec.dead_lettered_by`,
  the intake for the hospitals' statements) and who receives (each service's subscriptions and
  projections as its `ServiceSpec` declares them, with its consumer group).

FastStream's own AsyncAPI generation cannot see our payloads (the services decode each record
themselves, so that one bad record is dead-lettered instead of failing a batch), hence this one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from pydantic.json_schema import models_json_schema

from contracts.codec import EVENT_TYPES
from contracts.envelope import Envelope
from contracts.topics import (
    DEAD_LETTER_TOPICS,
    HOSPITAL_PRODUCER,
    HOSPITAL_REQUESTS,
    HOSPITAL_REQUESTS_DLT,
    HOSPITAL_TOPIC_CONFIG,
    HOSPITAL_TOPIC_PARTITIONS,
    TOPICS,
    TopicSpec,
    dead_letter_topic,
    hospital_requests_topic,
    hospital_statements_topic,
)
from runtime.app import ServiceContext
from runtime.settings import SERVICES, load_settings

DOCUMENT = Path(__file__).resolve().parent.parent / "contracts" / "asyncapi.yaml"
KAFKA_BINDING = "0.5.0"
HOSPITAL_PARAMETER = "{hospital_id}"
HOSPITAL_REQUESTS_CHANNEL = hospital_requests_topic(HOSPITAL_PARAMETER)
HOSPITAL_STATEMENTS_CHANNEL = hospital_statements_topic(HOSPITAL_PARAMETER)
ANSWERS = ("SettlementStatement", "SettlementAdjusted", "SettlementReversed", "ClaimRequestRefused")
"""What the intake copies to a hospital's statements topic."""
DEAD_LETTER = "DeadLetter"
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


@dataclass(frozen=True)
class Receiver:
    service: str
    topic: str
    """the subscription's name (a hospital's requests topic: `HOSPITAL_REQUESTS`)"""
    payloads: tuple[str, ...]
    group: str | None
    """its consumer group (None: a projection, which reads without one)"""


def receivers() -> list[Receiver]:
    """Every service's inputs, as its `ServiceSpec` declares them (subscriptions and projections)."""
    from services.assistance.app import SPEC as ASSISTANCE
    from services.audit.app import SPEC as AUDIT
    from services.catastrophic.app import SPEC as CATASTROPHIC
    from services.enrollment.app import SPEC as ENROLLMENT
    from services.gateway.app import SPEC as GATEWAY
    from services.intake.app import SPEC as INTAKE
    from services.settlement.app import SPEC as SETTLEMENT

    out: list[Receiver] = []
    for spec in (ENROLLMENT, INTAKE, SETTLEMENT, CATASTROPHIC, ASSISTANCE, AUDIT, GATEWAY):
        settings = load_settings(spec.name, topic_prefix="", kafka_username=spec.name,
                                 kafka_password=SecretStr("not-used"))  # the document names the security, no client connects
        ctx = ServiceContext(settings=settings, broker=None, publisher=None)  # type: ignore[arg-type]  # nothing runs
        for sub in spec.subscriptions(ctx):
            out.append(Receiver(spec.name, sub.topic, tuple(m.__name__ for m in sub.expected),
                                f"{settings.consumer_group}.{sub.topic}"))
        for p in spec.projections:
            out.append(Receiver(spec.name, p.topic, (p.model.__name__,), None))
    return out


def _schemas() -> tuple[dict[str, str], dict[str, Any]]:
    """The envelope of every payload model as JSON Schema: the envelope's schema name per event
    type, and every definition (refs point into `components.schemas`)."""
    keys, defs = models_json_schema([(Envelope[EVENT_TYPES[t]], "validation") for t in sorted(EVENT_TYPES)],  # type: ignore[valid-type]
                                    ref_template="#/components/schemas/{model}")
    names = {t: str(ref["$ref"]).rsplit("/", 1)[-1] for t, ((_, _), ref) in zip(sorted(EVENT_TYPES), keys.items(),
                                                                                  strict=True)}
    return names, defs.get("$defs", {})


def _channel_id(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "", address)


def _kafka_topic_binding(spec: TopicSpec) -> dict[str, Any]:
    config: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
    if "retention.ms" in spec.config:
        config["retention.ms"] = int(spec.config["retention.ms"])
    return {"kafka": {"partitions": spec.partitions, "topicConfiguration": config, "bindingVersion": KAFKA_BINDING}}


def _message(event_type: str, envelope_schema: str, key: str) -> dict[str, Any]:
    model = EVENT_TYPES[event_type]
    doc = (model.__doc__ or event_type).strip()
    return {
        "name": event_type,
        "title": event_type,
        "summary": doc.splitlines()[0],
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/RecordHeaders"},
        "payload": {"$ref": f"#/components/schemas/{envelope_schema}"},
        "bindings": {"kafka": {"key": {"type": "string", "description": key}, "bindingVersion": KAFKA_BINDING}},
        "x-schema-version": model.SCHEMA_VERSION,
        "x-json-schema": f"contracts/schemas/{event_type}.v{model.SCHEMA_VERSION}.json",
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": DEAD_LETTER,
        "title": "Dead letter",
        "summary": "A record its consumer could not process: the original key, value and headers, plus the reason.",
        "description": ("The value is the original record's bytes (a record that would not fit keeps its first "
                        "64 KiB, with dlt.truncated, dlt.original.length and dlt.original.sha256). See "
                        "docs/architecture.md, \"Bad input and failures\"."),
        "contentType": "application/octet-stream",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"type": "string", "format": "binary", "description": "the original record's value"},
        "bindings": {"kafka": {"key": {"type": "string", "description": "the original record's key"},
                               "bindingVersion": KAFKA_BINDING}},
    }


def _header_schemas() -> dict[str, Any]:
    record = {
        "type": "object",
        "description": "Headers of every record the platform writes.",
        "properties": {
            "event_type": {"type": "string", "description": "the payload model's name (cheap routing)"},
            "traceparent": {"type": "string", "pattern": TRACEPARENT_PATTERN,
                            "description": "W3C Trace Context of the span that caused the record (runtime/tracing.py)"},
            "tracestate": {"type": "string", "description": "W3C Trace Context vendor state, when there is one"},
        },
    }
    dead = {
        "type": "object",
        "description": "The original record's headers, plus the reason it was dead-lettered.",
        "properties": {
            "dlt.reason": {"type": "string"},
            "dlt.field": {"type": "string"},
            "dlt.service": {"type": "string"},
            "dlt.original.topic": {"type": "string"},
            "dlt.original.partition": {"type": "string"},
            "dlt.original.offset": {"type": "string"},
            "dlt.truncated": {"type": "string"},
            "dlt.original.length": {"type": "string"},
            "dlt.original.sha256": {"type": "string"},
        },
    }
    return {"RecordHeaders": record, "DeadLetterHeaders": dead}


def _senders(spec: TopicSpec) -> list[str]:
    """Who writes a topic, as applications: services by name, hospitals and operators as clients."""
    out: list[str] = []
    for producer in spec.producers:
        if producer == HOSPITAL_PRODUCER:
            out += ["intake", "operator"]  # the intake as `hospital:<id>`; operators' back-fill (publish --direct)
        else:
            out.append(producer)
    return list(dict.fromkeys(out))


def document() -> dict[str, Any]:
    names, defs = _schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def channel(address: str, title: str, description: str, payloads: Iterable[str], key: str,
                bindings: dict[str, Any], parameters: dict[str, Any] | None = None) -> str:
        cid = _channel_id(address)
        refs: dict[str, Any] = {}
        for p in payloads:
            if p not in messages:
                messages[p] = _message(p, names[p], key) if p != DEAD_LETTER else _dead_letter_message()
            refs[p] = {"$ref": f"#/components/messages/{p}"}
        channels[cid] = {"address": address, "title": title, "description": description, "messages": refs,
                         "bindings": bindings, **({"parameters": parameters} if parameters else {})}
        return cid

    def operation(app: str, action: str, cid: str, payloads: Sequence[str], group: str | None = None) -> None:
        op: dict[str, Any] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"{app} {'sends' if action == 'send' else 'receives'} {channels[cid]['address']}",
            "messages": [{"$ref": f"#/channels/{cid}/messages/{p}"} for p in payloads],
            "tags": [{"name": app}],
        }
        if group is not None:
            op["bindings"] = {"kafka": {"groupId": {"type": "string", "enum": [group]}, "bindingVersion": KAFKA_BINDING}}
        operations[f"{app}.{action}.{cid}"] = op

    hospital_param = {"hospital_id": {"description": "the hospital's provider id (its Kafka principal may use "
                                                     "only its own two topics)"}}
    inputs = receivers()
    for spec in TOPICS:
        cid = channel(spec.name, spec.name, f"Key: {spec.key}. Partitions: {spec.partitions}, cleanup "
                      f"{spec.cleanup_policy}. What no consumer can read goes to {dead_letter_topic(spec.name)} "
                      f"(dead-lettered by {spec.dead_lettered_by}).", spec.payloads, spec.key,
                      _kafka_topic_binding(spec))
        for app in _senders(spec):
            operation(app, "send", cid, spec.payloads)
        for r in inputs:
            if r.topic == spec.name:
                operation(r.service, "receive", cid, [p for p in spec.payloads if p in r.payloads], r.group)
    requests = TopicSpec(HOSPITAL_REQUESTS_CHANNEL, "person id", HOSPITAL_TOPIC_PARTITIONS, "delete",
                         ("DischargeRecorded", "DischargeCorrected", "ReversalRequested"), dict(HOSPITAL_TOPIC_CONFIG))
    cid = channel(requests.name, "a hospital's requests",
                  "Written only by that hospital; the intake moves each request to claims.discharges as from "
                  f"the hospital (pattern subscription; dead letters on {HOSPITAL_REQUESTS_DLT}). Key: person id.",
                  requests.payloads, requests.key, _kafka_topic_binding(requests), hospital_param)
    operation("hospital", "send", cid, requests.payloads)
    for r in inputs:
        if r.topic == HOSPITAL_REQUESTS:
            operation(r.service, "receive", cid, [p for p in requests.payloads if p in r.payloads], r.group)
    statements = TopicSpec(HOSPITAL_STATEMENTS_CHANNEL, "person id", HOSPITAL_TOPIC_PARTITIONS, "delete", ANSWERS,
                           dict(HOSPITAL_TOPIC_CONFIG))
    cid = channel(statements.name, "a hospital's statements",
                  "Copies of the hospital's statements, adjustments, reversals and refusals, written by the "
                  "intake, readable only by that hospital. Key: person id.", statements.payloads, statements.key,
                  _kafka_topic_binding(statements), hospital_param)
    operation("intake", "send", cid, statements.payloads)
    operation("hospital", "receive", cid, statements.payloads)
    owners = {dead_letter_topic(t.name): t.dead_lettered_by for t in TOPICS}
    owners[HOSPITAL_REQUESTS_DLT] = "intake"
    for spec in DEAD_LETTER_TOPICS:
        cid = channel(spec.name, spec.name, f"Dead letters: {spec.key}; the reason in the dlt.* headers.",
                      (DEAD_LETTER,), spec.key, _kafka_topic_binding(spec))
        if owners.get(spec.name):
            operation(str(owners[spec.name]), "send", cid, (DEAD_LETTER,))
        operation("operator", "receive", cid, (DEAD_LETTER,))

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "medsettle",
            "version": f"contracts v{max(m.SCHEMA_VERSION for m in EVENT_TYPES.values())}",
            "description": ("One-stop settlement (一站式结算) of basic insurance, critical-illness insurance and "
                            "medical assistance over Apache Kafka. Every value is a JSON envelope (event_id, "
                            "event_type, schema_version, occurred_at, correlation_id, causation_id, producer) "
                            "wrapping the payload; money is a decimal string with two places. Generated from "
                            "the code by `./medsettle contracts asyncapi`: do not edit."),
            "tags": [{"name": s} for s in (*SERVICES, "hospital", "operator")],
        },
        "servers": {"local": {"host": "127.0.0.1:19092", "protocol": "kafka",
                              "description": "the local stack (./medsettle stack start; its port may differ)"}},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {**_header_schemas(), **defs}, "messages": messages},
    }


def render(doc: dict[str, Any]) -> str:
    header = "# Generated by `./medsettle contracts asyncapi` from contracts/ and services/: do not edit.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def stale(path: Path = DOCUMENT) -> bool:
    return not path.exists() or path.read_text(encoding="utf-8") != render(document())


def write(path: Path = DOCUMENT) -> bool:
    """Write the document; returns whether it changed."""
    text = render(document())
    changed = not path.exists() or path.read_text(encoding="utf-8") != text
    if changed:
        path.write_text(text, encoding="utf-8")
    return changed
