"""The catastrophic service: critical-illness insurance (大病保险) on the residual of basic insurance.

Input `claims.basic-settled`; output `claims.catastrophic-settled`.
"""

from __future__ import annotations

from pathlib import Path

from contracts import BasicSettled
from contracts.topics import BASIC_SETTLED
from runtime.app import ServiceContext, ServiceSpec
from runtime.claim_layer import ClaimLayerHandler, postgres_unit_of_work
from runtime.consumer import Subscription
from runtime.db import LEDGER_MIGRATIONS
from services.catastrophic.handlers import CatastrophicLayer


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    layer = CatastrophicLayer(ctx.policy())
    return [Subscription(BASIC_SETTLED, ClaimLayerHandler(layer), (BasicSettled,),
                         unit_of_work=postgres_unit_of_work(layer))]


SPEC = ServiceSpec(name="catastrophic", migrations=(LEDGER_MIGRATIONS, Path(__file__).parent / "migrations"),
                   subscriptions=subscriptions)
