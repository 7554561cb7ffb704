"""Replay a year: a million generated discharges settled through every layer, on this machine.

    .venv/bin/python bench/replay.py [--discharges 1000000] [--persons N] [--chunk 10000] [--keep]

Runs enrollment, settlement, catastrophic, assistance and the audit as separate processes (as
`bench/pipeline.py` does, each as its own principal and role) in a fresh namespace (topic prefix,
own databases) on the local stack, enrolls a generated population (`--persons`, by default a
quarter of the discharges, as `bench/kpis.py`'s year), then streams the year's discharges: they
are generated chunk by chunk (`tools.generate.discharge_chunks`, deterministic for `--seed`, one
chunk of `--chunk` in memory at a time) and published straight to `claims.discharges` (an
operator's back-fill) with the producer's batching, never more than `--ahead` discharges ahead of
the statements. Prints progress every `--interval` seconds (published, settled by each layer,
the current and the overall rate), then the wall time and rate until every statement was stored
and until the audit had stored everything, each service's CPU per 1,000 discharges, the size of
each service's database scaled to a million claims (`pg_database_size`) and of the namespace's
Kafka logs. Verifies by SQL that the assistance layer holds exactly one statement per discharge
(exit 1 if not). Removes the namespace (topics, ACLs, databases) unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.namespace import BenchNamespace  # noqa: E402
from bench.pipeline import LAYERS, SERVICES  # noqa: E402
from contracts.claims import DischargeRecorded  # noqa: E402
from tools.generate import discharge_chunks, generate_population  # noqa: E402
from tools.hospital.publish import Prepared, direct, prepare_discharge, publish  # noqa: E402
from tools.stack.common import cpu_seconds  # noqa: E402
from tools.stack.lag import wait_drained  # noqa: E402

YEAR = 2026
PROVIDERS = 50
STALL_S = 600.0
"""Give up when no layer has settled anything for this long."""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def size(n: float) -> str:
    """Bytes in binary units (a database may shrink: vacuum, published outbox rows deleted)."""
    sign, n = ("-" if n < 0 else ""), abs(n)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return sign + (f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}")
        n /= 1024
    raise AssertionError


def own_cpu() -> float:
    """This process's CPU seconds (user + system, every thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss() -> int:
    """This process's peak resident memory, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Progress:
    published: int = 0
    settled: dict[str, int] | None = None
    """Ledger rows of each layer (`LAYERS`) at the last look."""
    looked: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at every look."""

    @property
    def statements(self) -> int:
        return (self.settled or {}).get("assistance", 0)


def prepared(chunks: Iterator[list[DischargeRecorded]]) -> list[Prepared] | None:
    """The next chunk, prepared as `publish --direct` sends it (checked as a consumer decodes it);
    None at the end."""
    chunk = next(chunks, None)
    return None if chunk is None else [direct(prepare_discharge(d)) for d in chunk]


async def publish_year(ns: BenchNamespace, chunks: Iterator[list[DischargeRecorded]], state: Progress,
                       ahead: int) -> None:
    """Generate and publish chunk after chunk (generation in a thread, so progress is reported on time)."""
    while (batch := await asyncio.to_thread(prepared, chunks)) is not None:
        while ahead and state.published - state.statements > ahead:
            state.looked.clear()
            await state.looked.wait()
        state.published += await publish(batch, ns.admin, progress=False, prefix=ns.prefix)
        del batch


async def watch(ns: BenchNamespace, n: int, state: Progress, t0: float, interval: float,
                publisher: asyncio.Task[None]) -> float:
    """Count each layer's ledger once a second (one connection per layer), print progress every
    `interval` s; returns the seconds since `t0` when the assistance layer had `n` statements.
    Raises what the `publisher` raised."""
    conns = {name: await ns.connect(name) for name, _ in LAYERS}
    try:
        last_print, last_statements, last_change = t0, 0, time.perf_counter()
        while True:
            settled = {name: await conn.fetchval("SELECT count(*) FROM ledger") for name, conn in conns.items()}
            statements = await conns["assistance"].fetchval("SELECT count(*) FROM statement")
            now = time.perf_counter()
            looked = {**settled, "assistance": statements}
            if looked != state.settled:
                last_change = now
            state.settled = looked
            state.looked.set()
            if statements >= n:
                return now - t0
            if publisher.done() and (failed := publisher.exception()) is not None:
                raise failed
            if now - last_change > STALL_S:
                raise TimeoutError(f"nothing settled for {STALL_S:.0f}s: {state.settled}")
            if now - last_print >= interval:
                rate = (statements - last_statements) / (now - last_print)
                print(f"  {now - t0:7.0f}s  published {state.published:,}; settled: "
                      + ", ".join(f"{name} {v:,}" for name, v in settled.items() if name != "assistance")
                      + f", statements {statements:,} ({statements / n:.1%}); now {rate:,.0f}/s, "
                      f"overall {statements / (now - t0):,.0f}/s; {load()}", flush=True)
                last_print, last_statements = now, statements
            await asyncio.sleep(1.0)
    finally:
        for conn in conns.values():
            await conn.close()


async def main(n: int, persons: int, seed: int, chunk: int, ahead: int, interval: float, keep: bool) -> int:
    print(f"host: {os.cpu_count()} cores, {load()} before", flush=True)
    ns = await BenchNamespace.open("r", SERVICES)
    procs = ns.start(SERVICES, "/tmp/bench-replay-{name}.log")  # each as its own principal and role
    ok = False
    try:
        providers, people = generate_population(persons, PROVIDERS, seed=seed, year=YEAR)
        t_enroll = await ns.enroll(providers, people, timeout=3600)
        print(f"namespace {ns.prefix}: {persons:,} persons and {PROVIDERS} providers enrolled in {t_enroll:.1f}s "
              f"({(persons + PROVIDERS) / t_enroll:,.0f} commands/s)", flush=True)
        cpu0 = {name: cpu_seconds(p.pid) for name, p in zip(SERVICES, procs, strict=True)}
        sizes0, kafka0 = await ns.sizes(), ns.kafka_log_bytes()  # the empty schemas and the population
        own0 = own_cpu()
        state = Progress()
        chunks = discharge_chunks(n, seed, YEAR, providers, people, chunk=chunk)
        t0 = time.perf_counter()
        publisher = asyncio.create_task(publish_year(ns, chunks, state, ahead))
        try:
            t_statements = await watch(ns, n, state, t0, interval, publisher)
            await publisher  # done long before; raises what it raised
        finally:
            publisher.cancel()
        await wait_drained(ns.admin, ns.audit_groups(), timeout=max(3600.0, t_statements))
        t_audit = time.perf_counter() - t0
        cpu = {name: cpu_seconds(p.pid) for name, p in zip(SERVICES, procs, strict=True)}

        conn = await ns.connect("assistance")
        try:
            statements = await conn.fetchval("SELECT count(*) FROM statement")
            claims = await conn.fetchval("SELECT count(DISTINCT claim_id) FROM statement")
            outcomes = await conn.fetch("SELECT outcome, count(*) AS n FROM statement GROUP BY outcome ORDER BY 1")
        finally:
            await conn.close()
        ledgers = {name: await ns.count(name, "ledger") for name, _ in LAYERS}
        sizes = await ns.sizes()
        kafka = ns.kafka_log_bytes()

        print(f"{n:,} discharges (seed {seed}, chunks of {chunk:,}), {persons:,} persons, on {os.cpu_count()} cores")
        print(f"  every statement stored after {t_statements:,.1f}s: {n / t_statements:,.1f} discharges/s end to end")
        print(f"  the audit caught up after    {t_audit:,.1f}s: {n / t_audit:,.1f} discharges/s end to end, all layers")
        print(f"  wall time {t_audit / 60:,.1f} min; extrapolated to 1,000,000: {1e6 / n * t_audit / 3600:,.1f} h "
              f"at this rate")
        used = {name: after - before for name in SERVICES
                if (after := cpu[name]) is not None and (before := cpu0[name]) is not None}
        print("  CPU per 1,000 discharges (user+system, after enrollment): "
              + ", ".join(f"{name} {v / n * 1000:.2f}s" for name, v in used.items())
              + f"; this process (generating, preparing, publishing) {(own_cpu() - own0) / n * 1000:.2f}s")
        print(f"  statements: {statements:,} for {claims:,} claims ("
              + ", ".join(f"{r['outcome']} {r['n']:,}" for r in outcomes) + "); ledgers: "
              + ", ".join(f"{name} {v:,}" for name, v in ledgers.items()))
        scale = 1_000_000 / n
        print("database size per million claims: what each database grew by while the discharges passed "
              "(pg_database_size after − before, after the population was enrolled) × 1,000,000 / discharges:")
        grown = {name: b - sizes0[name] for name, b in sizes.items()}
        for name, b in [*sizes.items(), ("total", sum(sizes.values()))]:
            g = grown[name] if name in grown else sum(grown.values())
            print(f"  {name:<13} {size(g * scale):>10} per million   (now {size(b)}, grew {size(g)})")
        if kafka is not None and kafka0 is not None:
            print(f"  Kafka logs of the namespace's topics (*.log segments): {size((kafka - kafka0) * scale)} "
                  f"per million (now {size(kafka)}, grew {size(kafka - kafka0)})")
        print(f"host: {load()} after; this process's peak memory {size(peak_rss())} (generation, one chunk at a time)",
              flush=True)
        ok = statements == n == claims
        print(f"one statement per discharge: {ok}")
        if keep:
            print(f"kept: namespace {ns.prefix}")
    finally:
        await ns.close(procs, drop=not keep, timeout=60)
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--discharges", type=int, default=1_000_000)
    ap.add_argument("--persons", type=int, help="the population (default: a quarter of the discharges, at least 1,000)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=10_000, help="discharges generated and published at a time")
    ap.add_argument("--ahead", type=int, default=50_000,
                    help="publish at most this many discharges ahead of the statements (0: no limit)")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between progress lines")
    ap.add_argument("--keep", action="store_true", help="leave the namespace (topics, databases)")
    a = ap.parse_args()
    if a.discharges < 1 or a.chunk < 1 or a.ahead < 0:
        ap.error("--discharges and --chunk must be at least 1, --ahead not negative")
    sys.exit(asyncio.run(main(a.discharges, a.persons or max(1_000, a.discharges // 4), a.seed, a.chunk, a.ahead,
                              a.interval, a.keep)))
