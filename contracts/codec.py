"""Encoding and decoding of envelopes, with errors that say exactly what is wrong."""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts.audit import AuditAlert
from contracts.claims import DischargeRecorded
from contracts.enrollment import (
    ENROLLMENT_COMMANDS,
    CommandRejected,
    PersonSnapshot,
    ProviderSnapshot,
)
from contracts.envelope import Contract, Envelope
from contracts.settlement import BasicSettled, CatastrophicSettled, SettlementStatement

EVENT_TYPES: dict[str, type[Contract]] = {
    m.__name__: m
    for m in (
        *ENROLLMENT_COMMANDS,
        PersonSnapshot,
        ProviderSnapshot,
        CommandRejected,
        DischargeRecorded,
        BasicSettled,
        CatastrophicSettled,
        SettlementStatement,
        AuditAlert,
    )
}
"""Every payload model on the wire, by `event_type`."""


class ContractError(ValueError):
    """A message that does not satisfy the contracts. `field` is the first failing field, if known."""

    def __init__(self, reason: str, *, field: str | None = None, event_type: str | None = None,
                 envelope: Envelope[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.event_type = event_type
        self.envelope = envelope


def _describe(error: ValidationError, prefix: str = "") -> tuple[str, str | None]:
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) if first["loc"] else None
    field = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or None)
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{field or 'message'}: {first['msg']}{more}", field


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode()


def decode_envelope(raw: bytes | str) -> Envelope[dict[str, Any]]:
    """Parse the envelope, leaving the payload as a dict (for callers that validate it themselves)."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError("the message is not a JSON object")
    try:
        return Envelope[dict[str, Any]].model_validate(data)
    except ValidationError as exc:
        reason, field = _describe(exc)
        raise ContractError(f"bad envelope: {reason}", field=field) from None


def decode_payload(envelope: Envelope[dict[str, Any]], *expected: type[Contract]) -> Contract:
    """Validate the payload of an envelope against the model its `event_type` names."""
    model = EVENT_TYPES.get(envelope.event_type)
    if model is None or (expected and model not in expected):
        allowed = ", ".join(m.__name__ for m in expected) if expected else ", ".join(EVENT_TYPES)
        raise ContractError(f"unexpected event_type {envelope.event_type!r} (expected {allowed})",
                            field="event_type", event_type=envelope.event_type, envelope=envelope)
    if envelope.schema_version > model.SCHEMA_VERSION:
        raise ContractError(
            f"{envelope.event_type} schema_version {envelope.schema_version} is newer than this service knows "
            f"({model.SCHEMA_VERSION})", field="schema_version", event_type=envelope.event_type, envelope=envelope)
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        reason, field = _describe(exc, "payload.")
        raise ContractError(f"invalid {envelope.event_type}: {reason}", field=field,
                            event_type=envelope.event_type, envelope=envelope) from None


@functools.cache
def _typed(model: type[Contract]) -> type[Envelope[Any]]:
    return Envelope[model]  # type: ignore[valid-type]


def decode(raw: bytes | str, *expected: type[Contract]) -> Envelope[Any]:
    """Envelope plus validated payload; raises `ContractError` with the reason.

    With one expected type the message is parsed straight into the typed envelope (pydantic's
    JSON parser, no intermediate dict); anything unusual falls back to the step-by-step path,
    which names the failing field."""
    if len(expected) == 1:
        try:
            env = _typed(expected[0]).model_validate_json(raw)
            if env.event_type == expected[0].__name__ and env.schema_version <= expected[0].SCHEMA_VERSION:
                return env
        except ValidationError:
            pass
    env = decode_envelope(raw)
    payload = decode_payload(env, *expected)
    return env.model_copy(update={"payload": payload})


def model_for(event_type: str) -> type[BaseModel]:
    return EVENT_TYPES[event_type]
