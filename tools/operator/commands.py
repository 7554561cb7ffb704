"""What the operator's commands do (经办/监管 operator tooling): trace a claim, KPIs, alerts,
reconcile, replay, dead letters. `./medsettle operator ...` (tools/cli.py) parses the command line
and calls these; each returns the exit code (0 done, 1 nothing found, 3 refused) and raises
`click.UsageError` for a name or value that cannot be right (exit 2).

Connection: `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` from the environment, else the local stack
(tools/stack/connection.py). `prefix` (env `TOPIC_PREFIX`) prefixes every topic and consumer group;
`audit_db` (env `AUDIT_DATABASE`, default `medsettle_audit`) names the audit's database. `trace`,
`kpis`, `alerts` and `reconcile` read the audit service's database, as the operator role
`medsettle_operator` (on the server of `DATABASE_URL`, whatever role that names; password from the
password file), which may read that database and nothing else, in read-only transactions;
`replay` and `dlt` talk to the broker. Identity numbers are shown masked unless `show_identity`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

if TYPE_CHECKING:  # each command imports what it needs: `operator kpis` starts without the broker's clients
    from tools.operator.replay import Target

_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200  # piped: do not squeeze the tables
console = Console(width=_WIDTH)
errors = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors,
                    transient=True)


async def database_conn(database: str) -> asyncpg.Connection:
    """A connection to one service's database as the read-only operator role, in a read-only session
    (`operator what-if` reads settlement's, critical illness's and assistance's, the audit commands
    the audit's)."""
    from runtime.settings import OPERATOR_ROLE
    from tools.stack.connection import connect

    conn: asyncpg.Connection = await connect(database, user=OPERATOR_ROLE)
    await conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    return conn


async def _audit_conn(audit_db: str) -> asyncpg.Connection:
    return await database_conn(audit_db)


# ------------------------------------------------------------------- audit database views


async def trace(audit_db: str, claim_id: str, show_identity: bool = False) -> int:
    from services.audit import store
    from tools.operator.views import knock_on_table, trace_table

    conn = await _audit_conn(audit_db)
    try:
        events = await store.claim_history(conn, claim_id)
        alerts = await store.list_alerts(conn, claim_id=claim_id)
        knock_on = await store.caused_by_claim(conn, claim_id)
    finally:
        await conn.close()
    consumed = {e["payload"].get("alert_id") for e in events if e["event_type"] == "AuditAlert"}
    pending = [a for a in alerts if a["alert_id"] not in consumed]
    if not events and not pending:
        errors.print(escape(f"no event of claim {claim_id} in the audit's event store"))
        return 1
    console.print(trace_table(claim_id, events, pending, show_identity))
    if knock_on:
        console.print(knock_on_table(claim_id, knock_on, show_identity))
    return 0


async def kpis(audit_db: str, date_from: date, date_to: date, region: str | None, pool: str | None) -> int:
    from services.audit.kpis import KpiQuery, compute_kpis
    from tools.operator.views import kpi_tables

    if date_to < date_from:
        raise click.UsageError("--to is before --from")
    conn = await _audit_conn(audit_db)
    try:
        found = await compute_kpis(conn, KpiQuery(date_from, date_to, region, pool))
    finally:
        await conn.close()
    for table in kpi_tables(found):
        console.print(table)
    return 0


async def alerts(audit_db: str, rule: str | None, claim: str | None, limit: int, show_identity: bool = False) -> int:
    from services.audit import store
    from tools.operator.views import alerts_table

    conn = await _audit_conn(audit_db)
    try:
        found = await store.list_alerts(conn, rule=rule, claim_id=claim, limit=limit)
    finally:
        await conn.close()
    console.print(alerts_table(found, show_identity))
    return 0 if found else 1


async def reconcile(audit_db: str, prefix: str, show_identity: bool = False) -> int:
    from services.audit.config import AuditConfig
    from services.audit.reconciliation import reconcile as run_reconciliation
    from tools.operator.views import masked

    config = AuditConfig()
    conn = await _audit_conn(audit_db)
    try:  # a look only, in one read-only snapshot: it records nothing (the operator role may only read)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            report = await run_reconciliation(conn, datetime.now().astimezone(),
                                              timedelta(seconds=config.statement_timeout_s), record=False)
    finally:
        await conn.close()
    table = Table(title="per-layer fund totals: the claims' net amounts vs the layers' current results")
    for column in ("layer", "year", "statements", "layer results", "difference"):
        table.add_column(column, justify="right")
    for t in report.totals:
        table.add_row(t.layer, str(t.insurance_year), f"{t.statements:,.2f}", f"{t.layer_results:,.2f}",
                      f"{t.statements - t.layer_results:,.2f}")
    console.print(table)
    console.print(f"{report.claims_checked} claim(s) checked, {report.claims_in_flight} in flight (a revision on "
                  "its way through the layers: checked again later)")
    for f in report.findings:
        evidence = ", ".join(f"{k}={v}" for k, v in f.evidence.items())
        console.print(escape(masked(f"{f.rule} {f.subject or f.claim_id}: {evidence}", show_identity)))
    return 0


# ------------------------------------------------------------------------------ replay


def target_of(to_earliest: bool, to_datetime: datetime | None, to_offset: int | None) -> Target:
    """Exactly one of the three (the command line makes sure of it); a naive time is local time."""
    from tools.operator.replay import Target

    if to_datetime is not None:
        return Target(at=to_datetime if to_datetime.tzinfo else to_datetime.astimezone())
    if to_offset is not None:
        return Target(offset=to_offset)
    return Target(earliest=to_earliest)


async def replay(prefix: str, service: str, target: Target, topic: str | None, partition: int | None,
                 dry_run: bool) -> int:
    from tools.operator.replay import ReplayRefused, apply_replay, plan_replay
    from tools.stack.connection import require_kafka

    try:
        plans = await plan_replay(require_kafka(), prefix, service, target, topic, partition)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    where = "" if partition is None else f" on partition {partition} only"
    table = Table(title=f"replay {service} to {target.describe()}{where}" + (" (dry run)" if dry_run else ""))
    for column in ("group", "state", "partition", "committed", "target", "end", "reprocess", "skip"):
        table.add_column(column, justify="right" if column not in ("group", "state") else "left")
    for plan in plans:
        for p in plan.partitions:
            table.add_row(plan.group, f"{plan.state} ({plan.members} members)", str(p.partition),
                          "-" if p.committed is None else str(p.committed), str(p.target), str(p.end),
                          str(p.reprocess), str(p.skip))
    console.print(table)
    console.print(f"{sum(p.reprocess for p in plans)} records would be reprocessed")
    active = [p for p in plans if p.active]
    if active:
        errors.print(f"refused: {', '.join(p.group for p in active)} active — stop {service} first")
        return 3
    if dry_run:
        return 0
    try:
        with _progress() as progress:
            task = progress.add_task("resetting consumer groups", total=len(plans))
            await apply_replay(require_kafka(), prefix, plans, on_group=lambda _: progress.advance(task))
    except ReplayRefused as exc:
        errors.print(f"refused: {exc}")
        return 3
    if partition is not None:
        console.print(f"moved partition {partition} of {plans[0].group} to offset {target.offset}; "
                      "its other partitions are unchanged")
    else:
        console.print(f"reset {len(plans)} consumer group(s) of {service}; it reprocesses them when it starts")
    return 0


# ------------------------------------------------------------------------- dead letters


def _letters_table(title: str, letters: Sequence[Any], show_identity: bool = False) -> Table:
    from contracts.identity import mask_identity_number
    from tools.operator.views import masked

    table = Table(title=title)
    for column in ("dlt offset", "status", "service", "original topic", "partition", "offset", "key", "field",
                   "reason"):
        table.add_column(column, overflow="fold")
    for lt in letters:
        original = lt.original or ("?", "?", "?")
        key = lt.key.decode("utf-8", "replace") if lt.key else "-"
        key = key if show_identity or not lt.key else mask_identity_number(key)
        cells = (lt.offset, lt.status, lt.service or "-", *original, key, lt.field or "-",
                 masked(str(lt.reason), show_identity))
        table.add_row(*(escape(str(c)) for c in cells))
    return table


async def dlt_list(prefix: str, topic: str | None, show_identity: bool = False) -> int:
    from tools.operator.dlt import all_dlt_names, dlt_name, list_letters
    from tools.stack.connection import require_kafka

    kafka = require_kafka()
    names = [dlt_name(prefix, topic)] if topic else all_dlt_names(prefix)
    found = 0
    with _progress() as progress:
        task = progress.add_task("reading dead-letter topics", total=len(names))
        results = []
        for name in names:
            results.append((name, await list_letters(kafka, prefix, name)))
            progress.advance(task)
    for name, letters in results:
        if letters or topic:
            console.print(_letters_table(f"{name}: {len(letters)} dead letters", letters, show_identity))
        found += len(letters)
    return 0 if found else 1


async def dlt_redrive(prefix: str, topic: str, offset: int | None, dry_run: bool) -> int:
    from tools.operator.dlt import dlt_name, redrive
    from tools.stack.connection import require_kafka

    kafka = require_kafka()
    name = dlt_name(prefix, topic)
    try:
        with _progress() as progress:
            task = progress.add_task(f"redriving {name}", total=None)
            result = await redrive(kafka, prefix, topic, offset=offset, dry_run=dry_run,
                                   on_sent=lambda _: progress.advance(task))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    verb = "would redrive" if dry_run else "redriven"
    if result.sent:
        console.print(_letters_table(f"{verb}: {len(result.sent)}", result.sent))
    for lt in result.skipped:
        console.print(escape(f"skipped offset {lt.offset}: {lt.why_not_redriven()}"))
    console.print(f"{len(result.sent)} {verb}, {len(result.skipped)} skipped")
    return 0
