"""The FastStream app factory: one broker, the service's pool (migrated at start-up), a batch
subscriber per input topic with manual offset commits, registry projections, and a graceful
shutdown (FastStream stops consuming on SIGINT/SIGTERM, then the pool and projections close)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from contracts import Contract
from policy import PolicyProfile, ProfileError, load_profile, operator_overrides
from runtime.consumer import BatchConsumer, Subscription
from runtime.db import open_pool
from runtime.health import Health, HealthServer, SubscriberProbe
from runtime.logging import configure_logging, get_logger
from runtime.outbox import publish_pending
from runtime.projection import ApplyBatch, Projection
from runtime.publisher import Publisher
from runtime.settings import Settings
from runtime.tracing import configure_tracing, shutdown_tracing
from runtime.watermark import prune_processed


@dataclass(frozen=True)
class ProjectionSpec:
    topic: str
    model: type[Contract]
    apply: ApplyBatch


@dataclass
class ServiceContext:
    """What a running service has: its settings, pool, broker (consuming), publisher (its outbox and
    dead letters) and projections."""

    settings: Settings
    broker: KafkaBroker
    publisher: Publisher
    pool: asyncpg.Pool | None = None
    projections: dict[str, Projection] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    subscribers: list[SubscriberProbe] = field(default_factory=list)
    """the subscriptions' FastStream subscribers (readiness, lag)"""
    projection_topics: tuple[str, ...] = ()
    health: HealthServer | None = None
    """the service's `/healthz`, `/readyz`, `/metrics` endpoint (`runtime.health`) while it runs"""

    def policy(self) -> PolicyProfile:
        """The service's policy profile: `POLICY_PROFILE` with the operator's `POLICY_OVERLAY`
        (ProfileError, e.g. `MissingOperatorInputs`, if it cannot be used: the service does not start)."""
        if "policy" not in self.state:
            profile = load_profile(self.settings.policy_profile, operator_overrides(self.settings.policy_overlay))
            get_logger(self.settings.service_name).info(
                "policy profile loaded", profile=profile.id, version=profile.version,
                overlay=self.settings.policy_overlay, operator_inputs=list(profile.overrides_applied))
            self.state["policy"] = profile
        return self.state["policy"]  # type: ignore[no-any-return]

    def require_pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError("the service's database pool is not open yet")
        return self.pool

    async def catch_up_projections(self) -> None:
        for projection in self.projections.values():
            await projection.catch_up()


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its name, migrations, input subscriptions and registry projections."""

    name: str
    migrations: Sequence[Path]
    """Migration directories after the runtime's own, e.g. `(LEDGER_MIGRATIONS, here / "migrations")`."""
    subscriptions: Callable[[ServiceContext], Sequence[Subscription]]
    projections: Sequence[ProjectionSpec] = ()
    on_start: Callable[[ServiceContext], Awaitable[None]] | None = None
    on_stop: Callable[[ServiceContext], Awaitable[None]] | None = None
    """Awaited after the broker stopped consuming, before projections and the pool close."""
    publishes: bool = True
    """False for a service that writes no topic as itself and dead-letters nothing (the gateway,
    which publishes as the signed-in hospital): its publisher only asks the broker for metadata."""


def _batch_handler(consumer: BatchConsumer) -> Callable[..., Awaitable[None]]:
    async def handle(body: Any, message: KafkaMessage) -> None:
        # the body is not decoded by FastStream (see `_raw`): the batch consumer decodes each record itself
        records = message.raw_message
        await consumer.process(records if isinstance(records, tuple) else (records,))

    return handle


async def _raw(message: Any) -> None:
    """FastStream decoder that leaves the records alone: contracts are decoded per record, so one bad
    record is dead-lettered instead of failing the whole batch."""
    return


def make_broker(settings: Settings, *, idempotent: bool = True) -> KafkaBroker:
    # FastStream's access log ("Received", "Processed" per batch) at DEBUG: at INFO it grows the log
    # by two lines per batch whatever happens
    access = settings.kafka_access()
    return KafkaBroker(access.servers, security=access.faststream_security(),
                       client_id=f"medsettle-{settings.service_name}", enable_idempotence=idempotent, linger_ms=5,
                       max_batch_size=1 << 20, log_level=logging.DEBUG,
                       metadata_max_age_ms=settings.metadata_max_age_ms,
                       logger=logging.getLogger("medsettle.faststream"))  # our JSON, masked, rate-limited


def create_app(spec: ServiceSpec, settings: Settings) -> tuple[FastStream, ServiceContext]:
    configure_logging(settings.log_level, service=spec.name)
    configure_tracing(spec.name)
    log = get_logger(spec.name)
    broker = make_broker(settings, idempotent=spec.publishes)
    publisher = Publisher(settings.kafka_options(), client_id=f"medsettle-{spec.name}", idempotent=spec.publishes)
    ctx = ServiceContext(settings=settings, broker=broker, publisher=publisher,
                         projection_topics=tuple(p.topic for p in spec.projections))
    health = Health(ctx, spec.name)

    app = FastStream(broker, logger=None)

    def stop_on_fatal(reason: str) -> None:
        ctx.state["fatal"] = reason
        app.exit()

    for sub in spec.subscriptions(ctx):
        consumer = BatchConsumer(sub, spec.name, ctx.require_pool, publisher, settings.topic_prefix,
                                 on_fatal=stop_on_fatal)

        where: dict[str, Any] = {"pattern": sub.pattern} if sub.pattern else {}
        subscriber = broker.subscriber(
            *(() if sub.pattern else (settings.topic(sub.topic),)), **where,
            group_id=f"{settings.consumer_group}.{sub.topic}", batch=True,
            max_records=settings.batch_max_records, batch_timeout_ms=settings.batch_timeout_ms,
            fetch_min_bytes=settings.fetch_min_bytes, fetch_max_wait_ms=settings.fetch_max_wait_ms,
            auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR, decoder=_raw,
        )
        subscriber(_batch_handler(consumer))
        ctx.subscribers.append(SubscriberProbe(sub.topic, subscriber, required=sub.pattern is None))

    async def on_startup() -> None:
        ctx.health = HealthServer(health, settings.health_host, settings.health_port, settings.health_port_file)
        await ctx.health.start()  # first: live while starting, ready once started
        ctx.pool = await open_pool(settings.database_url, settings.database, *spec.migrations,
                                   size=settings.db_pool_size)
        await publisher.start()
        for p in spec.projections:
            projection = Projection(settings.topic(p.topic), p.model, p.apply, settings.kafka_options(),
                                    ctx.require_pool, client_id=f"medsettle-{spec.name}-projection",
                                    publisher=publisher, service=spec.name)
            await projection.start()
            ctx.projections[p.topic] = projection
        if spec.on_start is not None:
            await spec.on_start(ctx)
        log.info("started", database=settings.database, group=settings.consumer_group)

    async def after_startup() -> None:
        # rows a crash left unpublished are sent before new work arrives
        sent = await publish_pending(ctx.require_pool(), publisher)
        if sent:
            log.info("published outbox rows left by a previous run", count=sent)
        ctx.state["pruning"] = asyncio.create_task(_prune_periodically(ctx))
        health.started = True

    async def after_shutdown() -> None:  # after the broker stopped consuming
        if (pruning := ctx.state.pop("pruning", None)) is not None:
            pruning.cancel()
        if spec.on_stop is not None:
            await spec.on_stop(ctx)
        for projection in ctx.projections.values():
            await projection.stop()
        await publisher.stop()
        if ctx.pool is not None:
            await ctx.pool.close()
        if ctx.health is not None:
            await ctx.health.stop()
        shutdown_tracing()
        log.info("stopped")

    app.on_startup(on_startup)
    app.after_startup(after_startup)
    app.after_shutdown(after_shutdown)
    return app, ctx


PRUNE_INTERVAL_S = 300.0
"""How often a service deletes the `processed_event` rows older than `PROCESSED_RETENTION_S`."""


async def _prune_periodically(ctx: ServiceContext) -> None:
    """`runtime.watermark.prune_processed` at start-up and every `PRUNE_INTERVAL_S`; a failure is
    logged and tried again next time (nothing depends on it but the table's size)."""
    log = get_logger(ctx.settings.service_name)
    retention = timedelta(seconds=ctx.settings.processed_retention_s)
    while ctx.pool is not None and not ctx.pool.is_closing():
        try:
            async with ctx.pool.acquire() as conn:
                pruned = await prune_processed(conn, retention)
            if pruned:
                log.info("pruned processed inputs", rows=pruned, older_than_s=ctx.settings.processed_retention_s)
        except Exception as exc:  # noqa: BLE001 - infrastructure or shutdown: next time
            log.info("pruning processed inputs failed; trying again later", error=f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(PRUNE_INTERVAL_S)


EXIT_FATAL = 3
"""Exit status of a service that stopped because it could not go on (its database schema is gone)."""
EXIT_CONFIG = 78
"""Exit status of a service that refused to start on its configuration (sysexits EX_CONFIG): a policy
profile that cannot be used, e.g. one whose required operator inputs were not supplied."""


def run_loop(main: Awaitable[None]) -> None:
    """Run a service's main coroutine on uvloop (libuv's event loop, Cython sockets and TLS): the
    services spend much of their CPU in the event loop's socket and TLS handling, which uvloop does
    in C. `MEDSETTLE_LOOP=asyncio` keeps the standard loop (to compare)."""
    if os.environ.get("MEDSETTLE_LOOP", "uvloop") == "uvloop":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)  # type: ignore[arg-type]
        return
    asyncio.run(main)  # type: ignore[arg-type]


def run(spec: ServiceSpec, settings: Settings) -> None:
    """Run a service until SIGINT/SIGTERM (`python -m services.<name>`); exits with `EXIT_FATAL`
    after a fatal error, with `EXIT_CONFIG` (and the profile's message) on a profile it cannot use."""
    try:
        load_profile(settings.policy_profile, operator_overrides(settings.policy_overlay))  # before anything else
        app, ctx = create_app(spec, settings)
    except ProfileError as exc:
        get_logger(spec.name).error("refused to start: the policy profile cannot be used", profile=settings.policy_profile,
                                    overlay=settings.policy_overlay, problem=str(exc))
        sys.stderr.write(f"{spec.name} refused to start: {exc}\n")
        sys.exit(EXIT_CONFIG)
    run_loop(app.run())
    if "fatal" in ctx.state:
        sys.stderr.write(f"{spec.name} stopped: {ctx.state['fatal']}\n")
        sys.exit(EXIT_FATAL)
