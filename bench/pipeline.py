"""End-to-end throughput of the settlement chain on this machine, against a transport-only yardstick.

    .venv/bin/python bench/pipeline.py [--discharges 5000] [--persons 5000]

Runs enrollment, settlement, catastrophic, assistance and the audit as separate processes (as in
production) in a fresh namespace (topic prefix, own databases) on the local stack, enrolls a
generated population, publishes the discharges as fast as the producer goes, and prints how long
each layer took to settle all of them, the resulting rates, and when the audit had stored
everything. Then, in a second namespace, the same discharges pass three transport-only hops
(`bench/transport.py`: the same topics and partitions, batches, JSON decode and encode, idempotent
producer, a commit per batch, no database) and it prints their rate and the ratio pipeline /
transport. Cleans up both namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import transport  # noqa: E402
from bench.namespace import BenchNamespace  # noqa: E402
from bench.profiling import start_profile, stop_profile  # noqa: E402
from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES  # noqa: E402
from runtime.kafka_access import KafkaAccess  # noqa: E402
from tools.generate import generate_discharges, generate_population  # noqa: E402
from tools.hospital.publish import Prepared, direct, prepare_discharge, publish  # noqa: E402
from tools.stack.common import cpu_seconds  # noqa: E402
from tools.stack.connection import local_access  # noqa: E402
from tools.stack.lag import wait_drained  # noqa: E402
from tools.stack.namespaces import close_namespace, open_namespace  # noqa: E402

LAYERS = [("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED), ("assistance", CATASTROPHIC_SETTLED)]
SERVICES = ("enrollment", "settlement", "catastrophic", "assistance", "audit")


async def transport_yardstick(admin: KafkaAccess, bootstrap: str, discharges: list[Prepared],
                              pipeline_s: float) -> None:
    """The same discharges through `bench/transport.py`'s three hops in a namespace of their own."""
    n = len(discharges)
    prefix = f"b{uuid.uuid4().hex[:8]}."
    await open_namespace(admin, prefix)
    try:
        kafka = {service: local_access(service, bootstrap) for service in transport.HOPS}
        t_publish, done, cpu = await transport.run(admin, kafka, prefix, discharges)
    finally:
        await close_namespace(admin, prefix)
    print(f"transport only (bench/transport.py, same topics, batches, JSON, idempotent producer, commits): "
          f"published in {t_publish:.1f}s")
    for service, t in done.items():
        print(f"  hop {service:<13} all forwarded after {t:6.1f}s  ({n / t:,.0f} discharges/s end to end)")
    print("CPU per 1,000 discharges: " + ", ".join(f"{s} {v / n * 1000:.2f}s" for s, v in cpu.items() if v is not None))
    rate, yardstick = n / pipeline_s, n / done["assistance"]
    print(f"pipeline / transport: {rate:,.0f} / {yardstick:,.0f} discharges/s = {rate / yardstick:.2f}")


async def main(n: int, persons: int, profile: str | None = None) -> None:
    ns = await BenchNamespace.open("b", SERVICES)
    admin, prefix, bootstrap = ns.admin, ns.prefix, ns.admin.bootstrap_servers
    procs = ns.start(SERVICES, "/tmp/bench-{name}.log")  # each as its own principal and role, as in production
    try:
        providers, people = generate_population(persons, 50, seed=5, year=2026)
        stream = generate_discharges(n, seed=5, year=2026, providers=providers, persons=people)
        t_enroll = await ns.enroll(providers, people, timeout=900)
        # straight to claims.discharges (as `publish --direct`): this chain runs without the intake
        discharges = [direct(prepare_discharge(d.model_dump(mode="json"))) for d in stream]
        spy = start_profile(profile, dict(zip(SERVICES, procs, strict=True))) if profile else None
        t0 = time.perf_counter()
        await publish(discharges, admin, progress=False, prefix=prefix)
        t_publish = time.perf_counter() - t0
        done: dict[str, float] = {}
        for name, _ in LAYERS:  # a layer is done when its ledger has a row for every discharge
            conn = await ns.connect(name)
            try:
                while True:
                    if await conn.fetchval("SELECT count(*) FROM ledger") >= n:
                        break
                    await asyncio.sleep(0.1)
            finally:
                await conn.close()
            done[name] = time.perf_counter() - t0
        if spy is not None:
            stop_profile(spy)
        statements = await ns.count("assistance", "statement")
        await wait_drained(admin, ns.audit_groups(), timeout=900)
        t_audit = time.perf_counter() - t0
        print(f"machine: {os.cpu_count()} cores; {persons:,} persons enrolled in {t_enroll:.1f}s "
              f"({(persons + 50) / t_enroll:,.0f} commands/s)")
        print(f"{n:,} discharges published in {t_publish:.1f}s ({n / t_publish:,.0f}/s)")
        for name, _ in LAYERS:
            print(f"  {name:<13} all settled after {done[name]:6.1f}s  ({n / done[name]:,.0f} discharges/s end to end)")
        print(f"  audit         all stored after {t_audit:6.1f}s  ({n / t_audit:,.0f} discharges/s end to end)")
        print(f"statements: {statements:,} (one per discharge: {statements == n})")
        cpu = {name: cpu_seconds(p.pid) for name, p in zip(SERVICES, procs, strict=True)}
        if all(v is not None for v in cpu.values()):  # less sensitive than wall time to other load on the host
            print("CPU per 1,000 discharges (user+system, whole run incl. enrollment): " + ", ".join(
                f"{name} {v / n * 1000:.2f}s" for name, v in cpu.items() if v is not None))
        for p in procs:  # the transport runs alone on the host, as the pipeline did
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        await transport_yardstick(admin, bootstrap, discharges, done["assistance"])
    finally:
        await ns.close(procs, timeout=30)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--discharges", type=int, default=5_000)
    ap.add_argument("--persons", type=int, default=5_000)
    ap.add_argument("--profile", choices=SERVICES, help="sample this service with py-spy while the discharges pass")
    args = ap.parse_args()
    asyncio.run(main(args.discharges, args.persons, args.profile))
