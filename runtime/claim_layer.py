"""The batch handler every settlement layer shares (basic, critical illness, assistance).

For a batch of claim events it: keeps the claims never processed (natural key: claim id), loads
the (person, insurance year) accumulators they touch in one query, folds the layer's pure
decision over the claims in arrival order (one person's claims are in one partition, in order),
writes accumulators and ledger rows back, and emits each claim's result with a deterministic id
(`derived_event_id(<type>, claim id)`) keyed by person id — all in the batch's unit of work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import asyncpg

from contracts import Contract, derived_event_id, make_envelope
from runtime.ledger import LedgerRow, YearAccumulator, insert_ledger, load_accumulators, save_accumulators
from runtime.unit_of_work import Inbound, UnitOfWork


@dataclass(frozen=True)
class ClaimRef:
    claim_id: str
    person_id: str
    insurance_year: int


@dataclass(frozen=True)
class LayerOutcome:
    event: Contract
    """the layer's result, published on the layer's output topic"""
    ledger: LedgerRow
    accumulator_after: YearAccumulator | None
    """None: the claim did not change the accumulator (e.g. a rejected claim)"""


class ClaimLayer(Protocol):
    """What a layer service supplies: how to read its input and its pure decision."""

    producer: str
    output_topic: str

    def ref(self, msg: Inbound) -> ClaimRef: ...

    def decide(self, msg: Inbound, accumulator: YearAccumulator) -> LayerOutcome: ...


Hook = Callable[[asyncpg.Connection, list[Inbound]], Awaitable[None]]
AfterHook = Callable[[UnitOfWork, list[tuple[Inbound, LayerOutcome]]], Awaitable[None]]


class ClaimLayerHandler:
    def __init__(self, layer: ClaimLayer, *, prepare: Hook | None = None, after: AfterHook | None = None) -> None:
        self.layer = layer
        self.prepare = prepare
        self.after = after

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound]) -> None:
        refs = {id(m): self.layer.ref(m) for m in batch}
        todo = await uow.new_only(batch, lambda m: refs[id(m)].claim_id)
        if not todo:
            return
        if self.prepare is not None:
            await self.prepare(uow.conn, todo)
        accumulators = await load_accumulators(
            uow.conn, [(refs[id(m)].person_id, refs[id(m)].insurance_year) for m in todo])
        changed: dict[tuple[str, int], YearAccumulator] = {}
        ledger: list[LedgerRow] = []
        done: list[tuple[Inbound, LayerOutcome]] = []
        for msg in todo:
            ref = refs[id(msg)]
            key = (ref.person_id, ref.insurance_year)
            outcome = self.layer.decide(msg, accumulators[key])
            if outcome.accumulator_after is not None:
                accumulators[key] = changed[key] = outcome.accumulator_after
            ledger.append(outcome.ledger)
            done.append((msg, outcome))
            uow.emit(self.layer.output_topic, make_envelope(
                outcome.event, correlation_id=ref.claim_id, producer=self.layer.producer,
                causation_id=msg.envelope.event_id,
                event_id=derived_event_id(type(outcome.event).__name__, ref.claim_id)))
        await save_accumulators(uow.conn, changed.values())
        await insert_ledger(uow.conn, ledger)
        if self.after is not None:
            await self.after(uow, done)


def claim_ref_of_summary(payload: Any) -> ClaimRef:
    """The ref of a layer event that carries a `ClaimSummary` as `claim`."""
    c = payload.claim
    return ClaimRef(c.claim_id, c.person_id, c.insurance_year)


class SummaryLayer:
    """Base of the layers after basic insurance: their input carries the `ClaimSummary` as `claim`,
    and they price it under one policy profile."""

    def __init__(self, profile: Any) -> None:
        self.profile = profile

    def ref(self, msg: Inbound) -> ClaimRef:
        return claim_ref_of_summary(msg.payload)

    def ledger_row(self, claim: Any, *, outcome: str, base: Decimal, paid: Decimal, before: Decimal, after: Decimal,
                   detail: dict[str, Any]) -> LedgerRow:
        return LedgerRow(claim_id=claim.claim_id, person_id=claim.person_id, hospital_id=claim.hospital_id,
                         insurance_year=claim.insurance_year, outcome=outcome, base=base, paid=paid,
                         accumulated_before=before, accumulated_after=after, profile_id=self.profile.id,
                         profile_version=self.profile.version, detail=detail)

