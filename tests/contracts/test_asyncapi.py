"""The committed AsyncAPI 3.0 document (`contracts/asyncapi.yaml`) is current, is valid AsyncAPI
3.0, and describes the real payloads: every event the contracts accept validates against its
message's payload schema, and a broken one does not.

Validity is checked here against the AsyncAPI 3.0.0 JSON Schema of the AsyncAPI initiative
(`asyncapi-3.0.0.schema.json` beside this file: `schemas/3.0.0.json` of the npm package
`@asyncapi/specs` 6.11.1, Apache-2.0), and in CI also by the initiative's parser
(`tools/asyncapi-validate`, `@asyncapi/parser`), which checks what a JSON Schema cannot (references,
operations' messages belonging to their channel).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from contracts import encode
from contracts.codec import EVENT_TYPES
from contracts.topics import DEAD_LETTER_TOPICS, TOPICS
from tests.contract_extremes import extreme, extreme_envelope
from tools import asyncapi

HERE = Path(__file__).parent


@cache
def committed() -> dict[str, Any]:
    return yaml.safe_load(asyncapi.DOCUMENT.read_text(encoding="utf-8"))


def test_the_committed_document_is_current() -> None:
    assert not asyncapi.stale(), "run: ./medsettle contracts asyncapi"


def test_it_is_valid_asyncapi_3() -> None:
    schema = json.loads((HERE / "asyncapi-3.0.0.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(committed())]
    assert errors == []
    broken = copy.deepcopy(committed())
    broken["channels"]["claims.discharges"]["address"] = 6
    broken["operations"]["settlement.receive.claims.discharges"]["action"] = "consume"
    assert len(list(validator.iter_errors(broken))) >= 2  # the validator does see a broken document


def _resolve(ref: str) -> Any:
    node: Any = committed()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [r for k, v in node.items() for r in ([v] if k == "$ref" else _refs(v))]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves() -> None:
    refs = _refs(committed())
    assert len(refs) > 100
    for ref in set(refs):
        assert ref.startswith("#/"), ref
        _resolve(ref)  # raises KeyError if it points nowhere


def test_every_topic_is_a_channel_with_its_payloads_and_key() -> None:
    channels = {c["address"]: c for c in committed()["channels"].values()}
    for spec in TOPICS:
        assert set(channels[spec.name]["messages"]) == set(spec.payloads), spec.name
        assert channels[spec.name]["bindings"]["kafka"]["partitions"] == spec.partitions
        for name in spec.payloads:
            assert _resolve(channels[spec.name]["messages"][name]["$ref"])["bindings"]["kafka"]["key"]["description"]
    for spec in DEAD_LETTER_TOPICS:
        assert set(channels[spec.name]["messages"]) == {"DeadLetter"}
    assert "hospital.{hospital_id}.requests" in channels and "hospital.{hospital_id}.statements" in channels


def test_senders_and_receivers_follow_the_registry_and_the_services() -> None:
    ops = committed()["operations"]
    assert ops["settlement.receive.claims.discharges"]["bindings"]["kafka"]["groupId"]["enum"] == [
        "medsettle.settlement.claims.discharges"]
    assert ops["assistance.send.claims.statements"]["action"] == "send"
    assert "settlement.receive.enrollment.persons" in ops  # a projection
    assert "intake.receive.hospital.hospital_id.requests" in ops
    assert "hospital.send.hospital.hospital_id.requests" in ops
    for spec in TOPICS:
        assert f"audit.receive.{spec.name}" in ops, spec.name  # the audit reads every registry topic
        if spec.dead_lettered_by:
            assert f"{spec.dead_lettered_by}.send.{spec.name}.dlt" in ops


def _payload_validator(event_type: str) -> jsonschema.protocols.Validator:
    message = committed()["components"]["messages"][event_type]
    root = {"$ref": message["payload"]["$ref"], "components": committed()["components"]}
    return jsonschema.Draft202012Validator(root)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_message_payload_is_the_real_envelope_and_payload(event_type: str) -> None:
    validator = _payload_validator(event_type)
    event = json.loads(encode(extreme_envelope(extreme(EVENT_TYPES[event_type]))))
    assert [e.message[:200] for e in validator.iter_errors(event)] == []
    for field in ("event_id", "payload"):
        broken = dict(event)
        del broken[field]
        assert not validator.is_valid(broken), field
    payload = event["payload"]
    name = next(k for k, v in payload.items() if isinstance(v, str))
    assert not validator.is_valid({**event, "payload": {**payload, name: 12345}}), f"payload.{name} as a number"
