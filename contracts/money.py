"""Money on the wire: yuan as a `Decimal` with exactly two places (fen), serialised as a string.

A float never carries money. JSON input may be a decimal string (preferred) or a JSON integer;
JSON floats are refused because their binary value is not the amount the sender meant. Every
amount has at most 12 integer digits (`contracts.limits.MONEY_MAX`, what a `numeric(14, 2)`
column holds); fields with a tighter sanity bound say so.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from contracts.limits import MONEY_MAX

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
ONE = Decimal(1)
_MONEY_TEXT = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,2})?")
_MAX_DECIMAL_CHARS = 40


def parse_decimal(value: Any) -> Decimal:
    """The one parse of an exact decimal (ratios, quantities, profile values): a `Decimal`, an
    `int` or a decimal string of at most 40 characters; finite. A float is refused: its binary
    value is not the number the sender meant. Raises `ValueError` naming the problem."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"must be a decimal string or an integer, not a float ({value!r}); "
                         "write it quoted, e.g. \"0.40\"")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        if len(value) > _MAX_DECIMAL_CHARS:
            raise ValueError(f"a decimal string has at most {_MAX_DECIMAL_CHARS} characters")
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise ValueError(f"must be a decimal string or an integer, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"must be finite, got {value!r}")
    return result


def round_fen(amount: Decimal) -> Decimal:
    """Round half-up to the fen (四舍五入到分)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def is_fen(amount: Decimal) -> bool:
    """True if the amount has at most two decimal places."""
    return amount == amount.quantize(FEN)


def parse_money(value: Any) -> Decimal:
    """A two-place `Decimal` from a decimal string, an int or a `Decimal`; `ValueError` otherwise
    (a float, more than two decimals, more than 12 integer digits, not finite)."""
    if isinstance(value, str):
        if _MONEY_TEXT.fullmatch(value) is None:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise ValueError(f"money must be a decimal string with at most 12 integer digits and two decimals "
                             f"(fen), such as \"12.30\"; got {shown!r}")
        return Decimal(value).quantize(FEN)
    if isinstance(value, (bool, float)):
        raise ValueError("money must be a decimal string such as \"12.30\", not a float")
    if not isinstance(value, (int, Decimal)):
        raise ValueError(f"money must be a decimal string, got {type(value).__name__}")
    amount = parse_decimal(value)
    if abs(amount) > MONEY_MAX:
        raise ValueError(f"money must be at most {MONEY_MAX} in absolute value")
    if not is_fen(amount):
        raise ValueError(f"money has more than two decimals (fen): {value!r}")
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
