"""The settlement service: basic insurance (基本医保) on every discharge.

Input `claims.discharges`; registry projections of `enrollment.persons` and `enrollment.providers`
(caught up before every batch, so an enrollment published before a discharge is always seen);
output `claims.basic-settled`.
"""

from __future__ import annotations

from pathlib import Path

from contracts import PersonSnapshot, ProviderSnapshot
from contracts.claims import CLAIM_REQUEST_MODELS
from contracts.topics import DISCHARGES, PERSONS, PROVIDERS
from runtime.app import ProjectionSpec, ServiceContext, ServiceSpec
from runtime.claim_layer import ClaimLayerHandler
from runtime.consumer import Subscription
from runtime.db import LEDGER_MIGRATIONS
from services.settlement import store
from services.settlement.handlers import BasicLayer, PostgresSettlementUnitOfWork


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    layer = BasicLayer(ctx.policy())
    return [Subscription(DISCHARGES, ClaimLayerHandler(layer, prepare=layer.prepare), CLAIM_REQUEST_MODELS,
                         before_batch=ctx.catch_up_projections, unit_of_work=PostgresSettlementUnitOfWork)]


SPEC = ServiceSpec(
    name="settlement",
    migrations=(LEDGER_MIGRATIONS, Path(__file__).parent / "migrations"),
    subscriptions=subscriptions,
    projections=(ProjectionSpec(PERSONS, PersonSnapshot, store.apply_person_snapshots),
                 ProjectionSpec(PROVIDERS, ProviderSnapshot, store.apply_provider_snapshots)),
)
