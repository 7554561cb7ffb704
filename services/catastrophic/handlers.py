"""Critical-illness handler: a batch of `BasicSettled` → accumulators, ledger, `CatastrophicSettled`."""

from __future__ import annotations

from contracts import BasicSettled
from contracts.topics import CATASTROPHIC_SETTLED
from policy import PolicyProfile
from runtime.claim_layer import LayerOutcome, SummaryLayer
from runtime.ledger import ZERO, YearAccumulator
from runtime.unit_of_work import Inbound
from services.catastrophic.calculator import CatastrophicYearState
from services.catastrophic.domain import decide


class CatastrophicLayer(SummaryLayer):
    producer = "catastrophic"
    output_topic = CATASTROPHIC_SETTLED
    profile: PolicyProfile

    def decide(self, msg: Inbound, acc: YearAccumulator) -> LayerOutcome:
        basic: BasicSettled = msg.payload
        decision = decide(basic, self.profile, CatastrophicYearState(accumulation=acc.accumulated, paid=acc.paid))
        event, result = decision.event, decision.result
        after = None
        if decision.year_after is not None:
            after = YearAccumulator(acc.person_id, acc.insurance_year, accumulated=decision.year_after.accumulation,
                                    paid=decision.year_after.paid, claims=acc.claims + 1)
        ledger = self.ledger_row(
            basic.claim, outcome=event.outcome, base=result.base if result else ZERO,
            paid=result.paid if result else ZERO, before=acc.accumulated,
            after=after.accumulated if after else acc.accumulated,
            detail=event.model_dump(mode="json", include={"catastrophic", "rejection"}))
        return LayerOutcome(event, ledger, after)
