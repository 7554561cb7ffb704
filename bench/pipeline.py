"""End-to-end throughput of the settlement chain on this machine.

    .venv/bin/python bench/pipeline.py [--discharges 20000] [--persons 20000]

Runs enrollment, settlement, catastrophic and assistance as separate processes (as in
production) in a fresh namespace (topic prefix, own databases) on the local stack, enrolls a
generated population, publishes the discharges as fast as the producer goes, and prints how long
each layer took to settle all of them and the resulting rates. Cleans up its namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES, ENROLLMENT_COMMANDS  # noqa: E402
from runtime.settings import database_name  # noqa: E402
from tools import stack  # noqa: E402
from tools.generate import generate_discharges, generate_population  # noqa: E402
from tools.hospital.publish import direct, prepare_command, prepare_discharge, publish  # noqa: E402
from tools.stack.common import cpu_seconds  # noqa: E402
from tools.stack.connection import local_access, service_connection  # noqa: E402
from tools.stack.lag import wait_drained  # noqa: E402
from tools.stack.namespaces import close_namespace, open_namespace  # noqa: E402
from tools.stack.pg import create_service_database  # noqa: E402
from tools.stack.services import spawn  # noqa: E402

LAYERS = [("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED), ("assistance", CATASTROPHIC_SETTLED)]
SERVICES = ("enrollment", "settlement", "catastrophic", "assistance")


def start_services(env: dict[str, str], prefix: str, bootstrap: str) -> list[subprocess.Popen[bytes]]:
    """The four services as processes in the namespace, each as its own principal (as in production),
    logging to `/tmp/bench-<name>.log`."""
    level = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    return [spawn(name, {**env, **local_access(name, bootstrap).env(), **service_connection(name, env["DATABASE_URL"]),
                         "DATABASE_NAME": database_name(name, prefix), "LOG_LEVEL": level},
                  Path(f"/tmp/bench-{name}.log"), detach=False)
            for name in SERVICES]


async def main(n: int, persons: int) -> None:
    settings = stack.start()
    bootstrap, server, passfile = settings["KAFKA_BOOTSTRAP_SERVERS"], settings["DATABASE_URL"], settings["PGPASSFILE"]
    admin = local_access("admin", bootstrap)
    prefix = f"b{uuid.uuid4().hex[:8]}."
    await open_namespace(admin, prefix)
    for name in SERVICES:  # the namespace's databases, each owned by its service's role
        await create_service_database(server, database_name(name, prefix), name, passfile)
    env = {"DATABASE_URL": server, "TOPIC_PREFIX": prefix}
    procs = start_services(env, prefix, bootstrap)
    try:
        providers, people = generate_population(persons, 50, seed=5, year=2026)
        stream = generate_discharges(n, seed=5, year=2026, providers=providers, persons=people)
        commands = [prepare_command({"event_type": type(c).__name__, "payload": c.model_dump(mode="json")})
                    for c in [*providers, *people]]
        t0 = time.perf_counter()
        await publish(commands, admin, progress=False, prefix=prefix)
        await wait_drained(admin, [(f"{prefix}medsettle.enrollment.{ENROLLMENT_COMMANDS}",
                                        prefix + ENROLLMENT_COMMANDS)], timeout=900)
        t_enroll = time.perf_counter() - t0
        # straight to claims.discharges (as `publish --direct`): this chain runs without the intake
        discharges = [direct(prepare_discharge(d.model_dump(mode="json"))) for d in stream]
        t0 = time.perf_counter()
        await publish(discharges, admin, progress=False, prefix=prefix)
        t_publish = time.perf_counter() - t0
        done: dict[str, float] = {}
        for name, _ in LAYERS:  # a layer is done when its ledger has a row for every discharge
            conn = await asyncpg.connect(f"{server}/{database_name(name, prefix)}", passfile=passfile)
            try:
                while True:
                    if await conn.fetchval("SELECT count(*) FROM ledger") >= n:
                        break
                    await asyncio.sleep(0.1)
            finally:
                await conn.close()
            done[name] = time.perf_counter() - t0
        conn = await asyncpg.connect(f"{server}/{database_name('assistance', prefix)}", passfile=passfile)
        statements = await conn.fetchval("SELECT count(*) FROM statement")
        await conn.close()
        print(f"machine: {os.cpu_count()} cores; {persons:,} persons enrolled in {t_enroll:.1f}s "
              f"({(persons + 50) / t_enroll:,.0f} commands/s)")
        print(f"{n:,} discharges published in {t_publish:.1f}s ({n / t_publish:,.0f}/s)")
        for name, _ in LAYERS:
            print(f"  {name:<13} all settled after {done[name]:6.1f}s  ({n / done[name]:,.0f} discharges/s end to end)")
        print(f"statements: {statements:,} (one per discharge: {statements == n})")
        cpu = {name: cpu_seconds(p.pid) for name, p in zip(SERVICES, procs, strict=True)}
        if all(v is not None for v in cpu.values()):  # less sensitive than wall time to other load on the host
            print("CPU per 1,000 discharges (user+system, whole run incl. enrollment): " + ", ".join(
                f"{name} {v / n * 1000:.2f}s" for name, v in cpu.items() if v is not None))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        await close_namespace(admin, prefix)
        conn = await asyncpg.connect(f"{server}/postgres", passfile=passfile)
        for name in SERVICES:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(name, prefix)}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--discharges", type=int, default=20_000)
    ap.add_argument("--persons", type=int, default=20_000)
    args = ap.parse_args()
    asyncio.run(main(args.discharges, args.persons))
