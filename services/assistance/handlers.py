"""Assistance handler: a batch of `CatastrophicSettled` → accumulators, ledger, statements, and one
`SettlementStatement` per discharge on `claims.statements`."""

from __future__ import annotations

import json

from contracts import CatastrophicSettled, SettlementStatement
from contracts.envelope import now
from contracts.topics import STATEMENTS
from policy import PolicyProfile
from runtime.claim_layer import LayerOutcome, SummaryLayer
from runtime.ledger import ZERO, YearAccumulator
from runtime.unit_of_work import Inbound, UnitOfWork
from services.assistance.calculator import AssistanceYearState
from services.assistance.domain import decide


class AssistanceLayer(SummaryLayer):
    producer = "assistance"
    output_topic = STATEMENTS
    profile: PolicyProfile

    def decide(self, msg: Inbound, acc: YearAccumulator) -> LayerOutcome:
        prior: CatastrophicSettled = msg.payload
        decision = decide(prior, self.profile, AssistanceYearState(paid=acc.paid), now())
        result, statement = decision.result, decision.statement
        after = None
        if decision.year_after is not None:
            after = YearAccumulator(acc.person_id, acc.insurance_year, accumulated=decision.year_after.paid,
                                    paid=decision.year_after.paid, claims=acc.claims + 1)
        ledger = self.ledger_row(
            prior.claim, outcome=statement.outcome, base=result.base if result else ZERO,
            paid=result.paid if result else ZERO, before=acc.paid, after=after.paid if after else acc.paid,
            detail={"category": result.category if result else None, "ratio": str(result.ratio) if result else None})
        return LayerOutcome(statement, ledger, after)


async def record_statements(uow: UnitOfWork, done: list[tuple[Inbound, LayerOutcome]]) -> None:
    statements: list[SettlementStatement] = [o.event for _, o in done]  # type: ignore[misc]
    await uow.conn.copy_records_to_table(
        "statement",
        columns=["claim_id", "person_id", "hospital_id", "insurance_year", "discharge_date", "outcome", "reason_code",
                 "total_cost", "in_policy", "hifp_pay", "hifmi_pay", "maf_pay", "psn_pay", "profile_id",
                 "profile_version", "statement"],
        records=[(s.claim_id, s.person_id, s.hospital_id, s.insurance_year, s.discharge_date, s.outcome,
                  s.rejection.reason_code if s.rejection else None, s.total_cost, s.in_policy, s.hifp_pay,
                  s.hifmi_pay, s.maf_pay, s.psn_pay, s.profile_id, s.profile_version,
                  json.dumps(s.model_dump(mode="json"))) for s in statements])
