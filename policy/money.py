"""Exact money and ratio arithmetic for the policy layer (no float ever touches money).

Money is yuan as a `Decimal`; every layer result is rounded half-up to the fen (分, 0.01).
Ratios are `Decimal` fractions between 0 and 1 (0.40 = 40%).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from policy.errors import InvalidClaimError

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
ONE = Decimal(1)


def round_fen(amount: Decimal) -> Decimal:
    """Round half-up to the fen (四舍五入到分)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def to_decimal(value: Any) -> Decimal:
    """An exact `Decimal` from a `Decimal`, an `int` or a decimal string; floats are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"must be a decimal string or integer, not a float ({value!r}); write it quoted, e.g. \"0.40\"")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip().replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise ValueError(f"must be a decimal string or integer, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"must be finite, got {value!r}")
    return result


def is_fen(amount: Decimal) -> bool:
    """True if the amount has at most two decimal places."""
    return amount == amount.quantize(FEN)


def clamp_ratio(ratio: Decimal) -> Decimal:
    """Keep an adjusted ratio inside 0..1."""
    return max(Decimal(0), min(ONE, ratio))


def claim_money(value: object, what: str) -> Decimal:
    """Validate a claim amount: a non-negative `Decimal` (or int) in fen; else `InvalidClaimError`."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise InvalidClaimError(f"{what}: must be a Decimal amount, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise InvalidClaimError(f"{what}: must be a finite amount >= 0, got {value}")
    if not is_fen(amount):
        raise InvalidClaimError(f"{what}: more than two decimal places (fen): {value}")
    return amount.quantize(FEN)


def amounts_by_class(amounts: object, classes: tuple[str, ...]) -> dict[str, Decimal]:
    """Validated amounts for every catalogue class (missing classes are zero)."""
    if not isinstance(amounts, Mapping):
        raise InvalidClaimError("amounts_by_class: must be a mapping of catalogue class to amount")
    for cls in amounts:
        if cls not in classes:
            raise InvalidClaimError(f"amounts_by_class: unknown catalogue class {cls!r} (expected {', '.join(classes)})")
    return {cls: claim_money(amounts.get(cls, ZERO), f"amounts_by_class.{cls}") for cls in classes}
