"""Money on the wire: yuan as a `Decimal` with exactly two places (fen), serialised as a string.

A float never carries money. JSON input may be a decimal string (preferred) or a JSON integer;
JSON floats are refused because their binary value is not the amount the sender meant. Every
amount has at most 12 integer digits (`contracts.limits.MONEY_MAX`, what a `numeric(14, 2)`
column holds); fields with a tighter sanity bound say so.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from contracts.limits import MONEY_MAX

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
_MONEY_TEXT = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,2})?")


def parse_money(value: Any) -> Decimal:
    """A two-place `Decimal` from a decimal string, an int or a `Decimal`; `ValueError` otherwise
    (a float, more than two decimals, more than 12 integer digits, not finite)."""
    if isinstance(value, str):
        if _MONEY_TEXT.fullmatch(value) is None:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise ValueError(f"money must be a decimal string with at most 12 integer digits and two decimals "
                             f"(fen), such as \"12.30\"; got {shown!r}")
        return Decimal(value).quantize(FEN)
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("money must be a decimal string such as \"12.30\", not a float")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    else:
        raise ValueError(f"money must be a decimal string, got {type(value).__name__}")
    if not amount.is_finite():
        raise ValueError("money must be finite")
    if abs(amount) > MONEY_MAX:
        raise ValueError(f"money must be at most {MONEY_MAX} in absolute value")
    if amount != amount.quantize(FEN):
        raise ValueError(f"money has more than two decimal places (fen): {value!r}")
    return amount.quantize(FEN)


Money = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^-?\d{1,12}\.\d{2}$", "description": "yuan, two decimals (fen)"},
        mode="serialization",
    ),
    WithJsonSchema(
        {"type": "string", "pattern": r"^-?\d{1,12}(\.\d{1,2})?$", "description": "yuan, at most two decimals (fen)"},
        mode="validation",
    ),
]
"""Any amount of money: may be negative (a correction); use `NonNegativeMoney` for bills."""


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("amount must not be negative")
    return value


NonNegativeMoney = Annotated[Money, AfterValidator(_non_negative)]


def to_fen(amount: Decimal) -> int:
    """Integer fen of a two-place amount."""
    return int((amount * 100).to_integral_exact())


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(FEN)
