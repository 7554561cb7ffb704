"""Basic insurance handler: a batch of discharges → accumulators, ledger and `BasicSettled` events."""

from __future__ import annotations

import asyncpg

from contracts import DischargeRecorded, PersonSnapshot, ProviderSnapshot
from contracts.topics import BASIC_SETTLED
from policy import PolicyProfile
from runtime.claim_layer import ClaimRef, LayerOutcome
from runtime.ledger import ZERO, LedgerRow, YearAccumulator
from runtime.unit_of_work import Inbound
from services.settlement import store
from services.settlement.calculator import BasicYearState
from services.settlement.domain import decide


class BasicLayer:
    """The basic layer as the shared claim-layer handler sees it."""

    producer = "settlement"
    output_topic = BASIC_SETTLED

    def __init__(self, profile: PolicyProfile) -> None:
        self.profile = profile
        self.persons: dict[str, PersonSnapshot] = {}
        self.providers: dict[str, ProviderSnapshot] = {}

    async def prepare(self, conn: asyncpg.Connection, todo: list[Inbound]) -> None:
        """Load the registry rows the batch needs from the local projections."""
        self.persons = await store.load_persons(conn, (m.payload.person_id for m in todo))
        self.providers = await store.load_providers(conn, (m.payload.hospital_id for m in todo))

    def ref(self, msg: Inbound) -> ClaimRef:
        d: DischargeRecorded = msg.payload
        return ClaimRef(d.claim_id, d.person_id, d.discharge_date.year)

    def decide(self, msg: Inbound, acc: YearAccumulator) -> LayerOutcome:
        d: DischargeRecorded = msg.payload
        decision = decide(d, str(msg.envelope.event_id), self.persons.get(d.person_id),
                          self.providers.get(d.hospital_id), self.profile,
                          BasicYearState(paid=acc.paid, deductible_met=acc.accumulated))
        event = decision.event
        paid = event.basic.paid if event.basic else ZERO
        after = None
        if decision.year_after is not None:
            after = YearAccumulator(acc.person_id, acc.insurance_year, accumulated=decision.year_after.deductible_met,
                                    paid=decision.year_after.paid, claims=acc.claims + 1)
        ledger = LedgerRow(
            claim_id=d.claim_id, person_id=d.person_id, hospital_id=d.hospital_id,
            insurance_year=d.discharge_date.year, outcome=event.outcome, base=event.claim.in_policy, paid=paid,
            accumulated_before=acc.paid, accumulated_after=after.paid if after else acc.paid,
            profile_id=self.profile.id, profile_version=self.profile.version,
            detail=event.model_dump(mode="json", include={"basic", "rejection"}))
        return LayerOutcome(event, ledger, after)
