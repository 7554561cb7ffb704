"""Contract instances at their extremes: a builder that fills every field of a contract model with
the most extreme value the model accepts, derived from the model's own metadata (`model_fields`,
the `Annotated` metadata, the money bounds of `contracts.limits`). The tests that show "what the
contract accepts, the database stores" publish what it builds.

How a field's extreme is found:

| the field | its extreme |
|---|---|
| free text (pattern `NO_CONTROL_CHARACTERS`) | `max_length` characters that stress storage: 3-byte CJK, 4-byte characters outside the BMP, and the two characters JSON must escape (`"`, `\\`); the first character (CJK) tells the elements of a collection and the fields apart |
| an id or a code (any other pattern) | the longest string the pattern matches within `max_length`, cycling through every character its classes allow |
| money (`contracts.money.Money`) | `MONEY_MAX`, or the field's own tighter bound (`Le`, e.g. `LINE_AMOUNT_MAX`) |
| another decimal | its upper bound (`Le`), else the largest number `max_digits` and `decimal_places` allow, written with every digit allowed (a ratio of 1 is `1.00000000000`) |
| an integer | its upper bound (`Le`, `Lt`): versions at 2^63 − 1 |
| a date, a timestamp | `DATE_MAX`, the last microsecond before `TIMESTAMP_MAX` (UTC); with `dates="min"` their lower bounds |
| a boolean | True |
| a `Literal` | its longest choice (the first of equals); in a collection every choice in turn |
| an optional field | filled in |
| a tuple, a dict | `max_length` distinct elements (a dict keyed by a `Literal`: every choice) |
| a nested model | built the same way |

A constraint the builder does not know is an error, never skipped. Then, and only then, the
minimal fix-ups the cross-field validators need (`FIXUPS`, each says which fields it moves), and
last the record's size: a top-level collection whose elements would take the record (in an
envelope at its own extremes) over `MAX_RECORD_BYTES` is cut to the most elements that fit, the
widest collection first (`Built.cut` says which and why).

Which bound wins, every field at its widest: a `DischargeRecorded` reaches `MAX_RECORD_BYTES` at
about 600 of its 2,000 lines (`MAX_BILL_LINES`; a line of maximum-width text is some 870 bytes of
JSON), and 10 lines at `LINE_AMOUNT_MAX` (quantity 999,999,999.999 × 0.01) reach
`DISCHARGE_TOTAL_MAX`, so the others are priced 0.00; a `PersonSnapshot` keeps its 1,000 category
periods and coverage years and about 400 of its 1,000 suspensions; everything else fits whole.
"""

from __future__ import annotations

import re
import types
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import (
    Annotated,
    Any,
    Generic,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

import annotated_types as at
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.fields import FieldInfo

from contracts import (
    BasicSettled,
    BillLine,
    CatastrophicSettled,
    ClaimSummary,
    Contract,
    DischargeCorrected,
    DischargeRecorded,
    Envelope,
    LayerDetail,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
    encode,
    make_envelope,
)
from contracts.limits import MAX_RECORD_BYTES, MONEY_MAX, NO_CONTROL_CHARACTERS
from contracts.money import FEN, ZERO, _non_negative, parse_decimal, parse_money

M = TypeVar("M", bound=BaseModel)
DateMode = Literal["max", "min"]

STRESS = ("𠮷", "医", '"', "\\", "𝄞")
"""What free text is made of after its first character: 4-byte (outside the BMP) and 3-byte
UTF-8, and the two characters JSON escapes."""
FIRST_CJK, CJK_COUNT = 0x4E00, 0x5000
"""The first character of free text: one of the CJK Unified Ideographs, chosen by field and element."""
TIMESTAMP_STEP = timedelta(microseconds=1)
VARIANT_STEP = 7919
"""Added to every string's salt per variant (a prime: another rotation of every id's characters)."""


class NoExtreme(TypeError):
    """A field whose extreme the builder cannot derive (an unbounded string or number, a
    constraint or a type it does not know): the contract states no bound it can check."""


# ------------------------------------------------------------------ constraints


@dataclass
class Bounds:
    """The constraints of one field, gathered from its annotation's metadata."""

    ge: Any = None
    gt: Any = None
    le: Any = None
    lt: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    max_digits: int | None = None
    decimal_places: int | None = None
    money: bool = False

    def tighten_upper(self, value: Any) -> None:
        self.le = value if self.le is None else min(self.le, value)

    def tighten_lower(self, value: Any) -> None:
        self.ge = value if self.ge is None else max(self.ge, value)


_IGNORED = (PlainSerializer, WithJsonSchema)
"""Metadata that does not constrain a value (how it is serialised or documented)."""


def _gather(annotation: Any, metadata: list[Any], path: str) -> tuple[Any, Bounds]:
    """The bare type of an annotation and every bound its metadata states (`Annotated` layers and
    `FieldInfo`s inside them included)."""
    bounds = Bounds()
    pending = list(metadata)
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        pending = [*extra, *pending]
    while pending:
        m = pending.pop(0)
        match m:
            case FieldInfo():
                pending = [*m.metadata, *pending]
            case at.Ge():
                bounds.tighten_lower(m.ge)
            case at.Gt():
                bounds.gt = m.gt
            case at.Le():
                bounds.tighten_upper(m.le)
            case at.Lt():
                bounds.lt = m.lt
            case at.MinLen():
                bounds.min_length = m.min_length
            case at.MaxLen():
                bounds.max_length = m.max_length
            case StringConstraints():
                bounds.min_length = m.min_length
                bounds.max_length = m.max_length
                bounds.pattern = m.pattern if isinstance(m.pattern, str) or m.pattern is None else m.pattern.pattern
            case BeforeValidator() if m.func is parse_money:
                bounds.money = True
                bounds.tighten_upper(MONEY_MAX)
            case BeforeValidator() if m.func is parse_decimal:
                pass  # parses a decimal string; the bounds follow as Ge/Le/max_digits
            case AfterValidator() if m.func is _non_negative:
                bounds.tighten_lower(ZERO)
            case _ if isinstance(m, _IGNORED):
                pass
            case _ if hasattr(m, "max_digits") or hasattr(m, "decimal_places"):
                bounds.max_digits = getattr(m, "max_digits", None) or bounds.max_digits
                bounds.decimal_places = getattr(m, "decimal_places", None) or bounds.decimal_places
            case _:
                raise NoExtreme(f"{path}: unknown constraint {m!r}")
    return annotation, bounds


# ------------------------------------------------------------------ strings


def _alphabet(op: Any, av: Any, path: str) -> tuple[str, ...] | frozenset[str]:
    """The characters one regex element allows: a tuple in order, or for a negated class the
    excluded characters (a frozenset)."""
    if op is sre_parse.LITERAL:
        return (chr(av),)
    if op is sre_parse.IN:
        if av and av[0][0] is sre_parse.NEGATE:
            excluded: set[str] = set()
            for o, a in av[1:]:
                if o is sre_parse.LITERAL:
                    excluded.add(chr(a))
                elif o is sre_parse.RANGE:
                    excluded.update(chr(c) for c in range(a[0], a[1] + 1))
                else:
                    raise NoExtreme(f"{path}: pattern element {o} not supported")
            return frozenset(excluded)
        chars: list[str] = []
        for o, a in av:
            if o is sre_parse.LITERAL:
                chars.append(chr(a))
            elif o is sre_parse.RANGE:
                chars.extend(chr(c) for c in range(a[0], a[1] + 1))
            else:
                raise NoExtreme(f"{path}: pattern element {o} not supported")
        return tuple(chars)
    raise NoExtreme(f"{path}: pattern element {op} not supported")


def _printable_run(excluded: frozenset[str], count: int, salt: int) -> str:
    first = chr(FIRST_CJK + salt % CJK_COUNT)
    stress = [c for c in STRESS if c not in excluded]
    if first in excluded or not stress:
        raise NoExtreme("a negated class excluding the stress characters is not supported")
    return "".join([first, *(stress[k % len(stress)] for k in range(count - 1))])[:count]


def longest_match(pattern: str, max_length: int, salt: int = 0, path: str = "") -> str:
    """The longest string of at most `max_length` characters that `pattern` matches in full.

    The pattern is a sequence of single characters, classes and repeats of one class (every
    pattern of `contracts.limits`). Repeats get their minimum, then the characters left are shared
    out evenly among the repeats that may grow. A class's characters are cycled through from an
    offset chosen by `salt`; a negated class (free text) gets `STRESS` characters."""
    pieces: list[tuple[int, float, tuple[str, ...] | frozenset[str]]] = []
    for op, av in sre_parse.parse(pattern):
        if op is sre_parse.AT:
            continue
        if op is sre_parse.MAX_REPEAT:
            lo, hi, sub = av
            (sop, sav), = list(sub)
            pieces.append((lo, float("inf") if hi is sre_parse.MAXREPEAT else hi, _alphabet(sop, sav, path)))
        else:
            pieces.append((1, 1, _alphabet(op, av, path)))
    counts = [lo for lo, _, _ in pieces]
    left = min(max_length, sum(hi for _, hi, _ in pieces)) - sum(counts)
    if left < 0:
        raise NoExtreme(f"{path}: no string of at most {max_length} characters matches {pattern}")
    while left > 0:
        growing = [i for i, (_, hi, _) in enumerate(pieces) if counts[i] < hi]
        share = max(1, left // len(growing))
        for i in growing:
            step = int(min(share, left, pieces[i][1] - counts[i]))
            counts[i] += step
            left -= step
    out: list[str] = []
    offset = salt
    for (_, _, alphabet), count in zip(pieces, counts, strict=True):
        if isinstance(alphabet, frozenset):
            out.append(_printable_run(alphabet, count, offset))
        else:
            out.extend(alphabet[(offset + k) % len(alphabet)] for k in range(count))
        offset += count
    text = "".join(out)
    if not re.fullmatch(pattern, text):
        raise NoExtreme(f"{path}: built {text!r}, which {pattern} does not match")
    return text


# ------------------------------------------------------------------ numbers


def _digits_allowed(upper: Decimal, bounds: Bounds) -> Decimal:
    """`upper` written with as many decimals as `max_digits` / `decimal_places` allow."""
    if bounds.max_digits is None:
        return upper
    integer_digits = max(len(str(int(upper))) if int(upper) else 0, 1)
    places = bounds.decimal_places if bounds.decimal_places is not None else bounds.max_digits - integer_digits
    return upper.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


def _decimal_extreme(bounds: Bounds, path: str) -> Decimal:
    if bounds.money:
        upper = Decimal(bounds.le) if bounds.lt is None else min(Decimal(bounds.le), Decimal(bounds.lt) - FEN)
        return upper.quantize(FEN)
    if bounds.le is not None:
        return _digits_allowed(Decimal(bounds.le), bounds)
    if bounds.max_digits is not None:
        places = bounds.decimal_places or 0
        unit = Decimal(1).scaleb(-places)
        return Decimal(10) ** (bounds.max_digits - places) - unit
    raise NoExtreme(f"{path}: a decimal without an upper bound")


def _int_extreme(bounds: Bounds, path: str) -> int:
    if bounds.le is not None:
        return int(bounds.le) if bounds.lt is None else min(int(bounds.le), int(bounds.lt) - 1)
    if bounds.lt is not None:
        return int(bounds.lt) - 1
    raise NoExtreme(f"{path}: an integer without an upper bound")


def _date_extreme(bounds: Bounds, mode: DateMode, step: Any, path: str) -> Any:
    if mode == "max":
        if bounds.le is not None:
            return bounds.le
        if bounds.lt is not None:
            return bounds.lt - step
    else:
        if bounds.ge is not None:
            return bounds.ge
        if bounds.gt is not None:
            return bounds.gt + step
    raise NoExtreme(f"{path}: a date without a {mode}imum")


# ------------------------------------------------------------------ building


def salt_of(path: str) -> int:
    """A stable number per field path (Python's own `hash` of a str changes per process)."""
    return zlib.crc32(path.encode())


@dataclass
class Builder:
    """One build: the date mode, the variant, top-level collection sizes, and the field paths it
    filled. Variants differ in every string (ids and text), so two of one model are two subjects."""

    dates: DateMode = "max"
    variant: int = 0
    sizes: Mapping[str, int] = field(default_factory=dict)
    filled: set[str] = field(default_factory=set)

    def model(self, model: type[M], path: str, index: int = 0, overrides: Mapping[str, Any] | None = None,
              *, top: bool = False) -> M:
        """`model` with every field at its extreme (or from `overrides`), fixed up, validated;
        `top`: the record itself, whose collections `sizes` may cut."""
        values: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            here = f"{path}.{name}"
            self.filled.add(f"{model.__name__}.{name}")
            if overrides and name in overrides:
                values[name] = overrides[name]
                continue
            size = self.sizes.get(name) if top else None
            values[name] = self.value(info.annotation, list(info.metadata), here, index, size)
        fix = FIXUPS.get(model)
        if fix is not None:
            values = fix(values, self)
        return model.model_validate(values)

    def value(self, annotation: Any, metadata: list[Any], path: str, index: int, size: int | None = None) -> Any:
        """The extreme of one annotated type; `index` is the element's place in its collection."""
        kind, bounds = _gather(annotation, metadata, path)
        origin = get_origin(kind)
        if origin in (Union, types.UnionType):
            arms = [a for a in get_args(kind) if a is not type(None)]
            if len(arms) != 1:
                raise NoExtreme(f"{path}: a union of {arms} (only Optional[X] is supported)")
            return self.value(arms[0], metadata, path, index, size)
        if origin is Literal:
            return literal_choices(kind)[index % len(get_args(kind))]
        if origin is tuple:
            item, dots = get_args(kind)
            if dots is not Ellipsis:
                raise NoExtreme(f"{path}: a fixed-size tuple")
            if bounds.max_length is None:
                raise NoExtreme(f"{path}: a tuple without max_length")
            count = bounds.max_length if size is None else size
            return tuple(self.value(item, [], f"{path}[]", i) for i in range(count))
        if origin is dict:
            key, item = get_args(kind)
            key_kind, _ = _gather(key, [], path)
            limit = len(get_args(key_kind)) if get_origin(key_kind) is Literal else None
            if bounds.max_length is not None:
                limit = bounds.max_length if limit is None else min(limit, bounds.max_length)
            if limit is None:
                raise NoExtreme(f"{path}: a dict without max_length")
            count = limit if size is None else size
            out = {self.value(key, [], f"{path}{{}}", i): self.value(item, [], f"{path}[]", i) for i in range(count)}
            if len(out) != count:
                raise NoExtreme(f"{path}: could not build {count} distinct keys")
            return out
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return self.model(kind, path, index)
        if kind is bool:
            return True
        if kind is int:
            return _int_extreme(bounds, path)
        if kind is Decimal:
            return _decimal_extreme(bounds, path)
        if kind is str:
            if bounds.max_length is None:
                raise NoExtreme(f"{path}: a string without max_length")
            pattern = bounds.pattern or NO_CONTROL_CHARACTERS
            return longest_match(pattern, bounds.max_length, salt_of(path) + VARIANT_STEP * self.variant + index, path)
        if kind is date:
            return _date_extreme(bounds, self.dates, timedelta(days=1), path)
        if kind is datetime or kind is AwareDatetime:
            moment = _date_extreme(bounds, self.dates, TIMESTAMP_STEP, path)
            return moment.astimezone(UTC)
        if kind is uuid.UUID:
            return uuid.uuid5(uuid.NAMESPACE_URL, f"{path}#{index}")
        raise NoExtreme(f"{path}: type {kind!r} not supported")


def literal_choices(kind: Any) -> list[Any]:
    """A Literal's choices, longest first (declared order among equals)."""
    return sorted(get_args(kind), key=lambda c: -len(str(c)))


# ------------------------------------------------------------------ fix-ups


def _upper(model: type[BaseModel], name: str) -> Decimal:
    info = model.model_fields[name]
    return _decimal_extreme(_gather(info.annotation, list(info.metadata), name)[1], name)


def priced(quantity: Decimal, unit_price: Decimal, limit: Decimal) -> tuple[Decimal, Decimal]:
    """The largest (unit price, amount) at or below `unit_price` whose amount = quantity × unit
    price (rounded to fen, as `BillLine` checks) stays within `limit`."""
    def amount(price: Decimal) -> Decimal:
        return (quantity * price).quantize(FEN, rounding=ROUND_HALF_UP)

    if amount(unit_price) <= limit:
        return unit_price, amount(unit_price)
    price = min(unit_price, (limit / quantity).quantize(FEN, rounding=ROUND_DOWN))
    while amount(price + FEN) <= limit and price + FEN <= unit_price:
        price += FEN
    while price > 0 and amount(price) > limit:
        price -= FEN
    return price, amount(price)


def _bill_line(values: dict[str, Any], _: Builder) -> dict[str, Any]:
    """Moves `unit_price` and `amount`: amount = quantity × unit price within the amount's bound
    (the maximum quantity times the maximum price is far over it)."""
    price, amount = priced(values["quantity"], values["unit_price"], min(values["amount"], _upper(BillLine, "amount")))
    return {**values, "unit_price": price, "amount": amount}


def _discharge(values: dict[str, Any], _: Builder) -> dict[str, Any]:
    """Moves the lines' service dates into the stay, and their prices so that the total (the sum
    of the lines) stays within its own bound: lines keep their maximum amount in order while the
    total allows, the next one gets what is left, the rest a unit price of 0.00."""
    admitted, discharged = sorted((values["admission_date"], values["discharge_date"]))
    left = min(values["total_amount"], _upper(DischargeRecorded, "total_amount"))
    lines = []
    for line in values["lines"]:
        day = min(max(line.service_date, admitted), discharged)
        price, amount = priced(line.quantity, line.unit_price, min(line.amount, left))
        left -= amount
        lines.append(line if (day, price) == (line.service_date, line.unit_price) else BillLine.model_validate(
            {**line.model_dump(), "service_date": day, "unit_price": price, "amount": amount}))
    total = sum((ln.amount for ln in lines), start=ZERO)
    return {**values, "admission_date": admitted, "discharge_date": discharged, "lines": tuple(lines),
            "total_amount": total}


def shares(total: Decimal, wanted: list[Decimal]) -> list[Decimal]:
    """Parts that add up to at most `total`: each keeps what it wants while the total allows, in
    order (the first part at the maximum, the later ones what is left, often 0.00)."""
    out: list[Decimal] = []
    for want in wanted:
        out.append(min(want, total - sum(out, ZERO)))
    return out


def _settled(values: dict[str, Any]) -> dict[str, Any]:
    """A rejected or reversed result may carry no layer decision and no fund payment, which the
    extreme fills in: the outcome moves to `settled` and `reversed` to False (instead of emptying
    several fields)."""
    if "outcome" in values and values["outcome"] == "rejected":
        values = {**values, "outcome": "settled"}
    return {**values, "reversed": False} if values.get("reversed") else values


def _claim_summary(values: dict[str, Any], _: Builder) -> dict[str, Any]:
    """Moves `out_of_policy` and `amounts_by_class` so that they add up to `total_cost`
    (`in_policy` and the first class keep the total; the others get what is left)."""
    total = values["total_cost"]
    in_policy = min(values["in_policy"], total)
    by_class = dict(zip(values["amounts_by_class"], shares(total, list(values["amounts_by_class"].values())),
                        strict=True))
    return {**values, "in_policy": in_policy, "out_of_policy": total - in_policy, "amounts_by_class": by_class}


def _with_paid(detail: LayerDetail, paid: Decimal) -> LayerDetail:
    return detail if detail.paid == paid else LayerDetail.model_validate({**detail.model_dump(), "paid": paid})


def _basic_settled(values: dict[str, Any], _: Builder) -> dict[str, Any]:
    """Moves `outcome` (see `_settled`) and `residual_in_policy`: basic's payment keeps the
    claim's in-policy cost, the residual gets what is left."""
    values = _settled(values)
    basic_paid, residual = shares(values["claim"].in_policy, [values["basic"].paid, values["residual_in_policy"]])
    return {**values, "basic": _with_paid(values["basic"], basic_paid), "residual_in_policy": residual}


def _catastrophic_settled(values: dict[str, Any], _: Builder) -> dict[str, Any]:
    """Moves `outcome` (see `_settled`), the catastrophic layer's payment and `residual_in_policy`:
    basic's payment keeps the claim's total cost, the others get what is left."""
    values = _settled(values)
    basic, catastrophic = values["basic"], values["catastrophic"]
    paid = shares(values["claim"].total_cost, [basic.paid, catastrophic.paid, values["residual_in_policy"]])
    return {**values, "basic": _with_paid(basic, paid[0]), "catastrophic": _with_paid(catastrophic, paid[1]),
            "residual_in_policy": paid[2]}


def _statement(values: dict[str, Any], _: Builder) -> dict[str, Any]:
    """Moves `outcome` (see `_settled`) and the parts of `total_cost` so that they add up:
    `in_policy` and `hifp_pay` keep the total, `out_of_policy`, `hifmi_pay`, `maf_pay` and
    `psn_pay` get what is left; and the stay's dates in order. (The same for the adjustment and
    reversal statements, whose amounts are differences.)"""
    values = _settled(values)
    total = values["total_cost"]
    in_policy = min(values["in_policy"], total)
    paid = shares(total, [values["hifp_pay"], values["hifmi_pay"], values["maf_pay"]])
    admitted, discharged = sorted((values["admission_date"], values["discharge_date"]))
    return {**values, "in_policy": in_policy, "out_of_policy": total - in_policy, "hifp_pay": paid[0],
            "hifmi_pay": paid[1], "maf_pay": paid[2], "fund_pay_sumamt": sum(paid, ZERO),
            "psn_pay": total - sum(paid, ZERO), "admission_date": admitted, "discharge_date": discharged}


FIXUPS: dict[type[BaseModel], Callable[[dict[str, Any], Builder], dict[str, Any]]] = {
    BillLine: _bill_line,
    DischargeRecorded: _discharge,
    ClaimSummary: _claim_summary,
    BasicSettled: _basic_settled,
    CatastrophicSettled: _catastrophic_settled,
    SettlementStatement: _statement,
    SettlementAdjusted: _statement,
    SettlementReversed: _statement,
    DischargeCorrected: _discharge,
}
"""The cross-field validators' fix-ups, per model (each moves only the fields its docstring names)."""


# ------------------------------------------------------------------ whole records


def extreme_envelope(payload: Contract, *, dates: DateMode = "max", event_id: uuid.UUID | None = None,
                     **overrides: Any) -> Envelope[Any]:
    """`payload` in an envelope whose own fields are at their extremes too (correlation id and
    producer at their maximum length of stress text, occurred_at at the last accepted instant, a
    causation id); a fresh event id unless given, and the type and version of the payload."""
    builder = Builder(dates=dates)
    values = {name: builder.value(info.annotation, list(info.metadata), f"Envelope.{name}", 0)
              for name, info in Envelope.model_fields.items() if name not in ("payload", "event_type",
                                                                            "schema_version", "event_id")}
    values.update(overrides)
    return make_envelope(payload, correlation_id=values["correlation_id"], producer=values["producer"],
                         event_id=event_id or uuid.uuid4(), causation_id=values["causation_id"],
                         occurred_at=values["occurred_at"])


def record_bytes(payload: Contract, dates: DateMode = "max") -> int:
    """Size of `payload`'s record on the wire, in an extreme envelope."""
    return len(encode(extreme_envelope(payload, dates=dates)))


@dataclass(frozen=True)
class Built(Generic[M]):
    """An extreme instance, the fields the builder filled (`Model.field`, nested models included),
    and the top-level collections cut to fit the record size: field → (elements kept, max_length)."""

    instance: M
    filled: frozenset[str]
    cut: Mapping[str, tuple[int, int]]
    size: int
    """bytes of the record in an extreme envelope (`extreme_envelope(instance, dates=dates)`)"""
    dates: DateMode = "max"


def _collections(model: type[BaseModel], instance: BaseModel) -> Iterator[tuple[str, int, int]]:
    """Top-level tuple and dict fields: (name, elements, bytes of their JSON)."""
    for name in model.model_fields:
        value = getattr(instance, name)
        if isinstance(value, (tuple, dict)) and value:
            yield name, len(value), len(instance.model_dump_json(include={name}))


def build(model: type[M], *, dates: DateMode = "max", variant: int = 0, limit: int = MAX_RECORD_BYTES,
          **overrides: Any) -> Built[M]:
    """The extreme instance of `model` (see the module's docstring), with `overrides` for top-level
    fields (applied before the fix-ups, which may still move them), fitting in a record of `limit`
    bytes; another `variant` is another instance with other strings."""
    sizes: dict[str, int] = {}
    cut: dict[str, tuple[int, int]] = {}
    tried: set[str] = set()
    while True:
        builder = Builder(dates=dates, variant=variant, sizes=sizes)
        instance = builder.model(model, model.__name__, overrides=overrides, top=True)
        size = record_bytes(instance, dates) if isinstance(instance, Contract) else len(instance.model_dump_json())
        if size <= limit:
            return Built(instance, frozenset(builder.filled), cut, size, dates)
        candidates = [c for c in _collections(model, instance) if c[0] not in tried and c[0] not in overrides]
        if not candidates:
            raise NoExtreme(f"{model.__name__}: {size} bytes even with every collection cut, over {limit}")
        name, count, _ = max(candidates, key=lambda c: c[2])
        tried.add(name)
        info = model.model_fields[name]
        minimum = _gather(info.annotation, list(info.metadata), name)[1].min_length or 0
        fits = _most_that_fit(Builder(dates=dates, variant=variant, sizes=sizes), model, limit, overrides, name,
                              minimum, count)
        sizes[name] = fits
        cut[name] = (fits, count)


def _most_that_fit(like: Builder, model: type[BaseModel], limit: int, overrides: Mapping[str, Any], name: str,
                   low: int, high: int) -> int:
    """The most elements of collection `name` in [low, high] whose record fits; `low` if none does
    (a later collection is cut then). Sizes grow about linearly with the elements: the estimate
    from the sizes at `low` and `high` is corrected one element at a time."""
    def size(n: int) -> int:
        builder = Builder(dates=like.dates, variant=like.variant, sizes={**like.sizes, name: n})
        instance = builder.model(model, model.__name__, overrides=overrides, top=True)
        return record_bytes(instance, like.dates)  # type: ignore[arg-type]

    smallest, largest = size(low), size(high)
    if smallest > limit or high == low:
        return low
    n = low + int((limit - smallest) * (high - low) / (largest - smallest))
    n = max(low, min(high, n))
    while n < high and size(n + 1) <= limit:
        n += 1
    while n > low and size(n) > limit:
        n -= 1
    return n


def extreme(model: type[M], *, dates: DateMode = "max", variant: int = 0, **overrides: Any) -> M:
    """Just the extreme instance of `model` (see `build`)."""
    return build(model, dates=dates, variant=variant, **overrides).instance


def field_paths(model: type[BaseModel]) -> set[str]:
    """Every field of `model` and of the models nested in it, as `Model.field`."""
    out: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(m: type[BaseModel]) -> None:
        if m in seen:
            return
        seen.add(m)
        for name, info in m.model_fields.items():
            out.add(f"{m.__name__}.{name}")
            for nested in _models_in(info.annotation):
                walk(nested)

    walk(model)
    return out


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)
