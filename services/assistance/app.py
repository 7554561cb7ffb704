"""The assistance service: medical assistance (医疗救助), the last layer, and the one-stop
statement for every discharge.

Input `claims.catastrophic-settled`; output `claims.statements`.
"""

from __future__ import annotations

from pathlib import Path

from contracts import CatastrophicSettled
from contracts.topics import CATASTROPHIC_SETTLED
from runtime.app import ServiceContext, ServiceSpec
from runtime.claim_layer import ClaimLayerHandler
from runtime.consumer import Subscription
from runtime.db import LEDGER_MIGRATIONS
from services.assistance.handlers import AssistanceLayer, PostgresAssistanceUnitOfWork


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    layer = AssistanceLayer(ctx.policy())
    return [Subscription(CATASTROPHIC_SETTLED, ClaimLayerHandler(layer), (CatastrophicSettled,),
                         unit_of_work=PostgresAssistanceUnitOfWork)]


SPEC = ServiceSpec(name="assistance", migrations=(LEDGER_MIGRATIONS, Path(__file__).parent / "migrations"),
                   subscriptions=subscriptions)
