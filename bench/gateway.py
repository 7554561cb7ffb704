"""Latency of the hospital gateway from request to statement, at a steady rate of discharges.

    .venv/bin/python bench/gateway.py [--rate 200] [--seconds 45] [--persons 20000] [--hospitals 20]

Runs the whole platform as processes (enrollment, intake, settlement, catastrophic, assistance,
gateway; each its own principal and role) in a fresh namespace on the local stack, as
bench/pipeline.py does; issues the hospitals' credentials, enrolls a generated population, signs
every hospital in once, then sends discharges over HTTP (keep-alive) at `--rate` a
second for `--seconds` (aiohttp, see `drive`), open loop (each request leaves at its scheduled time, whatever the
earlier ones do), each `POST /v1/discharges?wait=10` as its hospital. It prints p50, p99 and max
from sending a request to receiving its statement (HTTP 200 with the statement), the rate
achieved, and what did not come back within the wait (202) or failed. Cleans up its namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.namespace import BenchNamespace  # noqa: E402
from bench.profiling import start_profile, stop_profile  # noqa: E402
from contracts.topics import ENROLLMENT_COMMANDS  # noqa: E402
from runtime.health import read_endpoint  # noqa: E402
from tools.generate import generate_discharges, generate_population  # noqa: E402
from tools.hospital.publish import prepare_command, publish  # noqa: E402
from tools.operator.hospitals import issue_many  # noqa: E402
from tools.stack.common import cpu_seconds, process_group_cpu_seconds  # noqa: E402
from tools.stack.lag import wait_drained  # noqa: E402
from tools.stack.principals import hospital_user  # noqa: E402

SERVICES = ("enrollment", "intake", "settlement", "catastrophic", "assistance", "gateway")
API_FILE = Path("/tmp/bench-gateway.api.json")
WAIT_S = float(os.environ.get("BENCH_WAIT_S", "10"))
CONNECTIONS = 512


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def wait_for_api(timeout: float = 120) -> str:
    """The gateway's URL once it listens and is ready."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                url = (read_endpoint(API_FILE) or {})["url"]
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return str(url)
            except (KeyError, httpx.HTTPError):
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("the gateway did not become ready")


async def drive(url: str, requests: list[tuple[bytes, str]], rate: float
                ) -> tuple[list[float], dict[str, int], float]:
    """Send each request at its scheduled time (open loop) and time it until its answer.

    aiohttp (its HTTP parser in C) with one connection pool: the load generator runs on the same 2
    cores as the platform, so its own CPU per request matters (httpx cost about 4 ms a request
    here, a fifth of all the CPU a discharge took). The bodies are JSON encoded beforehand, as a
    hospital's system has its bill ready; each request carries its hospital's Basic credentials."""
    latencies: list[float] = []
    accepted: list[float] = []
    outcomes: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, limit_per_host=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=WAIT_S + 20)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout) as client:

        async def one(body: bytes, authorization: str) -> None:
            t0 = time.perf_counter()
            try:
                async with client.post("/v1/discharges", data=body, params={"wait": str(WAIT_S)},
                                       headers={"Authorization": authorization,
                                                "Content-Type": "application/json"}) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
                return
            if status == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                accepted.append(time.perf_counter() - t0)
            outcomes[str(status)] = outcomes.get(str(status), 0) + 1

        start = time.perf_counter()
        tasks = []
        for i, (body, authorization) in enumerate(requests):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, authorization)))
        sent = time.perf_counter() - start
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    if accepted:
        print(f"answered without the statement: p50 {statistics.median(accepted) * 1000:.0f} ms, max "
              f"{max(accepted) * 1000:.0f} ms")
    print(f"sent {len(requests):,} requests in {sent:.1f}s ({len(requests) / sent:,.1f}/s offered); all answered "
          f"after {elapsed:.1f}s")
    return latencies, outcomes, elapsed


def servers_cpu() -> dict[str, float]:
    """CPU so far of what is not the platform's Python: the broker, PostgreSQL's backends, and this
    process (the load generator)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {"kafka": process_group_cpu_seconds("java"), "postgres": process_group_cpu_seconds("postgres"),
            "load generator": me.ru_utime + me.ru_stime}


async def main(rate: float, seconds: float, persons: int, hospitals: int, profile: tuple[str, ...] = ()) -> None:
    ns = await BenchNamespace.open("b", SERVICES)
    admin, prefix = ns.admin, ns.prefix
    generated, people = generate_population(persons, hospitals, seed=7, year=2026)
    # hospitals of this run only: a hospital's broker user (hospital-<id>) is not namespaced, and the
    # generator's ids are the demo's (issuing them would rotate, and closing delete, real users)
    providers = [p.model_copy(update={"provider_id": f"B{prefix[1:9]}{i:03d}"}) for i, p in enumerate(generated)]
    credentials = {c.hospital_id: c for c in await issue_many(admin, [p.provider_id for p in providers], prefix)}
    API_FILE.unlink(missing_ok=True)  # noqa: ASYNC240 - once, before anything runs
    procs = ns.start(SERVICES, "/tmp/bench-{name}.log", {
        "GATEWAY_PORT": "0", "GATEWAY_PORT_FILE": str(API_FILE),
        "BATCH_TIMEOUT_MS": os.environ.get("BENCH_BATCH_TIMEOUT_MS", "20")})
    try:
        commands = [prepare_command({"event_type": type(c).__name__, "payload": c.model_dump(mode="json")})
                    for c in [*providers, *people]]
        await publish(commands, admin, progress=False, prefix=prefix)
        await wait_drained(admin, [(f"{prefix}medsettle.enrollment.{ENROLLMENT_COMMANDS}",
                                    prefix + ENROLLMENT_COMMANDS)], timeout=900)
        url = await wait_for_api()
        auths = {h: (c.access.username or "", c.access.password.get_secret_value() if c.access.password else "")
                 for h, c in credentials.items()}
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:  # every hospital signs in once
            for auth in auths.values():
                assert (await client.get("/v1/statements", auth=auth)).status_code == 200
        n = round(rate * seconds)
        stream = generate_discharges(n, seed=7, year=2026, providers=providers, persons=people)
        basic = {h: aiohttp.BasicAuth(user, password).encode() for h, (user, password) in auths.items()}
        requests = [(d.model_dump_json().encode(), basic[d.hospital_id]) for d in stream]
        cpu_before = {name: cpu_seconds(p.pid) or 0.0 for name, p in zip(SERVICES, procs, strict=True)}
        servers_before = servers_cpu()
        spies = [start_profile(name, dict(zip(SERVICES, procs, strict=True))) for name in profile]
        latencies, outcomes, elapsed = await drive(url, requests, rate)
        cpu = {name: (cpu_seconds(p.pid) or 0.0) - cpu_before[name] for name, p in zip(SERVICES, procs, strict=True)}
        servers = {name: v - servers_before[name] for name, v in servers_cpu().items()}
        for spy in spies:
            stop_profile(spy)
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end; "
              f"{persons:,} persons, {hospitals} hospitals; rate {rate:g}/s for "
              f"{seconds:g}s; wait={WAIT_S}s")
        print(f"answers: {dict(sorted(outcomes.items()))}")
        if latencies:
            print(f"request → statement: p50 {statistics.median(latencies) * 1000:.0f} ms, p99 "
                  f"{percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
                  f"({len(latencies):,} statements)")
            print(f"achieved: {len(latencies) / elapsed:,.1f} statements/s over {elapsed:.1f}s")
        print("CPU during the run (user+system): " + ", ".join(f"{k} {v:.1f}s" for k, v in cpu.items()))
        print("  and of the rest: " + ", ".join(f"{k} {v:.1f}s" for k, v in servers.items()))
        print(f"  per discharge: services {sum(cpu.values()) / n * 1000:.2f} ms, all "
              f"{(sum(cpu.values()) + sum(servers.values())) / n * 1000:.2f} ms")
    finally:
        keep = bool(os.environ.get("BENCH_KEEP"))  # look at the namespace's databases afterwards (drop them yourself)
        await ns.close(procs, drop=not keep, timeout=30, users=[hospital_user(h) for h in credentials])
        if keep:
            print(f"kept namespace {prefix}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=45)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--hospitals", type=int, default=20)
    ap.add_argument("--profile", action="append", choices=SERVICES, default=[],
                    help="sample this service with py-spy while the requests pass (repeatable)")
    args = ap.parse_args()
    asyncio.run(main(args.rate, args.seconds, args.persons, args.hospitals, tuple(args.profile)))
