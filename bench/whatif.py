"""The policy what-if (政策测算) on a generated year settled by the real platform, on this machine.

    .venv/bin/python bench/whatif.py [--discharges 200000] [--persons 100000] [--keep] [--reuse PREFIX]

Once: starts enrollment, settlement, catastrophic and assistance as processes in a fresh namespace
(topic prefix, own databases) on the local stack, enrolls a generated population, publishes a
generated year of discharges (in chunks, straight to `claims.discharges` as an operator's
back-fill) and then 0.5% corrections and 0.5% reversals, and waits until every layer has settled
them. Then, with the services still running, times `operator what-if` (tools.operator.whatif, the
command's own code) twice: under the live profile (it must report a difference of 0.00 in every
fund) and under a candidate; then solving the critical-illness threshold for a compensation target.
Prints the wall times, rates and the machine's load. `--keep` leaves the namespace (its prefix is
printed) and `--reuse PREFIX` times the what-if again on it without settling a new year.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.namespace import BenchNamespace  # noqa: E402
from contracts.topics import (  # noqa: E402
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    subscription_of,
)
from policy import load_profile, operator_overrides  # noqa: E402
from policy.whatif import layer_of_parameter, solve  # noqa: E402
from runtime.kafka_access import KafkaAccess  # noqa: E402
from tools.generate import generate_discharges, generate_population  # noqa: E402
from tools.generate.history import revisions  # noqa: E402
from tools.hospital.publish import (  # noqa: E402
    direct,
    prepare_command,
    prepare_correction,
    prepare_discharge,
    prepare_reversal,
    publish,
)
from tools.operator.whatif import Source, load_shards, run_what_if  # noqa: E402
from tools.stack.lag import wait_drained  # noqa: E402

YEAR = 2026
SERVICES = ("enrollment", "settlement", "catastrophic", "assistance")
LAYERS = (("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED), ("assistance", CATASTROPHIC_SETTLED))
CANDIDATE = ["basic.annual_cap=60000.00", "catastrophic.threshold=8000.00"]
"""The candidate timed: a higher basic cap and a higher critical-illness threshold (a what-if, not policy)."""
CHUNK = 25_000


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


async def settle_year(admin: KafkaAccess, prefix: str, n: int, persons: int, seed: int) -> None:
    t0 = time.perf_counter()
    providers, people = generate_population(persons, 50, seed=seed, year=YEAR)
    commands = [prepare_command({"event_type": type(c).__name__, "payload": c.model_dump(mode="json")})
                for c in [*providers, *people]]
    await publish(commands, admin, progress=False, prefix=prefix)
    await wait_drained(admin, [(f"{prefix}medsettle.enrollment.{ENROLLMENT_COMMANDS}",
                                    prefix + ENROLLMENT_COMMANDS)], timeout=1800)
    print(f"enrolled {persons:,} persons and 50 providers in {time.perf_counter() - t0:.0f}s", flush=True)
    later = []
    sent = 0
    for i, start in enumerate(range(0, n, CHUNK)):
        chunk = generate_discharges(min(CHUNK, n - start), seed=seed * 100 + i, year=YEAR, providers=providers,
                                    persons=people)
        corrections, reversals = revisions(chunk, seed * 100 + i)
        later += [direct(prepare_correction(c.model_dump(mode="json"))) for c in corrections]
        later += [direct(prepare_reversal(r.model_dump(mode="json"))) for r in reversals]
        sent += await publish([direct(prepare_discharge(d.model_dump(mode="json"))) for d in chunk], admin,
                              progress=False, prefix=prefix)
        del chunk
        print(f"  published {sent:,} discharges ({time.perf_counter() - t0:.0f}s)", flush=True)
    await publish(later, admin, progress=False, prefix=prefix)
    print(f"published {len(later):,} corrections and reversals; waiting for every layer", flush=True)
    await wait_drained(admin, [(f"{prefix}medsettle.{svc}.{subscription_of(topic)}", prefix + topic)
                                   for svc, topic in LAYERS], timeout=7200)
    print(f"the year is settled: {n:,} discharges in {time.perf_counter() - t0:.0f}s", flush=True)


async def main(n: int, persons: int, seed: int, keep: bool, reuse: str | None, solve_too: bool) -> None:
    ns = await BenchNamespace.open("w", SERVICES, prefix=reuse)
    prefix = ns.prefix
    procs = ns.start(SERVICES, "/tmp/bench-whatif-{name}.log")  # the live platform runs throughout
    try:
        if not reuse:
            await settle_year(ns.admin, prefix, n, persons, seed)
        source = Source(prefix)
        conn = await ns.connect("assistance")
        statements = await conn.fetchval("SELECT count(*) FROM statement")
        await conn.close()
        print(f"namespace {prefix}: {statements:,} statements; services running: "
              f"{sum(p.poll() is None for p in procs)} of {len(procs)}; {load()}", flush=True)

        live = await run_what_if(source, load_profile("demo-county"), YEAR)
        r = live.report
        diffs = ", ".join(f"{k} {v:,.2f}" for k, v in r.differences.items())
        print(f"what-if under the live profile: {r.claims:,} claims of {r.person_years:,} person-years re-priced in "
              f"{live.seconds:.1f}s ({live.rate:,.0f} claims/s; reading {live.read_seconds:.1f}s; {live.workers} "
              "worker processes); difference per fund: "
              f"{diffs}; {r.changed_claims} claims change; {r.in_flight} in flight; {load()}", flush=True)

        candidate = load_profile("demo-county", operator_overrides(None, CANDIDATE))
        run = await run_what_if(source, candidate, YEAR)
        c = run.report
        print(f"what-if under a candidate ({', '.join(CANDIDATE)}): {c.claims:,} claims in {run.seconds:.1f}s "
              f"({run.rate:,.0f} claims/s); funds {c.overall.actual.funds:,.2f} -> {c.overall.candidate.funds:,.2f}; "
              f"{c.changed_claims:,} claims change; {load()}", flush=True)
        if solve_too:
            await time_solve(source)
        if keep or reuse:
            print(f"kept: --reuse {prefix}")
    finally:
        await ns.close(procs, drop=not keep and not reuse)


async def time_solve(source: Source) -> None:
    """`--solve catastrophic.threshold --target compensation=<the live ratio + 1 point>`, as the command runs it."""
    profile = load_profile("demo-county")
    t0 = time.perf_counter()
    shards, stats = await load_shards(source, profile, YEAR)
    try:
        first = shards.run(profile, "basic").overall.candidate.compensation_ratio
        assert first is not None
        target = first + Decimal("0.01")
        layer = layer_of_parameter(["catastrophic", "threshold"])

        def at(value: Decimal) -> Decimal | None:
            p = load_profile("demo-county", [{"catastrophic": {"threshold": value}}])
            return shards.run(p, layer).overall.candidate.compensation_ratio

        sol = solve(at, parameter="catastrophic.threshold", ratio_name="compensation", target=target,
                    low=Decimal(0), high=Decimal(24_000), step=Decimal(1))
    finally:
        shards.close()
    print(f"solving catastrophic.threshold for compensation >= {target}: {sol.value} yuan after "
          f"{len(sol.iterations)} iterations in {time.perf_counter() - t0:.1f}s (reading {stats.seconds:.1f}s, "
          f"{stats.claims:,} claims each; basic results reused); {load()}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--discharges", type=int, default=200_000)
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--keep", action="store_true", help="leave the namespace for --reuse")
    ap.add_argument("--reuse", metavar="PREFIX", help="time the what-if on a namespace kept by --keep")
    ap.add_argument("--solve", action="store_true", help="also time solving the critical-illness threshold")
    a = ap.parse_args()
    asyncio.run(main(a.discharges, a.persons, a.seed, a.keep, a.reuse, a.solve))
