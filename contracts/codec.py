"""Encoding and decoding of envelopes, with errors that say exactly what is wrong."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import msgspec
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from contracts import native
from contracts.audit import AuditAlert
from contracts.claims import CLAIM_REQUEST_MODELS
from contracts.enrollment import (
    ENROLLMENT_COMMAND_MODELS,
    CommandRejected,
    PersonSnapshot,
    ProviderSnapshot,
)
from contracts.envelope import Contract, Envelope
from contracts.limits import MAX_RECORD_BYTES, NO_CONTROL_CHARACTERS, printable
from contracts.settlement import (
    BasicSettled,
    CatastrophicSettled,
    ClaimRequestRefused,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
)

_MODELS: tuple[type[Contract], ...] = (
    *ENROLLMENT_COMMAND_MODELS, PersonSnapshot, ProviderSnapshot, CommandRejected, *CLAIM_REQUEST_MODELS,
    ClaimRequestRefused, BasicSettled, CatastrophicSettled, SettlementStatement, SettlementAdjusted,
    SettlementReversed, AuditAlert,
)
EVENT_TYPES: dict[str, type[Contract]] = {m.__name__: m for m in _MODELS}
"""Every payload model on the wire, by `event_type`."""

P = ParamSpec("P")
R = TypeVar("R")


class ContractError(ValueError):
    """A message that does not satisfy the contracts: the one error decoding raises, whatever was
    wrong with the bytes. `field` is the first failing field, if known. Reason and field are
    printable and bounded (they echo what a client sent, and travel in headers and tables)."""

    def __init__(self, reason: str, *, field: str | None = None, event_type: str | None = None,
                 envelope: Envelope[dict[str, Any]] | None = None) -> None:
        reason = printable(reason, 500)
        super().__init__(reason)
        self.reason = reason
        self.field = printable(field, 200) if field else None
        self.event_type = printable(event_type, 64) if event_type else None
        self.envelope = envelope


_FRIENDLY = {NO_CONTROL_CHARACTERS: "must not contain control characters"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RANGE_ERRORS = frozenset({"less_than", "less_than_equal", "greater_than", "greater_than_equal", "too_long",
                           "too_short", "string_too_long", "decimal_max_digits"})


def _describe(error: ValidationError, prefix: str = "") -> tuple[str, str | None]:
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) if first["loc"] else None
    field = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or None)
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    msg = first["msg"]
    value = first.get("input")
    if first["type"] == "string_pattern_mismatch":
        pattern = (first.get("ctx") or {}).get("pattern", "")
        if isinstance(value, str) and _CONTROL.search(value):
            msg = _FRIENDLY[NO_CONTROL_CHARACTERS]
        else:
            msg = _FRIENDLY.get(pattern, f"does not match the pattern {pattern}")
    elif first["type"] in _RANGE_ERRORS:
        msg = f"{msg}: out of the accepted range (see contracts.limits)"
    return f"{field or 'message'}: {msg}{more}", field


def _guarded(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Whatever goes wrong inside becomes a `ContractError`: decoding never raises anything else
    (a RecursionError, a MemoryError on absurd input, a bug in a validator)."""
    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except ContractError:
                raise
            except Exception as exc:  # noqa: BLE001 - decoding raises nothing but ContractError
                raise ContractError(f"{what}: {type(exc).__name__}: {exc}") from None
        return guarded
    return wrap


_NON_ASCII = re.compile("[^\x00-\x7e]")
"""What `json.dumps` escapes beyond what msgspec does: DEL and everything above ASCII."""


def _json_escape(match: re.Match[str]) -> str:
    """A character of `_NON_ASCII` as `json.dumps` escapes it: `\\uXXXX`, a surrogate pair above U+FFFF."""
    c = ord(match.group())
    if c < 0x10000:
        return f"\\u{c:04x}"
    c -= 0x10000
    return f"\\u{0xD800 | c >> 10:04x}\\u{0xDC00 | c & 0x3FF:04x}"


def canonical_json(content: Any) -> bytes:
    """`json.dumps(content, sort_keys=True, separators=(",", ":"))` as ASCII bytes, the text the
    layers' content digests are taken of (a stored digest must never change), encoded by msgspec at
    native speed: compact, keys sorted, every non-ASCII character escaped as `json.dumps` escapes
    it. What msgspec cannot encode the same way (a lone surrogate, a type it does not know) takes
    `json.dumps` itself. For JSON-mode dumps of the contracts (no floats: money is text);
    tests/unit/test_canonical_json.py compares the two on every kind of value."""
    try:
        raw = msgspec.json.encode(content, order="sorted")
    except (TypeError, ValueError, UnicodeError):  # a lone surrogate, a type msgspec does not know
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    text = raw.decode()
    escaped = text.encode("ascii", "backslashreplace")  # in C; U+0100..U+FFFF (Chinese) as json.dumps does
    if b"\\x" not in escaped and b"\\U" not in escaped and b"\x7f" not in escaped:
        return escaped
    # DEL, U+0080..U+00FF or above U+FFFF, which it writes otherwise (or a `\\x` the text had itself)
    return _NON_ASCII.sub(_json_escape, text).encode()


def encode_json(content: Any) -> str:
    """A JSON-mode dump as compact JSON text (what `model_dump_json` gives of the model it came from)."""
    return msgspec.json.encode(content).decode()


def check_size(raw: bytes | str) -> None:
    """`ContractError` for a record that is empty or over `MAX_RECORD_BYTES`."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))
    if size > MAX_RECORD_BYTES:
        raise ContractError(f"the record is {size} bytes, over the limit of {MAX_RECORD_BYTES}", field="value")
    if size == 0:
        raise ContractError("the record is empty (no value)", field="value")


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode()


@_guarded("undecodable envelope")
def decode_envelope(raw: bytes | str) -> Envelope[dict[str, Any]]:
    """Parse the envelope, leaving the payload as a dict (for callers that validate it themselves)."""
    check_size(raw)
    try:
        data = from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise ContractError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError(f"the message is not a JSON object (it is a JSON {type(data).__name__})")
    try:
        return Envelope[dict[str, Any]].model_validate(data)
    except ValidationError as exc:
        reason, field = _describe(exc)
        raise ContractError(f"bad envelope: {reason}", field=field) from None


@_guarded("undecodable payload")
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


@functools.cache
def _by_type(expected: tuple[type[Contract], ...]) -> dict[str, type[Contract]]:
    return {m.__name__: m for m in expected} if expected else EVENT_TYPES


@_guarded("undecodable record")
def decode(raw: bytes | str, *expected: type[Contract]) -> Envelope[Any]:
    """Envelope plus validated payload; raises `ContractError` with the reason, and nothing else.

    First the native fast path (`contracts.native`: one msgspec parse into the very model instance
    pydantic would make); whatever it does not accept is decided by `decode_by_pydantic`."""
    check_size(raw)
    fast = native.decode(raw, _by_type(expected))
    if fast is not None:
        return fast
    return decode_by_pydantic(raw, *expected)


@_guarded("undecodable record")
def decode_by_pydantic(raw: bytes | str, *expected: type[Contract]) -> Envelope[Any]:
    """`decode` by the pydantic contracts alone: the reference the fast path is tested against,
    and the path that explains a refusal. With one expected type the message is parsed straight
    into the typed envelope (pydantic's JSON parser, no intermediate dict); anything unusual falls
    back to the step-by-step path, which names the failing field."""
    check_size(raw)
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


M = TypeVar("M", bound=Contract)


def parse_payload(raw: bytes | str, model: type[M]) -> M:
    """A payload this platform stored itself (a layer's input, a snapshot) back into its model:
    the native fast path, else pydantic (which raises `ValidationError` on what is not valid)."""
    fast = native.decode_payload(raw, model)
    return fast if fast is not None else model.model_validate_json(raw)  # type: ignore[return-value]


def check_key(envelope: Envelope[Any], key: str | None) -> None:
    """The record's key must be its payload's subject (`Contract.message_key`): one subject's
    events stay in order in one partition only if every producer keys them alike."""
    expected = envelope.payload.message_key()
    if key != expected:
        shown = "no key" if key is None else f"key {printable(key, 64)!r}"
        raise ContractError(f"the record has {shown}, but a {envelope.event_type} must be keyed by "
                            f"{printable(expected, 64)!r} (its subject)", field="key",
                            event_type=envelope.event_type)


def model_for(event_type: str) -> type[BaseModel]:
    return EVENT_TYPES[event_type]
