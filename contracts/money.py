"""Money on the wire: yuan as a `Decimal` with exactly two places (fen), serialised as a string.

A float never carries money. JSON input may be a decimal string (preferred) or a JSON integer;
JSON floats are refused because their binary value is not the amount the sender meant.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

FEN = Decimal("0.01")


def _to_money(value: Any) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("money must be a decimal string such as \"12.30\", not a float")
    if isinstance(value, int):
        return Decimal(value).quantize(FEN)
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"money must be a decimal string, got {value!r}") from None
    else:
        raise ValueError(f"money must be a decimal string, got {type(value).__name__}")
    if not amount.is_finite():
        raise ValueError("money must be finite")
    if amount != amount.quantize(FEN):
        raise ValueError(f"money has more than two decimal places (fen): {value!r}")
    return amount.quantize(FEN)


Money = Annotated[
    Decimal,
    BeforeValidator(_to_money),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "yuan, two decimals (fen)"},
        mode="serialization",
    ),
    WithJsonSchema(
        {"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$", "description": "yuan, at most two decimals (fen)"},
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
