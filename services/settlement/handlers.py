"""Basic insurance handler: a batch of discharges → accumulators, ledger and `BasicSettled` events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from contracts import DischargeRecorded, PersonSnapshot, ProviderSnapshot
from contracts.money import ZERO
from contracts.topics import BASIC_SETTLED
from policy import PolicyProfile
from policy.calculators.basic import BasicYearState
from policy.decisions.basic import decide
from runtime.claim_layer import (
    ClaimRef,
    InMemoryLayerUnitOfWork,
    LayerOutcome,
    PostgresLayerUnitOfWork,
)
from runtime.db import Connection
from runtime.unit_of_work import Inbound
from services.settlement import store


class RegistryView(Protocol):
    """The registry as settlement's projections hold it."""

    async def persons(self, ids: Iterable[str]) -> dict[str, PersonSnapshot]: ...

    async def providers(self, ids: Iterable[str]) -> dict[str, ProviderSnapshot]: ...


class PostgresRegistryView:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def persons(self, ids: Iterable[str]) -> dict[str, PersonSnapshot]:
        return await store.load_persons(self.conn, ids)

    async def providers(self, ids: Iterable[str]) -> dict[str, ProviderSnapshot]:
        return await store.load_providers(self.conn, ids)


class InMemoryRegistryView:
    def __init__(self, persons: Iterable[PersonSnapshot] = (), providers: Iterable[ProviderSnapshot] = ()) -> None:
        self.by_person = {p.person_id: p for p in persons}
        self.by_provider = {p.provider_id: p for p in providers}

    async def persons(self, ids: Iterable[str]) -> dict[str, PersonSnapshot]:
        return {i: self.by_person[i] for i in ids if i in self.by_person}

    async def providers(self, ids: Iterable[str]) -> dict[str, ProviderSnapshot]:
        return {i: self.by_provider[i] for i in ids if i in self.by_provider}


class PostgresSettlementUnitOfWork(PostgresLayerUnitOfWork):
    def __init__(self, conn: Connection, topic_prefix: str) -> None:
        super().__init__(conn, topic_prefix, BasicYearState)
        self.registry: RegistryView = PostgresRegistryView(conn)


class InMemorySettlementUnitOfWork(InMemoryLayerUnitOfWork):
    def __init__(self, registry: InMemoryRegistryView, topic_prefix: str = "") -> None:
        super().__init__(BasicYearState, topic_prefix)
        self.registry: RegistryView = registry


class BasicLayer:
    """The basic layer as the shared claim-layer handler sees it."""

    producer = "settlement"
    output_topic = BASIC_SETTLED
    year_state = BasicYearState

    def __init__(self, profile: PolicyProfile) -> None:
        self.profile = profile
        self.persons: dict[str, PersonSnapshot] = {}
        self.providers: dict[str, ProviderSnapshot] = {}

    async def prepare(self, uow: Any, todo: list[Inbound]) -> None:
        """Load the registry rows the batch needs from the local projections."""
        self.persons = await uow.registry.persons(m.payload.person_id for m in todo)
        self.providers = await uow.registry.providers(m.payload.hospital_id for m in todo)

    def ref(self, msg: Inbound) -> ClaimRef:
        d: DischargeRecorded = msg.payload
        return ClaimRef(d.claim_id, d.person_id, d.hospital_id, d.discharge_date.year)

    def decide(self, msg: Inbound, year: BasicYearState, at: datetime) -> LayerOutcome[BasicYearState]:
        d: DischargeRecorded = msg.payload
        decision = decide(d, str(msg.envelope.event_id), self.persons.get(d.person_id),
                          self.providers.get(d.hospital_id), self.profile, year)
        event = decision.event
        return LayerOutcome(event, base=event.claim.in_policy, paid=event.basic.paid if event.basic else ZERO,
                            year_after=decision.year_after,
                            detail=event.model_dump(mode="json", include={"basic", "rejection"}))
