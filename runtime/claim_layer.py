"""The batch handler every settlement layer shares (basic, critical illness, assistance).

For a batch of claim events it: keeps the claims never processed (natural key: claim id), loads
the (person, insurance year) accumulators they touch in one query, folds the layer's pure
decision over the claims in arrival order (one person's claims are in one partition, in order),
writes accumulators and ledger rows back, and emits each claim's result with a deterministic id
(`derived_event_id(<type>, claim id)`) keyed by person id — all in the batch's unit of work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from contracts import derived_event_id, make_envelope
from contracts.envelope import now
from contracts.settlement import LayerResult
from runtime.db import Connection
from runtime.ledger import (
    InMemoryLedger,
    LedgerRow,
    LedgerStore,
    PostgresLedger,
    YearKey,
    YearRow,
    state_values,
)
from runtime.unit_of_work import (
    Inbound,
    InMemoryUnitOfWork,
    PostgresUnitOfWork,
    UnitOfWork,
)

S = TypeVar("S")


@dataclass(frozen=True)
class ClaimRef:
    claim_id: str
    person_id: str
    hospital_id: str
    insurance_year: int


@dataclass(frozen=True)
class LayerOutcome(Generic[S]):
    """A layer's decision on one claim, as the shared handler stores and publishes it."""

    event: LayerResult
    """the layer's result, published on the layer's output topic"""
    base: Decimal
    """what the layer priced"""
    paid: Decimal
    """what the layer's fund paid"""
    year_after: S | None
    """None: the claim did not change the accumulator (e.g. a rejected claim)"""
    detail: dict[str, Any] = field(default_factory=dict)
    """the ledger row's detail"""


class ClaimLayer(Protocol[S]):
    """What a layer service supplies: how to read its input and its pure decision."""

    producer: str
    output_topic: str
    year_state: type[S]
    """the calculator's year state: the accumulator's columns"""
    profile: Any

    def ref(self, msg: Inbound) -> ClaimRef: ...

    def decide(self, msg: Inbound, year: S, at: datetime) -> LayerOutcome[S]:
        """The pure decision on one claim, given the person-year's state before it and the time the
        batch is handled (the handler reads the clock once, so the decision itself stays pure)."""
        ...


class LayerUnitOfWork(UnitOfWork, Protocol):
    """A layer's unit of work: the runtime's plus the layer's ledger."""

    @property
    def ledger(self) -> LedgerStore[Any]: ...


class PostgresLayerUnitOfWork(PostgresUnitOfWork):
    def __init__(self, conn: Connection, topic_prefix: str, year_state: type[Any]) -> None:
        super().__init__(conn, topic_prefix)
        self.ledger: LedgerStore[Any] = PostgresLedger(conn, year_state)


class InMemoryLayerUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, year_state: type[Any], topic_prefix: str = "") -> None:
        super().__init__(topic_prefix)
        self.ledger: InMemoryLedger[Any] = InMemoryLedger(year_state)


def postgres_unit_of_work(layer: ClaimLayer[Any]) -> Callable[[Connection, str], PostgresLayerUnitOfWork]:
    """The unit-of-work factory of a layer service (for its `Subscription`)."""
    return lambda conn, prefix: PostgresLayerUnitOfWork(conn, prefix, layer.year_state)


Hook = Callable[[Any, list[Inbound]], Awaitable[None]]
AfterHook = Callable[[Any, list[tuple[Inbound, LayerOutcome[Any]]]], Awaitable[None]]


class ClaimLayerHandler(Generic[S]):
    def __init__(self, layer: ClaimLayer[S], *, prepare: Hook | None = None, after: AfterHook | None = None,
                 clock: Callable[[], datetime] = now) -> None:
        self.layer = layer
        self.prepare = prepare
        self.after = after
        self.clock = clock

    async def __call__(self, uow: LayerUnitOfWork, batch: list[Inbound]) -> None:
        refs = {id(m): self.layer.ref(m) for m in batch}
        todo = await uow.new_only(batch, lambda m: refs[id(m)].claim_id)
        if not todo:
            return
        if self.prepare is not None:
            await self.prepare(uow, todo)
        years = await uow.ledger.load_years((refs[id(m)].person_id, refs[id(m)].insurance_year) for m in todo)
        changed: dict[YearKey, YearRow[S]] = {}
        ledger: list[LedgerRow] = []
        done: list[tuple[Inbound, LayerOutcome[S]]] = []
        at = self.clock()
        for msg in todo:
            ref = refs[id(msg)]
            key = (ref.person_id, ref.insurance_year)
            before = years[key]
            outcome = self.layer.decide(msg, before.state, at)
            after = before.state
            if outcome.year_after is not None:
                after = outcome.year_after
                years[key] = changed[key] = YearRow(after, before.claims + 1)
            ledger.append(self._ledger_row(ref, outcome, before.state, after))
            done.append((msg, outcome))
            uow.emit(self.layer.output_topic, make_envelope(
                outcome.event, correlation_id=ref.claim_id, producer=self.layer.producer,
                causation_id=msg.envelope.event_id,
                event_id=derived_event_id(type(outcome.event).__name__, ref.claim_id)))
        await uow.ledger.save_years(changed)
        await uow.ledger.add_ledger(ledger)
        if self.after is not None:
            await self.after(uow, done)

    def _ledger_row(self, ref: ClaimRef, outcome: LayerOutcome[S], before: S, after: S) -> LedgerRow:
        """The one place a ledger row is built from a layer's decision."""
        profile = self.layer.profile
        return LedgerRow(claim_id=ref.claim_id, person_id=ref.person_id, hospital_id=ref.hospital_id,
                         insurance_year=ref.insurance_year, outcome=outcome.event.outcome,
                         base=outcome.base, paid=outcome.paid, year_before=state_values(before),
                         year_after=state_values(after), profile_id=profile.id, profile_version=profile.version,
                         detail=outcome.detail)


def claim_ref_of_summary(payload: Any) -> ClaimRef:
    """The ref of a layer event that carries a `ClaimSummary` as `claim`."""
    c = payload.claim
    return ClaimRef(c.claim_id, c.person_id, c.hospital_id, c.insurance_year)


class SummaryLayer:
    """Base of the layers after basic insurance: their input carries the `ClaimSummary` as `claim`,
    and they price it under one policy profile."""

    def __init__(self, profile: Any) -> None:
        self.profile = profile

    def ref(self, msg: Inbound) -> ClaimRef:
        return claim_ref_of_summary(msg.payload)
