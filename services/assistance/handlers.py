"""Assistance handler: a batch of `CatastrophicSettled` → accumulators, ledger, statements, and one
`SettlementStatement` per discharge on `claims.statements`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from contracts import CatastrophicSettled, SettlementStatement
from contracts.money import ZERO
from contracts.topics import STATEMENTS
from policy import PolicyProfile
from policy.calculators.assistance import AssistanceYearState
from policy.decisions.assistance import decide
from runtime.claim_layer import (
    InMemoryLayerUnitOfWork,
    LayerOutcome,
    PostgresLayerUnitOfWork,
    SummaryLayer,
)
from runtime.db import Connection
from runtime.unit_of_work import Inbound


class AssistanceLayer(SummaryLayer):
    producer = "assistance"
    output_topic = STATEMENTS
    year_state = AssistanceYearState
    profile: PolicyProfile

    def decide(self, msg: Inbound, year: AssistanceYearState, at: datetime) -> LayerOutcome[AssistanceYearState]:
        prior: CatastrophicSettled = msg.payload
        decision = decide(prior, self.profile, year, settled_at=at)
        result = decision.result
        return LayerOutcome(decision.statement, base=result.base if result else ZERO,
                            paid=result.paid if result else ZERO, year_after=decision.year_after,
                            detail={"category": result.category if result else None,
                                    "ratio": str(result.ratio) if result else None})


class PostgresStatements:
    """The statements the service emitted (table `statement`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, statements: list[SettlementStatement]) -> None:
        await self.conn.copy_records_to_table(
            "statement",
            columns=["claim_id", "person_id", "hospital_id", "insurance_year", "discharge_date", "outcome",
                     "reason_code", "total_cost", "in_policy", "hifp_pay", "hifmi_pay", "maf_pay", "psn_pay",
                     "profile_id", "profile_version", "statement"],
            records=[(s.claim_id, s.person_id, s.hospital_id, s.insurance_year, s.discharge_date, s.outcome,
                      s.rejection.reason_code if s.rejection else None, s.total_cost, s.in_policy, s.hifp_pay,
                      s.hifmi_pay, s.maf_pay, s.psn_pay, s.profile_id, s.profile_version,
                      json.dumps(s.model_dump(mode="json"))) for s in statements])


class InMemoryStatements:
    def __init__(self) -> None:
        self.rows: list[SettlementStatement] = []

    async def add(self, statements: list[SettlementStatement]) -> None:
        self.rows.extend(statements)


class PostgresAssistanceUnitOfWork(PostgresLayerUnitOfWork):
    def __init__(self, conn: Connection, topic_prefix: str) -> None:
        super().__init__(conn, topic_prefix, AssistanceYearState)
        self.statements = PostgresStatements(conn)


class InMemoryAssistanceUnitOfWork(InMemoryLayerUnitOfWork):
    def __init__(self, topic_prefix: str = "") -> None:
        super().__init__(AssistanceYearState, topic_prefix)
        self.statements = InMemoryStatements()


async def record_statements(uow: Any, done: list[tuple[Inbound, LayerOutcome[AssistanceYearState]]]) -> None:
    await uow.statements.add([o.event for _, o in done])
