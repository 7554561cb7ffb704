"""Critical-illness handler: a batch of `BasicSettled` → accumulators, ledger, `CatastrophicSettled`."""

from __future__ import annotations

from contracts import BasicSettled
from contracts.topics import CATASTROPHIC_SETTLED
from policy import PolicyProfile
from runtime.claim_layer import ClaimRef, LayerOutcome, claim_ref_of_summary
from runtime.ledger import ZERO, LedgerRow, YearAccumulator
from runtime.unit_of_work import Inbound
from services.catastrophic.calculator import CatastrophicYearState
from services.catastrophic.domain import decide


class CatastrophicLayer:
    producer = "catastrophic"
    output_topic = CATASTROPHIC_SETTLED

    def __init__(self, profile: PolicyProfile) -> None:
        self.profile = profile

    def ref(self, msg: Inbound) -> ClaimRef:
        return claim_ref_of_summary(msg.payload)

    def decide(self, msg: Inbound, acc: YearAccumulator) -> LayerOutcome:
        basic: BasicSettled = msg.payload
        decision = decide(basic, self.profile, CatastrophicYearState(accumulation=acc.accumulated, paid=acc.paid))
        event, result = decision.event, decision.result
        after = None
        if decision.year_after is not None:
            after = YearAccumulator(acc.person_id, acc.insurance_year, accumulated=decision.year_after.accumulation,
                                    paid=decision.year_after.paid, claims=acc.claims + 1)
        c = basic.claim
        ledger = LedgerRow(
            claim_id=c.claim_id, person_id=c.person_id, hospital_id=c.hospital_id, insurance_year=c.insurance_year,
            outcome=event.outcome, base=result.base if result else ZERO, paid=result.paid if result else ZERO,
            accumulated_before=acc.accumulated, accumulated_after=after.accumulated if after else acc.accumulated,
            profile_id=self.profile.id, profile_version=self.profile.version,
            detail=event.model_dump(mode="json", include={"catastrophic", "rejection"}))
        return LayerOutcome(event, ledger, after)
