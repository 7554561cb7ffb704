"""Assistance handler: `CatastrophicSettled` revisions → the person-year re-priced, accumulators,
ledger, and what the hospital receives on `claims.statements`: the first `SettlementStatement` of
a claim, a `SettlementAdjusted` when a revision changes its amounts, a `SettlementReversed` when it
is reversed. A claim's net amounts are the sum of its statements (table `statement`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from contracts import Contract
from contracts.money import ZERO
from contracts.settlement import (
    CatastrophicSettled,
    ClaimStatement,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
)
from contracts.topics import STATEMENTS
from policy import PolicyProfile
from policy.calculators.assistance import AssistanceYearState
from policy.decisions.assistance import decide
from runtime.claim_layer import InMemoryLayerUnitOfWork, LayerOutcome, PostgresLayerUnitOfWork, Priced, SummaryLayer
from runtime.db import Connection
from runtime.ledger import ClaimRow

AMOUNTS = ("total_cost", "in_policy", "out_of_policy", "hifp_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt",
           "psn_pay")
"""The amounts of every statement; a claim's net is their sum over its statements."""


@dataclass
class Net:
    """A claim's net amounts so far, and whether its last statement reversed it."""

    amounts: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(AMOUNTS, ZERO))
    reversed: bool = False


def kind_of(statement: ClaimStatement) -> str:
    return {SettlementStatement: "statement", SettlementAdjusted: "adjustment",
            SettlementReversed: "reversal"}[type(statement)]


class StatementStore(Protocol):
    async def nets(self, claim_ids: Iterable[str]) -> dict[str, Net]:
        """The net of every claim that has statements."""
        ...

    async def add(self, statements: Sequence[ClaimStatement]) -> None: ...


class PostgresStatements:
    """The statements the service emitted (table `statement`), one row each."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def nets(self, claim_ids: Iterable[str]) -> dict[str, Net]:
        sums = ", ".join(f"sum({a}) AS {a}" for a in AMOUNTS)
        rows = await self.conn.fetch(
            f"""SELECT claim_id, {sums}, (array_agg(kind ORDER BY revision DESC))[1] AS last_kind
                FROM statement WHERE claim_id = ANY($1::text[]) GROUP BY claim_id""", list(set(claim_ids)))
        return {r["claim_id"]: Net({a: r[a] for a in AMOUNTS}, r["last_kind"] == "reversal") for r in rows}

    async def add(self, statements: Sequence[ClaimStatement]) -> None:
        if not statements:
            return
        await self.conn.copy_records_to_table(
            "statement",
            columns=["claim_id", "revision", "kind", "person_id", "hospital_id", "insurance_year", "discharge_date",
                     "outcome", "reason_code", *AMOUNTS, "profile_id", "profile_version", "statement"],
            records=[(s.claim_id, s.revision, kind_of(s), s.person_id, s.hospital_id, s.insurance_year,
                      s.discharge_date, getattr(s, "outcome", "reversed"), _reason_code(s),
                      *(getattr(s, a) for a in AMOUNTS), getattr(s, "profile_id", None),
                      getattr(s, "profile_version", None), json.dumps(s.model_dump(mode="json")))
                     for s in statements])


def _reason_code(s: ClaimStatement) -> str | None:
    rejection = getattr(s, "rejection", None)
    return rejection.reason_code if rejection is not None else None


def add(net: Net | None, statement: ClaimStatement) -> Net:
    """A claim's net after one more statement."""
    amounts = dict(net.amounts) if net is not None else Net().amounts
    for a in AMOUNTS:
        amounts[a] += getattr(statement, a)
    return Net(amounts, isinstance(statement, SettlementReversed))


class InMemoryStatements:
    def __init__(self) -> None:
        self.rows: list[ClaimStatement] = []

    async def nets(self, claim_ids: Iterable[str]) -> dict[str, Net]:
        wanted, out = set(claim_ids), dict[str, Net]()
        for s in self.rows:
            if s.claim_id in wanted:
                out[s.claim_id] = add(out.get(s.claim_id), s)
        return out

    async def add(self, statements: Sequence[ClaimStatement]) -> None:
        self.rows.extend(statements)


class PostgresAssistanceUnitOfWork(PostgresLayerUnitOfWork):
    def __init__(self, conn: Connection, topic_prefix: str) -> None:
        super().__init__(conn, topic_prefix, AssistanceYearState)
        self.statements: StatementStore = PostgresStatements(conn)


class InMemoryAssistanceUnitOfWork(InMemoryLayerUnitOfWork):
    def __init__(self, topic_prefix: str = "") -> None:
        super().__init__(AssistanceYearState, topic_prefix)
        self.statements = InMemoryStatements()


class AssistanceLayer(SummaryLayer):
    producer = "assistance"
    output_topic = STATEMENTS
    year_state = AssistanceYearState
    input_type = CatastrophicSettled
    profile: PolicyProfile

    def price(self, row: ClaimRow[AssistanceYearState], claim_input: CatastrophicSettled, year: AssistanceYearState,
              earlier: Sequence[ClaimRow[AssistanceYearState]], others: Sequence[ClaimRow[AssistanceYearState]],
              at: datetime) -> LayerOutcome[AssistanceYearState]:
        decision = decide(claim_input, self.profile, year, settled_at=at)
        result = decision.result
        return LayerOutcome(decision.statement, base=result.base if result else ZERO,
                            paid=result.paid if result else ZERO, year_after=decision.year_after,
                            detail={"category": result.category if result else None,
                                    "ratio": str(result.ratio) if result else None})

    async def outputs(self, uow: Any, priced: Sequence[Priced[AssistanceYearState]], at: datetime
                      ) -> list[Contract]:
        nets = await uow.statements.nets(p.row.claim_id for p in priced)
        out: list[ClaimStatement] = []
        for p in priced:  # in order: one claim may have two revisions in a batch
            statement = statement_for(p, nets.get(p.row.claim_id), at)
            if statement is not None:
                out.append(statement)
                nets[statement.claim_id] = add(nets.get(statement.claim_id), statement)
        await uow.statements.add(out)
        return list(out)


def statement_for(p: Priced[AssistanceYearState], net: Net | None, at: datetime) -> ClaimStatement | None:
    """What the hospital receives for a revision: the full statement the first time (and after a
    reversal), the differences from the net so far after that, the net negated for a reversal."""
    rev = p.revision
    revision, cause = rev.entry.revision, rev.cause
    if p.outcome is None:  # reversed
        if net is None or net.reversed or cause is None:
            return None
        previous = rev.previous or {}
        return SettlementReversed(**_claim_fields(previous), revision=revision, cause=cause, settled_at=at,
                                  **{a: -net.amounts[a] for a in AMOUNTS})
    full = p.outcome.event
    assert isinstance(full, SettlementStatement)
    if net is None or net.reversed:
        return full.model_copy(update={"revision": revision})
    deltas = {a: getattr(full, a) - net.amounts[a] for a in AMOUNTS}
    if all(v == 0 for v in deltas.values()):
        return None
    assert cause is not None, "a revision of an already stated claim has a cause"
    return SettlementAdjusted(**_claim_fields(full.model_dump()), revision=revision, cause=cause, settled_at=at,
                              outcome=full.outcome, rejection=full.rejection, details=full.details,
                              profile_id=full.profile_id, profile_version=full.profile_version, **deltas)


def _claim_fields(statement: dict[str, Any]) -> dict[str, Any]:
    keys = ("claim_id", "hospital_claim_id", "hospital_id", "person_id", "admission_date", "discharge_date",
            "insurance_year")
    return {k: statement[k] for k in keys}

