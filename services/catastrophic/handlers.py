"""Critical-illness handler: `BasicSettled` revisions → the person-year re-priced, accumulators,
ledger, `CatastrophicSettled` revisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from contracts import BasicSettled, ClaimSummary, Contract
from contracts.money import ZERO
from contracts.settlement import CatastrophicSettled, Cause
from contracts.topics import CATASTROPHIC_SETTLED
from policy import PolicyProfile
from policy.calculators.catastrophic import CatastrophicYearState
from policy.decisions.catastrophic import decide
from runtime.claim_layer import LayerOutcome, Priced, SummaryLayer, revised_results
from runtime.ledger import ClaimRow, Result


class CatastrophicLayer(SummaryLayer):
    producer = "catastrophic"
    output_topic = CATASTROPHIC_SETTLED
    year_state = CatastrophicYearState
    input_type = BasicSettled
    profile: PolicyProfile

    def price(self, row: ClaimRow[CatastrophicYearState], claim_input: BasicSettled, year: CatastrophicYearState,
              earlier: Sequence[ClaimRow[CatastrophicYearState]], others: Sequence[ClaimRow[CatastrophicYearState]],
              at: datetime) -> LayerOutcome[CatastrophicYearState]:
        decision = decide(claim_input, self.profile, year)
        result = decision.result
        return LayerOutcome(decision.event, base=result.base if result else ZERO, paid=result.paid if result else ZERO,
                            year_after=decision.year_after,
                            detail=decision.event.model_dump(mode="json", include={"catastrophic", "rejection"}))

    async def outputs(self, uow: Any, priced: Sequence[Priced[CatastrophicYearState]], at: datetime
                      ) -> list[Contract]:
        return revised_results(priced, reversed_catastrophic)


def reversed_catastrophic(previous: Result, revision: int, cause: Cause | None) -> CatastrophicSettled:
    return CatastrophicSettled(claim=ClaimSummary.model_validate(previous["claim"]), outcome=previous["outcome"],
                               residual_in_policy=ZERO, revision=revision, reversed=True, cause=cause)
