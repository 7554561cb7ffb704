"""Corrections (重新结算) and reversals (冲正) of generated discharges, deterministic for a seed: what a
year of history holds besides first settlements (the what-if benchmark and tests re-price such a
year). Shares are illustrative."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal

from contracts.claims import DischargeCorrected, DischargeRecorded, ReversalRequested


def corrected(d: DischargeRecorded, reason: str = "bill corrected: a line billed in error removed") -> DischargeCorrected:
    """The discharge with its last bill line removed (a line billed in error), as a correction."""
    lines = d.lines[:-1] if len(d.lines) > 1 else d.lines
    return DischargeCorrected(**{**d.model_dump(exclude={"lines", "total_amount"}), "lines": lines,
                                 "total_amount": sum((ln.amount for ln in lines), start=Decimal("0.00")),
                                 "correction_reason": reason})


def revisions(discharges: Sequence[DischargeRecorded], seed: int, correction_share: float = 0.005,
              reversal_share: float = 0.005) -> tuple[list[DischargeCorrected], list[ReversalRequested]]:
    """Corrections of `correction_share` and reversals of `reversal_share` of the discharges
    (different claims), to be sent after them."""
    rng = random.Random(f"revisions:{seed}")
    picked = rng.sample(range(len(discharges)), round(len(discharges) * (correction_share + reversal_share)))
    n_corrections = round(len(discharges) * correction_share)
    corrections = [corrected(discharges[i]) for i in picked[:n_corrections]]
    reversals = [ReversalRequested(hospital_claim_id=d.hospital_claim_id, hospital_id=d.hospital_id,
                                   person_id=d.person_id, reason="settled in error")
                 for d in (discharges[i] for i in picked[n_corrections:])]
    return corrections, reversals
