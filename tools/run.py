"""The README's run command: the whole platform on this machine, with a demo.

    ./medsettle run [--persons 10000] [--providers 50] [--discharges 2000] [--day 2026-06-15] [--seed 7]

1. starts the local stack (Kafka, PostgreSQL) and every service as a process;
2. generates a population and a provider registry (deterministic for the seed) and enrolls them
   through the enrollment service;
3. generates one day of discharges, publishes them as the hospitals would, waits until every
   layer has settled them, and prints per-layer fund totals, what patients pay and the actual
   compensation ratio;
4. prints the stack's status (topics, consumer lag, registered persons and providers).

Everything it publishes has content-derived event ids, so running it again changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from contracts.topics import (
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
)
from tools import services, stack
from tools.connection import database_url, kafka_bootstrap
from tools.generate import (
    generate_discharges,
    generate_population,
    read_population,
    write_discharges,
    write_population,
)
from tools.lag import wait_drained
from tools.publish import prepare_command, prepare_discharge, publish

console = Console()
DATA = Path(__file__).resolve().parent.parent / ".local" / "data"
CHAIN = [("medsettle.enrollment", ENROLLMENT_COMMANDS), ("medsettle.settlement", DISCHARGES),
         ("medsettle.catastrophic", BASIC_SETTLED), ("medsettle.assistance", CATASTROPHIC_SETTLED)]


def _group(service: str, topic: str) -> str:
    return f"{service}.{topic}"


async def enroll(persons: int, providers: int, seed: int, year: int) -> Path:
    directory = DATA / f"population-{persons}-{providers}-{seed}-{year}"
    if not (directory / "persons.jsonl").exists():
        provs, people = generate_population(persons, providers, seed, year)
        write_population(directory, provs, people)
    provs, people = read_population(directory)
    console.print(f"enrolling {len(people):,} persons and {len(provs):,} providers (from {directory})")
    commands = [prepare_command({"event_type": type(c).__name__, "payload": c.model_dump(mode="json")})
                for c in [*provs, *people]]
    await publish(commands, kafka_bootstrap())
    await wait_drained(kafka_bootstrap(), [(_group(*CHAIN[0]), ENROLLMENT_COMMANDS)], timeout=600)
    return directory


async def demo(population: Path, count: int, day: date, seed: int) -> list[str]:
    provs, people = read_population(population)
    path = DATA / f"discharges-{day.isoformat()}-{count}-{seed}.jsonl"
    if not path.exists():
        write_discharges(path, generate_discharges(count, seed, day.year, provs, people, day=day))
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    discharges = [prepare_discharge(json.loads(line)) for line in lines]
    console.print(f"publishing {len(discharges):,} discharges of {day.isoformat()} (from {path})")
    await publish(discharges, kafka_bootstrap())
    await wait_drained(kafka_bootstrap(), [(_group(s, t), t) for s, t in CHAIN[1:]], timeout=900)
    return [d.envelope.payload.claim_id for d in discharges]


async def totals(claim_ids: list[str]) -> dict[str, Decimal | int]:
    conn = await asyncpg.connect(stack.database_dsn(database_url(), "medsettle_assistance"))
    try:
        row = await conn.fetchrow(
            """SELECT count(*) AS statements, count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
                      coalesce(sum(total_cost), 0) AS total, coalesce(sum(in_policy), 0) AS in_policy,
                      coalesce(sum(hifp_pay), 0) AS basic, coalesce(sum(hifmi_pay), 0) AS catastrophic,
                      coalesce(sum(maf_pay), 0) AS assistance, coalesce(sum(psn_pay), 0) AS patient
               FROM statement WHERE claim_id = ANY($1::text[])""", claim_ids)
    finally:
        await conn.close()
    return dict(row)


def report(t: dict[str, Decimal | int], day: date) -> None:
    total = Decimal(t["total"]) or Decimal(1)
    funds = Decimal(t["basic"]) + Decimal(t["catastrophic"]) + Decimal(t["assistance"])
    table = Table(title=f"One-stop settlement of {t['statements']:,} discharges on {day.isoformat()}"
                        f" ({t['rejected']:,} rejected)")
    table.add_column("")
    table.add_column("yuan", justify="right")
    table.add_column("share of total cost", justify="right")
    for label, key in (("basic insurance (基本医保)", "basic"), ("critical-illness insurance (大病保险)", "catastrophic"),
                       ("medical assistance (医疗救助)", "assistance")):
        table.add_row(label, f"{Decimal(t[key]):,.2f}", f"{Decimal(t[key]) / total:.2%}")
    table.add_row("all funds", f"{funds:,.2f}", f"{funds / total:.2%}", style="bold")
    table.add_row("patients pay (个人负担)", f"{Decimal(t['patient']):,.2f}", f"{Decimal(t['patient']) / total:.2%}")
    table.add_row("total cost", f"{Decimal(t['total']):,.2f}", "100.00%")
    console.print(table)
    console.print(f"actual compensation ratio (funds / total cost): [bold]{funds / total:.2%}[/bold]; "
                  f"in-policy cost {Decimal(t['in_policy']):,.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./medsettle run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=10_000)
    ap.add_argument("--providers", type=int, default=50)
    ap.add_argument("--discharges", type=int, default=2_000)
    ap.add_argument("--day", type=date.fromisoformat, default=date(2026, 6, 15))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-demo", action="store_true", help="only start everything and enroll the population")
    args = ap.parse_args(argv)

    stack.start()
    for name in services.available():
        console.print(f"{name}: pid {services.start(name)} (log .local/logs/{name}.log)")
    population = asyncio.run(enroll(args.persons, args.providers, args.seed, args.day.year))
    if not args.no_demo:
        claim_ids = asyncio.run(demo(population, args.discharges, args.day, args.seed))
        report(asyncio.run(totals(claim_ids)), args.day)
    stack.status()
    console.print("the services keep running; stop everything with: ./medsettle stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
