"""The operator CLI (经办/监管 operator tooling): trace a claim, KPIs, alerts, replay, dead letters.

    python -m tools.operator trace CLAIM_ID
    python -m tools.operator kpis --from 2026-01-01 --to 2026-06-30 [--region demo-county] [--pool 500240]
    python -m tools.operator alerts [--rule split_admission] [--claim H001:ZY1] [--limit 200]
    python -m tools.operator reconcile                 # per-layer totals, statements vs ledgers (changes nothing)
    python -m tools.operator replay SERVICE (--to-earliest | --to-datetime T | --to-offset N) [--topic T] [--dry-run]
    python -m tools.operator replay SERVICE --partition P --to-offset N [--topic T] [--dry-run]   # one partition
    python -m tools.operator dlt list [TOPIC]
    python -m tools.operator dlt redrive TOPIC (--offset N | --all) [--dry-run]

Connection: `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` from the environment, else the local stack
(tools/connection.py). `--prefix` (env `TOPIC_PREFIX`) prefixes every topic and consumer group;
`--audit-db` (env `AUDIT_DATABASE`, default `medsettle_audit`) names the audit's database.
`trace`, `kpis`, `alerts` and `reconcile` read the audit service's database; `replay` and `dlt`
talk to the broker. Exit codes: 0 done, 1 nothing found, 2 bad usage, 3 refused (group active).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tools.connection import database_url, kafka_bootstrap

_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200  # piped: do not squeeze the tables
console = Console(width=_WIDTH)
errors = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=errors,
                    transient=True)


async def _audit_conn(args: argparse.Namespace) -> asyncpg.Connection:
    return await asyncpg.connect(f"{database_url().rstrip('/')}/{args.audit_db}")


# ------------------------------------------------------------------- audit database views


async def cmd_trace(args: argparse.Namespace) -> int:
    from services.audit import store  # noqa: PLC0415
    from tools.operator_views import trace_table  # noqa: PLC0415

    conn = await _audit_conn(args)
    try:
        events = await store.claim_history(conn, args.claim_id)
        alerts = await store.list_alerts(conn, claim_id=args.claim_id)
    finally:
        await conn.close()
    consumed = {e["payload"].get("alert_id") for e in events if e["event_type"] == "AuditAlert"}
    pending = [a for a in alerts if a["alert_id"] not in consumed]
    if not events and not pending:
        errors.print(f"no event of claim {args.claim_id} in the audit's event store")
        return 1
    console.print(trace_table(args.claim_id, events, pending))
    return 0


async def cmd_kpis(args: argparse.Namespace) -> int:
    from services.audit.kpis import KpiQuery, compute_kpis  # noqa: PLC0415
    from tools.operator_views import kpi_tables  # noqa: PLC0415

    if args.date_to < args.date_from:
        errors.print("--to is before --from")
        return 2
    conn = await _audit_conn(args)
    try:
        kpis = await compute_kpis(conn, KpiQuery(args.date_from, args.date_to, args.region, args.pool))
    finally:
        await conn.close()
    for table in kpi_tables(kpis):
        console.print(table)
    return 0


async def cmd_alerts(args: argparse.Namespace) -> int:
    from services.audit import store  # noqa: PLC0415
    from tools.operator_views import alerts_table  # noqa: PLC0415

    conn = await _audit_conn(args)
    try:
        alerts = await store.list_alerts(conn, rule=args.rule, claim_id=args.claim, limit=args.limit)
    finally:
        await conn.close()
    console.print(alerts_table(alerts))
    return 0 if alerts else 1


async def cmd_reconcile(args: argparse.Namespace) -> int:
    from services.audit.config import AuditConfig  # noqa: PLC0415
    from services.audit.reconciliation import reconcile  # noqa: PLC0415

    config = AuditConfig()
    conn = await _audit_conn(args)
    try:
        tx = conn.transaction()
        await tx.start()
        try:  # a look only: what the run marks as checked is rolled back
            report = await reconcile(conn, datetime.now().astimezone(), timedelta(seconds=config.statement_timeout_s))
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    table = Table(title="per-layer fund totals: statements vs the layers' results")
    for column in ("layer", "year", "statements", "layer results", "difference"):
        table.add_column(column, justify="right")
    for t in report.totals:
        table.add_row(t.layer, str(t.insurance_year), f"{t.statements:,.2f}", f"{t.layer_results:,.2f}",
                      f"{t.statements - t.layer_results:,.2f}")
    console.print(table)
    for f in report.findings:
        evidence = ", ".join(f"{k}={v}" for k, v in f.evidence.items())
        console.print(escape(f"{f.rule} {f.claim_id or f.subject}: {evidence}"))
    return 0


# ------------------------------------------------------------------------------ replay


def _target(args: argparse.Namespace) -> Any:
    from tools.operator_replay import Target  # noqa: PLC0415

    if args.to_datetime is not None:
        at = datetime.fromisoformat(args.to_datetime)
        return Target(at=at if at.tzinfo else at.astimezone())
    if args.to_offset is not None:
        return Target(offset=args.to_offset)
    return Target(earliest=True)


async def cmd_replay(args: argparse.Namespace) -> int:
    from tools.operator_replay import ReplayRefused, apply_replay, plan_replay  # noqa: PLC0415

    target = _target(args)
    try:
        plans = await plan_replay(kafka_bootstrap(), args.prefix, args.service, target, args.topic, args.partition)
    except ValueError as exc:
        errors.print(escape(str(exc)), soft_wrap=True)
        return 2
    where = "" if args.partition is None else f" on partition {args.partition} only"
    table = Table(title=f"replay {args.service} to {target.describe()}{where}" + (" (dry run)" if args.dry_run else ""))
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
        errors.print(f"refused: {', '.join(p.group for p in active)} active — stop {args.service} first")
        return 3
    if args.dry_run:
        return 0
    try:
        with _progress() as progress:
            task = progress.add_task("resetting consumer groups", total=len(plans))
            await apply_replay(kafka_bootstrap(), args.prefix, plans, on_group=lambda _: progress.advance(task))
    except ReplayRefused as exc:
        errors.print(f"refused: {exc}")
        return 3
    if args.partition is not None:
        console.print(f"moved partition {args.partition} of {plans[0].group} to offset {target.offset}; "
                      "its other partitions are unchanged")
    else:
        console.print(f"reset {len(plans)} consumer group(s) of {args.service}; it reprocesses them when it starts")
    return 0


# ------------------------------------------------------------------------- dead letters


def _letters_table(title: str, letters: Sequence[Any]) -> Table:
    from contracts.identity import mask_identity_number  # noqa: PLC0415

    table = Table(title=title)
    for column in ("dlt offset", "status", "service", "original topic", "partition", "offset", "key", "field",
                   "reason"):
        table.add_column(column, overflow="fold")
    for lt in letters:
        original = lt.original or ("?", "?", "?")
        key = mask_identity_number(lt.key.decode("utf-8", "replace")) if lt.key else "-"
        cells = (lt.offset, lt.status, lt.service or "-", *original, key, lt.field or "-", lt.reason)
        table.add_row(*(escape(str(c)) for c in cells))
    return table


async def cmd_dlt_list(args: argparse.Namespace) -> int:
    from tools.operator_dlt import all_dlt_names, dlt_name, list_letters  # noqa: PLC0415

    names = [dlt_name(args.prefix, args.topic)] if args.topic else all_dlt_names(args.prefix)
    found = 0
    with _progress() as progress:
        task = progress.add_task("reading dead-letter topics", total=len(names))
        results = []
        for name in names:
            results.append((name, await list_letters(kafka_bootstrap(), args.prefix, name)))
            progress.advance(task)
    for name, letters in results:
        if letters or args.topic:
            console.print(_letters_table(f"{name}: {len(letters)} dead letters", letters))
        found += len(letters)
    return 0 if found else 1


async def cmd_dlt_redrive(args: argparse.Namespace) -> int:
    from tools.operator_dlt import dlt_name, redrive  # noqa: PLC0415

    name = dlt_name(args.prefix, args.topic)
    try:
        with _progress() as progress:
            task = progress.add_task(f"redriving {name}", total=None)
            result = await redrive(kafka_bootstrap(), args.prefix, args.topic, offset=args.offset,
                                   dry_run=args.dry_run, on_sent=lambda _: progress.advance(task))
    except ValueError as exc:
        errors.print(str(exc))
        return 2
    verb = "would redrive" if args.dry_run else "redriven"
    if result.sent:
        console.print(_letters_table(f"{verb}: {len(result.sent)}", result.sent))
    for lt in result.skipped:
        console.print(escape(f"skipped offset {lt.offset}: {lt.why_not_redriven()}"))
    console.print(f"{len(result.sent)} {verb}, {len(result.skipped)} skipped")
    return 0


# ------------------------------------------------------------------------------ parser


def _date(text: str) -> date:
    return date.fromisoformat(text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m tools.operator", description=__doc__.split("\n\n")[0])
    top.add_argument("--prefix", default=os.environ.get("TOPIC_PREFIX", ""), help="topic and group prefix")
    top.add_argument("--audit-db", default=os.environ.get("AUDIT_DATABASE", "medsettle_audit"))
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--prefix", default=argparse.SUPPRESS, help="topic and group prefix (env TOPIC_PREFIX)")
    common.add_argument("--audit-db", default=argparse.SUPPRESS, help="the audit's database (env AUDIT_DATABASE)")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("trace", parents=[common], help="every event of a claim across topics, in order")
    p.add_argument("claim_id")
    p.set_defaults(run=cmd_trace)

    p = sub.add_parser("kpis", parents=[common], help="KPIs for a period of discharge dates")
    p.add_argument("--from", dest="date_from", type=_date, required=True)
    p.add_argument("--to", dest="date_to", type=_date, required=True)
    p.add_argument("--region", help="policy profile id, e.g. demo-county")
    p.add_argument("--pool", help="provider pool code")
    p.set_defaults(run=cmd_kpis)

    p = sub.add_parser("alerts", parents=[common], help="fund-supervision and reconciliation alerts")
    p.add_argument("--rule")
    p.add_argument("--claim")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(run=cmd_alerts)

    p = sub.add_parser("reconcile", parents=[common], help="statements vs ledgers, per layer (read only)")
    p.set_defaults(run=cmd_reconcile)

    p = sub.add_parser("replay", parents=[common], help="reset a service's consumer groups (stop it first)")
    p.add_argument("service")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--to-earliest", action="store_true")
    where.add_argument("--to-datetime", metavar="ISO_TIME", help="e.g. 2026-03-01T08:00:00+08:00 (naive: local)")
    where.add_argument("--to-offset", type=int, metavar="N",
                       help="the same offset on every partition (with --partition: on that one, exactly)")
    p.add_argument("--topic", help="only the group of this input topic (needed with --partition for audit)")
    p.add_argument("--partition", type=int, metavar="P",
                   help="move only this partition (needs --to-offset; e.g. past a poison record: its offset + 1)")
    p.add_argument("--dry-run", action="store_true", help="show how much would be reprocessed; change nothing")
    p.set_defaults(run=cmd_replay)

    dlt = sub.add_parser("dlt", help="dead letters").add_subparsers(dest="dlt_command", required=True)
    p = dlt.add_parser("list", parents=[common], help="dead letters with their reason and origin")
    p.add_argument("topic", nargs="?", help="e.g. claims.discharges (all dead-letter topics if left out)")
    p.set_defaults(run=cmd_dlt_list)
    p = dlt.add_parser("redrive", parents=[common], help="republish dead letters to their original topic")
    p.add_argument("topic")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--offset", type=int, help="the dead letter at this offset")
    which.add_argument("--all", action="store_true", help="every dead letter not redriven yet")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(run=cmd_dlt_redrive)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(args.run(args))
    except (OSError, asyncpg.PostgresError) as exc:
        errors.print(f"error: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
