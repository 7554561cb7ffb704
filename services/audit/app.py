"""The audit service (基金监管): one subscription per registry topic into the event store and the
fund-supervision rules, plus a periodic reconciliation (对账) task.

Consumer groups: `<prefix>medsettle.audit.<topic>` for every topic of `contracts.topics.TOPICS`
(the `.dlt` topics are not consumed). Alerts go to `audit.alerts`, which the audit also consumes
into its event store, so `trace` shows them next to the claim's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta
from pathlib import Path

from contracts import EVENT_TYPES
from contracts.envelope import now as wall_clock
from contracts.topics import TOPICS
from policy import PolicyProfile, ProfileError
from policy.profile import AuditPolicy
from runtime.app import ServiceContext, ServiceSpec
from runtime.consumer import Subscription
from runtime.logging import get_logger
from runtime.outbox import publish_pending
from runtime.unit_of_work import PostgresUnitOfWork
from services.audit.alerts import raise_alerts
from services.audit.config import AuditConfig
from services.audit.handlers import AuditHandler
from services.audit.reconciliation import ReconcileReport, reconcile

HERE = Path(__file__).parent
log = get_logger("audit")


def audit_policy(profile: PolicyProfile) -> AuditPolicy:
    policy = profile.audit
    if policy is None:
        raise ProfileError([("audit", "the audit rules need this section's parameters")], profile.id)
    return policy


class Reconciler:
    """Runs reconciliation on demand (`reconcile(now)`) and every `reconcile_interval_s`."""

    def __init__(self, ctx: ServiceContext, config: AuditConfig) -> None:
        self.ctx = ctx
        self.config = config
        self._lock = asyncio.Lock()
        self.last_report: ReconcileReport | None = None

    async def reconcile(self, now: datetime | None = None) -> ReconcileReport:
        """Check as of `now` (default: the wall clock), raise the new alerts and publish them."""
        checked_at = now or wall_clock()
        pool = self.ctx.require_pool()
        async with self._lock:
            async with pool.acquire() as conn, conn.transaction():
                report = await reconcile(conn, checked_at, timedelta(seconds=self.config.statement_timeout_s))
                uow = PostgresUnitOfWork(conn, self.ctx.settings.topic_prefix)
                report.raised = await raise_alerts(uow, report.findings, wall_clock())
                await uow.flush()
            await publish_pending(pool, self.ctx.publisher)
        self.last_report = report
        if report.raised:
            log.info("reconciliation raised alerts", count=len(report.raised), claims_checked=report.claims_checked,
                     claims_in_flight=report.claims_in_flight)
        return report

    def _stopped(self) -> bool:
        pool = self.ctx.pool
        return pool is None or pool.is_closing()

    async def run_periodically(self) -> None:
        """Until the service's pool closes (graceful shutdown)."""
        interval = self.config.reconcile_interval_s
        while not self._stopped():
            deadline = time.monotonic() + interval
            while (left := deadline - time.monotonic()) > 0:
                if self._stopped():
                    return
                await asyncio.sleep(min(left, 0.5))
            try:
                await self.reconcile()
            except Exception:
                if self._stopped():
                    return
                log.warning("reconciliation run failed", exc_info=True)


def make_spec(config: AuditConfig | None = None) -> ServiceSpec:
    """The audit service; `config` overrides the environment (tests pass one)."""

    def subscriptions(ctx: ServiceContext) -> list[Subscription]:
        handler = AuditHandler(audit_policy(ctx.policy()))
        # a payload that breaks its contract is kept in the event store with its error (trace and
        # reconciliation see it); on the topics the audit owns it is dead-lettered as well
        return [Subscription(t.name, handler, tuple(EVENT_TYPES[p] for p in t.payloads),
                             invalid_payloads_to_handler=True, dead_letters=t.dead_lettered_by == "audit",
                             dead_letter_invalid_payloads=t.dead_lettered_by == "audit")
                for t in TOPICS]

    async def on_start(ctx: ServiceContext) -> None:
        cfg = config or AuditConfig()
        reconciler = Reconciler(ctx, cfg)
        ctx.state["reconciler"] = reconciler
        if cfg.reconcile_interval_s > 0:
            ctx.state["reconcile_task"] = asyncio.create_task(reconciler.run_periodically(), name="audit-reconcile")

    async def on_stop(ctx: ServiceContext) -> None:
        task = ctx.state.pop("reconcile_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ServiceSpec(name="audit", migrations=(HERE / "migrations",), subscriptions=subscriptions,
                       on_start=on_start, on_stop=on_stop)


SPEC = make_spec()


async def reconcile_now(ctx: ServiceContext, now: datetime | None = None) -> ReconcileReport:
    """On-demand reconciliation of a running audit service (tests, operators)."""
    reconciler: Reconciler = ctx.state["reconciler"]
    return await reconciler.reconcile(now)
