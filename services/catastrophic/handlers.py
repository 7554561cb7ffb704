"""Critical-illness handler: a batch of `BasicSettled` → accumulators, ledger, `CatastrophicSettled`."""

from __future__ import annotations

from datetime import datetime

from contracts import BasicSettled
from contracts.money import ZERO
from contracts.topics import CATASTROPHIC_SETTLED
from policy import PolicyProfile
from policy.calculators.catastrophic import CatastrophicYearState
from policy.decisions.catastrophic import decide
from runtime.claim_layer import LayerOutcome, SummaryLayer
from runtime.unit_of_work import Inbound


class CatastrophicLayer(SummaryLayer):
    producer = "catastrophic"
    output_topic = CATASTROPHIC_SETTLED
    year_state = CatastrophicYearState
    profile: PolicyProfile

    def decide(self, msg: Inbound, year: CatastrophicYearState, at: datetime) -> LayerOutcome[CatastrophicYearState]:
        basic: BasicSettled = msg.payload
        decision = decide(basic, self.profile, year)
        result = decision.result
        return LayerOutcome(decision.event, base=result.base if result else ZERO, paid=result.paid if result else ZERO,
                            year_after=decision.year_after,
                            detail=decision.event.model_dump(mode="json", include={"catastrophic", "rejection"}))
