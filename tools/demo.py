"""The README's run command: the whole platform on this machine, with a demo.

    ./medsettle run [--persons 10000] [--providers 50] [--discharges 2000] [--day 2026-06-15] [--seed 7]

1. starts the local stack (Kafka, PostgreSQL) and every service as a process;
2. generates a population and a provider registry (deterministic for the seed) and enrolls them
   through the enrollment service;
3. issues each generated hospital its credentials (kept in `.local/secrets/hospitals/<id>.json`,
   0600; once per hospital), generates one day of discharges, publishes them as the hospitals would
   — each as itself on `hospital.<id>.requests` once the intake service exists to move them on,
   else as the operator on `claims.discharges` — waits until every layer has settled them, and
   prints per-layer fund totals, what patients pay and the actual compensation ratio;
4. prints the stack's status (topics, consumer lag, registered persons and providers).

Everything it publishes has content-derived event ids, so running it again changes nothing.
"""

from __future__ import annotations

import asyncio
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
    INTAKE,
    hospital_requests_topic,
)
from runtime.kafka_access import KafkaAccess
from tools import stack
from tools.generate import (
    PERSONS_FILE,
    PROVIDERS_FILE,
    generate_discharges,
    generate_population,
    read_population,
    write_discharges,
    write_population,
)
from tools.hospital.credentials import HospitalCredentials
from tools.hospital.publish import Prepared, for_hospital, publish, read_lines
from tools.stack import services
from tools.stack.common import StackError, paths
from tools.stack.connection import local_access
from tools.stack.lag import wait_drained
from tools.stack.secrets import StackSecrets

console = Console()
ENROLLED = [(f"medsettle.enrollment.{ENROLLMENT_COMMANDS}", ENROLLMENT_COMMANDS)]
SETTLED = [(f"medsettle.{service}.{topic}", topic) for service, topic in
           (("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED), ("assistance", CATASTROPHIC_SETTLED))]
"""The consumer groups (and their topics) that have processed everything once a step is done."""


def _data() -> Path:
    """Where the generated files are kept (the stack's `.local/data`): generated once per argument set."""
    return paths().local / "data"


def _validated(path: Path, kind: str) -> list[Prepared]:
    good, bad = read_lines(path, kind)  # type: ignore[arg-type]
    if bad:
        raise StackError(f"{path}:{bad[0].line} {bad[0].reason} ({len(bad)} bad lines; delete the file to "
                         "generate it again)")
    return good


INTAKE_GROUP = "medsettle.intake.hospital.requests"
"""The intake's consumer group on every hospital's requests topic."""


def intake_available() -> bool:
    """Does the stack run an intake service to move hospitals' requests on?"""
    return INTAKE in services.SERVICES


async def hospital_credentials(admin: KafkaAccess, hospital_ids: list[str]) -> dict[str, HospitalCredentials]:
    """Each hospital's credentials: kept from an earlier run, else issued now and kept (0600)."""
    from tools.operator.hospitals import issue_many
    from tools.stack.kafka_admin import KafkaAdmin

    secrets = StackSecrets(paths().local)
    kept = {h: HospitalCredentials.load(secrets.hospital_file(h)) for h in hospital_ids
            if secrets.hospital_file(h).is_file()}
    async with KafkaAdmin(admin) as as_admin:  # a wiped broker forgot them
        known = await as_admin.scram_users([c.access.username for c in kept.values()])  # type: ignore[misc]
    kept = {h: c for h, c in kept.items() if c.access.username in known}
    missing = [h for h in hospital_ids if h not in kept]
    if missing:
        console.print(f"issuing credentials to {len(missing)} hospitals (kept in {secrets.hospitals})")
        for c in await issue_many(admin, missing):
            secrets.save_hospital(c.hospital_id, c.to_json())
            kept[c.hospital_id] = c
    return kept


async def enroll(kafka: KafkaAccess, persons: int, providers: int, seed: int, year: int) -> Path:
    directory = _data() / f"population-{persons}-{providers}-{seed}-{year}"
    if not (directory / PERSONS_FILE).exists():
        write_population(directory, *generate_population(persons, providers, seed, year))
    provider_commands = _validated(directory / PROVIDERS_FILE, "commands")
    person_commands = _validated(directory / PERSONS_FILE, "commands")
    console.print(f"enrolling {len(person_commands):,} persons and {len(provider_commands):,} providers "
                  f"(from {directory})")
    await publish(provider_commands + person_commands, kafka)
    await wait_drained(kafka, ENROLLED, timeout=600)
    return directory


async def demo(kafka: KafkaAccess, population: Path, count: int, day: date, seed: int) -> list[str]:
    path = _data() / f"discharges-{population.name}-{day.isoformat()}-{count}-{seed}.jsonl"
    if not path.exists():
        providers, persons = read_population(population)
        write_discharges(path, generate_discharges(count, seed, day.year, providers, persons, day=day))
    discharges = _validated(path, "discharges")
    providers, _ = read_population(population)
    hospitals = await hospital_credentials(kafka, sorted(p.provider_id for p in providers))
    settled = SETTLED
    if intake_available():
        console.print(f"publishing {len(discharges):,} discharges of {day.isoformat()} (from {path}), each "
                      "hospital as itself")
        by_hospital: dict[str, list[Prepared]] = {}
        for d in discharges:
            by_hospital.setdefault(d.envelope.payload.hospital_id, []).append(d)
        for hospital_id, messages in by_hospital.items():
            await publish([for_hospital(m, hospital_id) for m in messages], hospitals[hospital_id].access,
                          progress=False)
        settled = [*((INTAKE_GROUP, hospital_requests_topic(h)) for h in by_hospital), *SETTLED]
    else:
        console.print(f"publishing {len(discharges):,} discharges of {day.isoformat()} (from {path})")
        await publish(discharges, kafka)
    await wait_drained(kafka, settled, timeout=900)
    return [d.envelope.payload.claim_id for d in discharges]


async def totals(server_url: str, passfile: str, claim_ids: list[str]) -> dict[str, Decimal | int]:
    conn = await asyncpg.connect(stack.database_dsn(server_url, "medsettle_assistance"), passfile=passfile)
    try:
        row = await conn.fetchrow(
            """SELECT count(*) AS statements, count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
                      coalesce(sum(total_cost), 0) AS total, coalesce(sum(in_policy), 0) AS in_policy,
                      coalesce(sum(hifp_pay), 0) AS basic, coalesce(sum(hifmi_pay), 0) AS catastrophic,
                      coalesce(sum(maf_pay), 0) AS assistance, coalesce(sum(psn_pay), 0) AS patient
               FROM statement WHERE claim_id = ANY($1::text[])""", claim_ids)
    finally:
        await conn.close()
    assert row is not None  # an aggregate returns one row
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


def run(persons: int, providers: int, discharges: int, day: date, seed: int, no_demo: bool) -> int:
    """`./medsettle run`: the local stack and every service started, the population enrolled, the
    demo day settled and reported, the status printed. Returns the exit code."""
    settings = stack.start()  # the stack this command started is the one it uses (not $KAFKA_BOOTSTRAP_SERVERS)
    server_url = settings["DATABASE_URL"]
    admin = local_access("admin", settings["KAFKA_BOOTSTRAP_SERVERS"])
    for name in services.SERVICES:
        console.print(f"{name}: pid {services.start(name, settings)} (log {services.log_of(name)})")
    console.print(f"console: pid {services.start(services.CONSOLE, settings)} (log {services.log_of(services.CONSOLE)})")
    population = asyncio.run(enroll(admin, persons, providers, seed, day.year))
    if not no_demo:
        claim_ids = asyncio.run(demo(admin, population, discharges, day, seed))
        report(asyncio.run(totals(server_url, settings["PGPASSFILE"], claim_ids)), day)
    stack.status()
    console.print(f"hospitals' HTTP API (gateway): {services.api_url_of(services.API_SERVICE) or services.configured_api_url()}"
                  " (OpenAPI: /docs; README \"For hospitals\")")
    console.print(f"operator console: {services.console_url()} — sign in as operator, password in "
                  f"{services.console_password_file()}")
    console.print("the services keep running; stop everything with: ./medsettle stop")
    return 0
