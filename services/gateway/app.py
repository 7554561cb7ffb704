"""The gateway service: a consumer that keeps the read model (`services.gateway.answers`) and the
hospitals' HTTP API (`services.gateway.api`) served by uvicorn in the same event loop, on
`GATEWAY_HOST:GATEWAY_PORT` (127.0.0.1:8080 by default; its health endpoint is on `HEALTH_PORT`
as every service's, and on the API's port too). Several instances may run side by side: the read
model and the requests are in the database, waiting requests are woken by PostgreSQL
notifications, and a sign-in is per instance (a producer per hospital). Its registry projections
(persons, providers; settlement's tables and code, `services.settlement.store`) are caught up
before each pre-settlement."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from contracts import (
    ClaimRequestRefused,
    PersonSnapshot,
    ProviderSnapshot,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
)
from contracts.topics import PERSONS, PROVIDERS, REFUSALS, STATEMENTS
from runtime.app import ProjectionSpec, ServiceContext, ServiceSpec
from runtime.consumer import Subscription
from runtime.health import EmbeddedServer
from services.gateway.answers import AnswersHandler, RequestLog, Waiters
from services.gateway.api import Gateway, create_api
from services.gateway.hospitals import HospitalSessions
from services.gateway.presettlement import LayerReader
from services.settlement import store

MIGRATIONS = Path(__file__).parent / "migrations"


class ApiServer(EmbeddedServer):
    what = "hospital API"
    port_setting = "GATEWAY_PORT"
    paths = ("/v1/discharges", "/v1/corrections", "/v1/reversals", "/v1/pre-settlements", "/v1/statements",
             "/v1/claims/{claim_id}", "/docs", "/openapi.json")


async def _kept(conn: asyncpg.Connection) -> None:
    """A connection goes back to the API's pool as it is: the API's statements change no session
    state (no SET, LISTEN, cursor or session lock), and asyncpg's default reset (RESET ALL, UNLISTEN,
    CLOSE ALL, unlocking advisory locks) on every release was a tenth of the gateway's CPU under load."""


async def open_api_pool(dsn: str, size: int) -> asyncpg.Pool:
    """The API's own pool on the gateway's database (the consumer keeps the service's pool)."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, reset=_kept)
    assert pool is not None
    return pool


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    handler = AnswersHandler()
    return [Subscription(STATEMENTS, handler, (SettlementStatement, SettlementAdjusted, SettlementReversed),
                         dead_letters=False),
            Subscription(REFUSALS, handler, (ClaimRequestRefused,), dead_letters=False)]


async def start_api(ctx: ServiceContext) -> None:
    settings = ctx.settings
    ctx.policy()  # the profile pre-settlements price with, loaded (and checked) before the API answers
    waiters = Waiters(settings.database_url, settings.database)
    await waiters.start()
    layers = LayerReader(settings)
    await layers.start()
    sessions = HospitalSessions(settings.kafka_access(), ctx.publisher.ping)
    api_pool = await open_api_pool(settings.dsn, settings.db_pool_size)
    ctx.state["api_pool"] = api_pool
    gateway = Gateway(sessions=sessions, waiters=waiters, layers=layers, pool=lambda: api_pool,
                      topic=settings.topic, policy=ctx.policy, catch_up=ctx.catch_up_projections,
                      requests=RequestLog(settings.database_url, settings.database),
                      health=lambda: ctx.health.health if ctx.health is not None else None)
    server = ApiServer(create_api(gateway), settings.gateway_host, settings.gateway_port, settings.gateway_port_file,
                       backlog=1024)
    ctx.state.update(gateway=gateway, api=server)
    await server.start()


async def stop_api(ctx: ServiceContext) -> None:
    server = ctx.state.pop("api", None)
    if server is not None:
        await server.stop()
    gateway: Gateway | None = ctx.state.pop("gateway", None)
    if gateway is not None:
        await gateway.sessions.close()
        await gateway.waiters.stop()
        await gateway.requests.close()
        await gateway.layers.close()
    api_pool = ctx.state.pop("api_pool", None)
    if api_pool is not None:
        await api_pool.close()


SPEC = ServiceSpec(name="gateway", migrations=(MIGRATIONS,), subscriptions=subscriptions, on_start=start_api,
                   on_stop=stop_api, publishes=False,
                   projections=(ProjectionSpec(PERSONS, PersonSnapshot, store.apply_person_snapshots),
                                ProjectionSpec(PROVIDERS, ProviderSnapshot, store.apply_provider_snapshots)))
