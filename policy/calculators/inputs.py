"""Validation of the calculators' inputs: amounts are non-negative `Decimal`s in fen, and a
claim's amounts cover the catalogue classes. A bad input is an `InvalidClaimError`."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from contracts.money import ONE, ZERO, is_fen
from policy.errors import InvalidClaimError


def claim_money(value: object, what: str) -> Decimal:
    """A non-negative `Decimal` (or int) in fen; else `InvalidClaimError`."""
    if type(value) is Decimal:  # the common case, checked in one quantize (NaN and infinity take the long way)
        try:
            fen = value.quantize(ZERO)
        except InvalidOperation:
            fen = None
        if fen is not None and fen == value and fen >= 0:
            return fen
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise InvalidClaimError(f"{what}: must be a Decimal amount, got {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise InvalidClaimError(f"{what}: must be a finite amount >= 0, got {value}")
    if not is_fen(amount):
        raise InvalidClaimError(f"{what}: more than two decimal places (fen): {value}")
    return amount.quantize(ZERO)


def validated_amounts_by_class(amounts: object, classes: tuple[str, ...]) -> dict[str, Decimal]:
    """Validated amounts for every catalogue class (missing classes are zero)."""
    if not isinstance(amounts, Mapping):
        raise InvalidClaimError("amounts_by_class: must be a mapping of catalogue class to amount")
    for cls in amounts:
        if cls not in classes:
            raise InvalidClaimError(f"amounts_by_class: unknown catalogue class {cls!r} (expected {', '.join(classes)})")
    return {cls: claim_money(amounts.get(cls, ZERO), f"amounts_by_class.{cls}") for cls in classes}


def clamp_ratio(ratio: Decimal) -> Decimal:
    """Keep an adjusted ratio inside 0..1."""
    return max(Decimal(0), min(ONE, ratio))
