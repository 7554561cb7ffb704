"""Native-speed decoding of the contracts: the hot path of every consumer.

The pydantic models in `contracts` are the contracts; this module decodes the same JSON at native
speed. From each model it derives, once, a `msgspec.Struct` with the same fields and every
constraint msgspec checks in C (string lengths and patterns, literals, integer bounds, array
lengths, unknown fields of the envelope), plus a generated builder that turns the decoded struct
into the very pydantic model instance `model_validate_json` would have made: money and decimals
parsed once each (their text already checked against a strict pattern), range checks inline, and
the model's own `@model_validator(mode="after")` checks run on the result. One parse of the JSON,
no Python validator call per field.

The fast path only ever accepts; it never explains. Whatever it does not accept (a float, a
numeric string where a number belongs, a timestamp with seven fraction digits, an int where a
decimal string is usual, a model with a validator this module does not know) returns `None`, and
`contracts.codec.decode` takes the pydantic path, which accepts what the contracts accept and
refuses with the field and the reason. So the platform accepts and refuses exactly what the
pydantic contracts do, provided the fast path never accepts anything pydantic would refuse, nor
builds a different value: `tests/contracts/test_native_codec.py` checks both, differentially,
over valid records, every contract's extremes and hypothesis-mutated hostile ones.

A model whose field metadata this module does not understand gets no fast path (`struct_of`
raises `Unsupported` inside, `fast_path` says False): nothing is ever skipped silently.
"""

from __future__ import annotations

import functools
import types
import typing
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import annotated_types
import msgspec
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic.fields import FieldInfo

from contracts.envelope import Contract, Envelope
from contracts.limits import MAX_RECORD_BYTES
from contracts.money import FEN, _non_negative, parse_decimal, parse_money

__all__ = ["Unsupported", "decode", "decode_payload", "fast_path"]


class Unsupported(TypeError):
    """A field whose type or constraint has no native equivalent here (the model keeps pydantic)."""


class _Refused(ValueError):
    """The fast path does not accept the value (the pydantic path will decide)."""


# --- the value kinds ------------------------------------------------------------------------------

_MONEY_TEXT = r"^-?[0-9]{1,12}(?:\.[0-9]{1,2})?\Z"
"""`contracts.money.parse_money`'s text, anchored at the very end (Python's `$` also matches before
a final newline)."""
_MONEY_INT = 999_999_999_999
_RATIO_TEXT = r"^[01](?:\.[0-9]{1,11})?\Z"
"""A ratio's text the fast path takes: at most 12 digits, the `max_digits=12` of `Ratio`."""
_QUANTITY_TEXT = r"^[0-9]{1,9}(?:\.[0-9]{1,3})?\Z"
"""A quantity's text the fast path takes: at most 9 integer and 3 decimal digits (`Quantity`:
`max_digits=12, decimal_places=3`)."""
_TIMESTAMP_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})\Z"
"""RFC 3339 as our producers write it; anything else (a space for the `T`, seven fraction digits,
which msgspec rounds and pydantic truncates) takes the pydantic path."""


def _anchored(pattern: str) -> str:
    """A pydantic (Rust `regex`) pattern for Python's `re.search`: a final `$` becomes `\\Z`."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


class _Constraints:
    """The constraints gathered from a field's metadata (and its `Annotated` layers)."""

    def __init__(self) -> None:
        self.bounds: dict[str, Any] = {}
        self.lengths: dict[str, int] = {}
        self.pattern: str | None = None
        self.decimal_kind: str | None = None  # "money" or "decimal"
        self.non_negative = False
        self.digits: dict[str, int] = {}

    def add(self, item: object) -> None:
        if isinstance(item, FieldInfo):
            for inner in item.metadata:
                self.add(inner)
            return
        if isinstance(item, annotated_types.GroupedMetadata) and not isinstance(item, FieldInfo):
            for inner in item:
                self.add(inner)
            return
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(item, getattr(annotated_types, name.capitalize())):
                self.bounds[name] = getattr(item, name)
                return
        if isinstance(item, annotated_types.MinLen):
            self.lengths["min_length"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            self.lengths["max_length"] = item.max_length
        elif isinstance(item, BeforeValidator) and item.func is parse_money:
            self.decimal_kind = "money"
        elif isinstance(item, BeforeValidator) and item.func is parse_decimal:
            self.decimal_kind = "decimal"
        elif isinstance(item, AfterValidator) and item.func is _non_negative:
            self.non_negative = True
        elif isinstance(item, (PlainSerializer, WithJsonSchema)):
            pass  # serialisation and documentation only
        elif type(item).__name__ == "_PydanticGeneralMetadata":
            known = {"pattern", "max_digits", "decimal_places", "json_schema_extra", "description"}
            extra = {k for k, v in vars(item).items() if v is not None} - known
            if extra:
                raise Unsupported(f"metadata {sorted(extra)}")
            if getattr(item, "pattern", None):
                self.pattern = item.pattern  # type: ignore[attr-defined]
            for name in ("max_digits", "decimal_places"):
                if getattr(item, name, None) is not None:
                    self.digits[name] = getattr(item, name)
        else:
            raise Unsupported(f"metadata {item!r}")


class _Field:
    """One field's native type plus the statements that turn the decoded value `v` into the model's."""

    def __init__(self, native: Any, code: list[str] | None = None, env: dict[str, Any] | None = None) -> None:
        self.native = native
        self.code = code or []
        self.env = env or {}


_counter = iter(range(10**9))


def _name(prefix: str) -> str:
    return f"_{prefix}{next(_counter)}"


def _scalar(tp: Any, c: _Constraints) -> _Field:
    env: dict[str, Any] = {}
    code: list[str] = []

    def bound_checks(value: str) -> None:
        for op, sym in (("ge", "<"), ("gt", "<="), ("le", ">"), ("lt", ">=")):
            if op in c.bounds:
                k = _name("b")
                env[k] = c.bounds[op]
                code.append(f"if {value} {sym} {k}: raise _R")

    native: Any
    if tp is Decimal:
        if c.decimal_kind == "money":
            if c.digits:
                raise Unsupported("digit constraints on money")
            native = Annotated[int, msgspec.Meta(ge=-_MONEY_INT, le=_MONEY_INT)] | Annotated[
                str, msgspec.Meta(pattern=_MONEY_TEXT)]
            code.append("v = _money(v)")
            if c.non_negative:
                code.append("if v < 0: raise _R")
        elif c.decimal_kind == "decimal":
            if c.non_negative:
                raise Unsupported("non-negative decimal")
            ge0 = c.bounds.get("ge") == 0 or c.bounds.get("gt") == 0
            le1 = c.bounds.get("le") == 1
            if ge0 and le1 and c.digits.get("max_digits", 99) >= 12 and "decimal_places" not in c.digits:
                native = Annotated[int, msgspec.Meta(ge=0, le=1)] | Annotated[str, msgspec.Meta(pattern=_RATIO_TEXT)]
            elif (c.bounds.get("gt") == 0 and c.digits.get("max_digits", 99) >= 12
                  and c.digits.get("decimal_places", 99) >= 3):
                native = (Annotated[int, msgspec.Meta(gt=0, le=999_999_999)]
                          | Annotated[str, msgspec.Meta(pattern=_QUANTITY_TEXT)])
            else:
                raise Unsupported(f"decimal with {c.bounds} {c.digits}")
            code.append("v = _D(v)")
        else:
            raise Unsupported("a Decimal without its parser")
        bound_checks("v")
        return _Field(native, code, env)
    if c.decimal_kind or c.non_negative or c.digits:
        raise Unsupported(f"decimal constraints on {tp!r}")
    if tp is str:
        meta: dict[str, Any] = dict(c.lengths)
        if c.pattern:
            meta["pattern"] = _anchored(c.pattern)
        if c.bounds:
            raise Unsupported("bounds on a string")
        return _Field(Annotated[str, msgspec.Meta(**meta)] if meta else str)
    if tp is bool:
        if c.bounds or c.lengths or c.pattern:
            raise Unsupported("constraints on a bool")
        return _Field(bool)
    if tp is int:
        if c.lengths or c.pattern:
            raise Unsupported("length on an int")
        return _Field(Annotated[int, msgspec.Meta(**c.bounds)] if c.bounds else int)
    if tp is date:
        if c.lengths or c.pattern:
            raise Unsupported("length on a date")
        bound_checks("v")
        return _Field(date, code, env)
    if tp is AwareDatetime:
        if c.lengths or c.pattern:
            raise Unsupported("a constrained timestamp")
        code.append("v = _fromiso(v)")
        bound_checks("v")
        return _Field(Annotated[str, msgspec.Meta(pattern=_TIMESTAMP_TEXT)], code, env)
    if tp is uuid.UUID:
        return _Field(uuid.UUID)
    raise Unsupported(f"type {tp!r}")


def _unwrap(tp: Any, c: _Constraints) -> Any:
    while typing.get_origin(tp) is Annotated:
        base, *meta = typing.get_args(tp)
        for item in meta:
            c.add(item)
        tp = base
    return tp


def _field(tp: Any, metadata: list[Any]) -> _Field:
    c = _Constraints()
    for item in metadata:
        c.add(item)
    tp = _unwrap(tp, c)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return _Field(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if len(args) != 2 or type(None) not in args:
            raise Unsupported(f"union {tp!r}")
        inner = _field(next(a for a in args if a is not type(None)), [])
        if c.bounds or c.lengths or c.pattern:
            # pydantic applies a constraint of `X | None` to X
            inner = _field(next(a for a in args if a is not type(None)), metadata)
        conv = _converter(inner)
        if conv is None:
            return _Field(inner.native | None)
        return _Field(inner.native | None, [f"if v is not None: v = {conv[0]}(v)"], conv[1])
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise Unsupported(f"tuple {tp!r}")
        inner = _field(args[0], [])
        return _collection(tuple[inner.native, ...], c, inner,  # type: ignore[name-defined]
                           "v = tuple([{conv}(i) for i in v])")
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        key = _field(key_tp, [])
        if key.code:
            raise Unsupported(f"dict key {key_tp!r}")
        value = _field(value_tp, [])
        return _collection(dict[key.native, value.native], c, value,  # type: ignore[name-defined]
                           "v = {{k: {conv}(x) for k, x in v.items()}}")
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if c.bounds or c.lengths or c.pattern:
            raise Unsupported("constraints on a model")
        spec = _spec(tp)
        return _Field(spec.struct, ["v = _build(v)"], {"_build": spec.build})
    return _scalar(tp, c)


def _collection(native: Any, c: _Constraints, element: _Field, convert: str) -> _Field:
    """A tuple or dict of `element`s: its length bounds, and `convert` (a statement with `{conv}`,
    the element's converter) where the elements need converting."""
    if c.lengths:
        native = Annotated[native, msgspec.Meta(**c.lengths)]  # type: ignore[call-overload]
    conv = _converter(element)
    if conv is None:
        return _Field(native)
    return _Field(native, [convert.format(conv=conv[0])], conv[1])


def _converter(f: _Field) -> tuple[str, dict[str, Any]] | None:
    """The field's statements as a function of its own (for values inside a tuple, dict or option)."""
    if not f.code:
        return None
    name = _name("c")
    src = f"def {name}(v):\n" + "".join(f"    {line}\n" for line in f.code) + "    return v\n"
    env = {**_BASE_ENV, **f.env}
    exec(src, env)
    return name, {name: env[name]}


_MONEY_SEEN: dict[int | str, Decimal] = {}
_MONEY_SEEN_MAX = 65_536
"""Money texts already parsed (a catalogue's prices repeat on every bill): `Decimal` is immutable,
so one instance serves them all. Bounded: once full, new texts are parsed and not kept."""


def _money(v: int | str) -> Decimal:
    """An amount's checked text (or integer) as its `Decimal` in fen."""
    found = _MONEY_SEEN.get(v)
    if found is None:
        found = Decimal(v).quantize(FEN)
        if len(_MONEY_SEEN) < _MONEY_SEEN_MAX:
            _MONEY_SEEN[v] = found
    return found


_BASE_ENV: dict[str, Any] = {"_D": Decimal, "_FEN": FEN, "_R": _Refused, "_fromiso": datetime.fromisoformat,
                             "_money": _money}


_INSTANCE = ("    m = _new({cls})\n    _set(m, '__dict__', d)\n    _set(m, '__pydantic_fields_set__', set(_FS))\n"
             "    _set(m, '__pydantic_extra__', None)\n    _set(m, '__pydantic_private__', None)\n")
"""The source that makes the model instance from the field dict `d`, as pydantic's own
`model_construct` does (every field counted as set: the platform never dumps with `exclude_unset`)."""


class _Spec:
    def __init__(self, struct: type[msgspec.Struct], build: typing.Callable[[Any], Any]) -> None:
        self.struct = struct
        self.build = build


_SPECS: dict[type[BaseModel], _Spec] = {}


def _spec(model: type[BaseModel]) -> _Spec:
    """The struct and builder of a model, made once (recursively for nested models)."""
    if model in _SPECS:
        return _SPECS[model]
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or decorators.validators or decorators.root_validators:
        raise Unsupported(f"{model.__name__} has field validators")
    after = []
    for dec in decorators.model_validators.values():
        if dec.info.mode != "after":
            raise Unsupported(f"{model.__name__} has a {dec.info.mode} model validator")
        after.append(dec.func)
    extra = model.model_config.get("extra", "ignore")
    if extra not in ("ignore", "forbid"):
        raise Unsupported(f"{model.__name__} keeps extra fields")
    fields: list[tuple[str, Any, Any]] = []
    env: dict[str, Any] = dict(_BASE_ENV)
    body: list[str] = []
    items: list[str] = []
    required: list[tuple[str, Any]] = []
    optional: list[tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        if (info.alias and info.alias != name) or info.validation_alias or info.default_factory is not None:
            raise Unsupported(f"{model.__name__}.{name}: alias or default factory")
        f = _field(info.annotation, list(info.metadata))
        if info.is_required():
            required.append((name, f.native))
        else:
            optional.append((name, f.native, info.default))
        env.update(f.env)
        if f.code:  # converted and checked into a local first
            body.append(f"    v = s.{name}")
            body.extend(f"    {line}" for line in f.code)
            body.append(f"    f_{name} = v")
            items.append(f"{name!r}: f_{name}")
        else:
            items.append(f"{name!r}: s.{name}")
        fields.append((name, f.native, info))
    struct = msgspec.defstruct(
        f"{model.__name__}Native", [*required, *optional], forbid_unknown_fields=True,
        kw_only=True)
    env.update(_new=object.__new__, _set=object.__setattr__, _M=model, _FS=frozenset(model.model_fields),
               **{f"_v{i}": fn for i, fn in enumerate(after)})
    checks = "".join(f"    _v{i}(m)\n" for i in range(len(after)))
    src = ("def build(s):\n" + "".join(f"{line}\n" for line in body) + "    d = {" + ", ".join(items) + "}\n"
           + _INSTANCE.format(cls="_M") + f"{checks}    return m\n")
    exec(src, env)
    spec = _Spec(struct, env["build"])
    _SPECS[model] = spec
    return spec


# --- the envelope ---------------------------------------------------------------------------------

@functools.cache
def _envelope_spec() -> tuple[msgspec.json.Decoder[Any], list[tuple[str, _Field]]]:
    fields = []
    required: list[tuple[str, Any]] = []
    optional: list[tuple[str, Any, Any]] = []
    for name, info in Envelope.model_fields.items():
        if name == "payload":
            required.append((name, msgspec.Raw))
            continue
        f = _field(info.annotation, list(info.metadata))
        fields.append((name, f))
        if info.is_required():
            required.append((name, f.native))
        else:
            optional.append((name, f.native, info.default))
    struct = msgspec.defstruct("EnvelopeNative", [*required, *optional], forbid_unknown_fields=True, kw_only=True)
    return msgspec.json.Decoder(struct), fields


@functools.cache
def _envelope_builder() -> typing.Callable[[Any, type[Envelope[Any]], Any], Envelope[Any]]:
    _, fields = _envelope_spec()
    env: dict[str, Any] = dict(_BASE_ENV)
    body = []
    for name, f in fields:
        env.update(f.env)
        body.append(f"    v = s.{name}")
        body.extend(f"    {line}" for line in f.code)
        body.append(f"    d[{name!r}] = v")
    env.update(_new=object.__new__, _set=object.__setattr__, _FS=frozenset(Envelope.model_fields))
    src = ("def build(s, typed, payload):\n    d = {}\n" + "\n".join(body) + "\n    d['payload'] = payload\n"
           + _INSTANCE.format(cls="typed") + "    return m\n")
    exec(src, env)
    return typing.cast(typing.Callable[[Any, type[Envelope[Any]], Any], Envelope[Any]], env["build"])


@functools.cache
def _payload_decoder(model: type[Contract]) -> tuple[msgspec.json.Decoder[Any], typing.Callable[[Any], Any]] | None:
    try:
        spec = _spec(model)
    except Unsupported:
        return None
    return msgspec.json.Decoder(spec.struct), spec.build


@functools.cache
def _typed(model: type[Contract]) -> type[Envelope[Any]]:
    return Envelope[model]  # type: ignore[valid-type]


def fast_path(model: type[Contract]) -> bool:
    """Whether `model` has a native decoder (else its records always take the pydantic path)."""
    return _payload_decoder(model) is not None


def decode(raw: bytes | str, expected: dict[str, type[Contract]]) -> Envelope[Any] | None:
    """The record as the typed envelope `contracts.codec.decode` returns, or None where the fast
    path does not accept it (then the pydantic path decides). `expected`: the accepted payload
    models by event type. A record over `MAX_RECORD_BYTES` (or given as text) is not accepted
    here: `contracts.codec` refuses the one and decodes the other. Never raises."""
    if not isinstance(raw, bytes) or len(raw) > MAX_RECORD_BYTES:
        return None
    try:
        head_decoder, _ = _envelope_spec()
        head = head_decoder.decode(raw)
        model = expected.get(head.event_type)
        if model is None or head.schema_version > model.SCHEMA_VERSION:
            return None
        payload_decoder = _payload_decoder(model)
        if payload_decoder is None:
            return None
        decoder, build = payload_decoder
        payload = build(decoder.decode(head.payload))
        return _envelope_builder()(head, _typed(model), payload)
    except Exception:  # noqa: BLE001 - anything the fast path does not accept goes the pydantic way
        return None



def decode_payload(raw: bytes | str, model: type[Contract]) -> Contract | None:
    """A payload alone (as the layers keep their inputs) as `model.model_validate_json` makes it,
    or None where the fast path does not accept it. Never raises."""
    try:
        payload_decoder = _payload_decoder(model)
        if payload_decoder is None:
            return None
        decoder, build = payload_decoder
        return typing.cast(Contract, build(decoder.decode(raw)))
    except Exception:  # noqa: BLE001 - anything the fast path does not accept goes the pydantic way
        return None
