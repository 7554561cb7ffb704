"""A broker dies in the middle of a steady stream: how long settlement pauses, and is every discharge
still settled exactly once?

    .venv/bin/medsettle stack start --brokers 3
    .venv/bin/python bench/broker_kill.py [--discharges 3000] [--rate 100] [--persons 3000] [--restart-after 20]

Needs the three-broker stack (`stack start --brokers 3`: replication factor 3, min.insync.replicas
2). Runs enrollment, settlement, catastrophic and assistance as processes in a fresh namespace
(`bench/namespace.py`), enrolls a generated population, then publishes the discharges straight to
`claims.discharges` at a steady rate (`--rate` per second, in 10 slices a second). Half-way through
the stream it kills (SIGKILL) the broker that leads most of the namespace's partitions and, after
`--restart-after` seconds (0: never), starts it again. When everything has settled it reads the
namespace's `claims.statements` from the beginning and prints:

- the longest gap between two consecutive statements (their record timestamps) after the kill: how
  long settlement paused;
- the time from the kill until statements flow again (the end of that gap), and from the last
  discharge published until every discharge is settled (the assistance ledger has them all);
- statements per discharge: records, distinct event ids, distinct claim ids against the discharges.

Exit 1 if a discharge has no statement or a statement is there twice (a record repeated, an event
id or a claim id seen twice), or if not everything settled within `--timeout`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.namespace import BenchNamespace  # noqa: E402
from contracts.topics import ALL_TOPICS, STATEMENTS  # noqa: E402
from runtime.kafka_access import KafkaAccess  # noqa: E402
from tools.generate import generate_discharges, generate_population  # noqa: E402
from tools.hospital.publish import Prepared, direct, prepare_discharge, publish  # noqa: E402
from tools.stack import kafka  # noqa: E402
from tools.stack.common import paths, read_state  # noqa: E402

TOPICS_BY_NAME = {t.name: t for t in ALL_TOPICS}
SERVICES = ("enrollment", "settlement", "catastrophic", "assistance")


async def leaders(admin: KafkaAccess, prefix: str) -> Counter[int]:
    """How many of the namespace's partitions each broker leads."""
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(**admin.options())
    await client.start()
    try:
        topics = [t for t in await client.list_topics() if t.startswith(prefix)]
        described = await client.describe_topics(topics)
        return Counter(p["leader"] for t in described for p in t["partitions"] if p["leader"] >= 0)
    finally:
        await client.close()


async def paced_publish(messages: list[Prepared], admin: KafkaAccess, prefix: str, rate: float,
                        at_half: asyncio.Event) -> float:
    """Publish `messages` at `rate` per second (10 slices a second); sets `at_half` half-way.
    Returns the wall time (time.time()) of the last acknowledgement."""
    step = max(1, round(rate / 10))
    t0 = time.monotonic()
    for i in range(0, len(messages), step):
        if i >= len(messages) // 2:
            at_half.set()
        await publish(messages[i:i + step], admin, progress=False, prefix=prefix)
        delay = t0 + (i + step) / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    return time.time()


async def read_statements(admin: KafkaAccess, topic: str, partitions: int) -> list[tuple[float, str, str, str]]:
    """(timestamp s, event type, event id, claim id) of every record on `topic`, from the beginning."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**admin.options(), enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(topic, i) for i in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        out: list[tuple[float, str, str, str]] = []
        while True:
            positions = [await consumer.position(tp) for tp in parts]
            if all(pos >= end[tp] for pos, tp in zip(positions, parts, strict=True)):
                return out
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for r in records:
                    v = json.loads(r.value)
                    out.append((r.timestamp / 1000, v["event_type"], v["event_id"],
                                str((v.get("payload") or {}).get("claim_id"))))
    finally:
        await consumer.stop()


async def main(n: int, rate: float, persons: int, restart_after: float, timeout: float) -> int:
    p = paths()
    k = read_state(p).get("kafka") or {}
    if int(k.get("brokers") or 1) != 3:
        print("needs the three-broker stack: .venv/bin/medsettle stack start --brokers 3", file=sys.stderr)
        return 2
    ns = await BenchNamespace.open("k", SERVICES)
    admin, prefix = ns.admin, ns.prefix
    procs = ns.start(SERVICES, "/tmp/bench-kill-{name}.log")
    killed: int | None = None
    try:
        providers, people = generate_population(persons, 50, seed=7, year=2026)
        stream = generate_discharges(n, seed=7, year=2026, providers=providers, persons=people)
        t_enroll = await ns.enroll(providers, people, timeout=900)
        messages = [direct(prepare_discharge(d.model_dump(mode="json"))) for d in stream]
        claim_ids = {str(d.claim_id) for d in stream}
        at_half = asyncio.Event()
        publisher = asyncio.create_task(paced_publish(messages, admin, prefix, rate, at_half))
        await at_half.wait()
        led = await leaders(admin, prefix)
        victim = led.most_common(1)[0][0]
        node = kafka.nodes(p, 3)[victim - 1]
        pid = kafka.node_pid(p, node)
        assert pid is not None, f"node {victim} is not running"
        t_kill = time.time()
        os.kill(pid, signal.SIGKILL)
        killed = victim
        print(f"killed broker {victim} (pid {pid}, leader of {led[victim]} of the namespace's "
              f"{sum(led.values())} partitions) with SIGKILL at discharge {n // 2:,}")
        t_restart = None
        if restart_after > 0:
            await asyncio.sleep(restart_after)
            kafka.restart_node(p, victim)
            t_restart = time.time()
            killed = None
            print(f"restarted broker {victim} {t_restart - t_kill:.1f}s after the kill")
        t_last_publish = await publisher
        deadline = time.monotonic() + timeout
        conn = await ns.connect("assistance")
        try:
            while (done := await conn.fetchval("SELECT count(*) FROM ledger")) < n:
                if time.monotonic() > deadline:
                    print(f"FAILED: only {done:,} of {n:,} settled within {timeout:.0f}s")
                    return 1
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
        t_settled = time.time()
        await asyncio.sleep(2)  # the last statements' outbox
        records = await read_statements(admin, prefix + STATEMENTS, TOPICS_BY_NAME[STATEMENTS].partitions)
    finally:
        if killed is not None:  # never leave the stack with a node down
            kafka.restart_node(p, killed)
        await ns.close(procs, timeout=30)

    statements = sorted(r for r in records if r[1] == "SettlementStatement")
    times = [r[0] for r in statements]
    after = [t for t in times if t >= t_kill]
    before = [t for t in times if t < t_kill]
    gaps = [(b - a, a, b) for a, b in zip(([before[-1]] if before else []) + after[:-1], after, strict=True)]
    gap, gap_start, gap_end = max(gaps) if gaps else (0.0, t_kill, t_kill)
    events = Counter(r[2] for r in statements)
    claims = Counter(r[3] for r in statements)
    dup_events = sum(c - 1 for c in events.values() if c > 1)
    dup_claims = sum(c - 1 for c in claims.values() if c > 1)
    missing = len(claim_ids - set(claims))
    unknown = len(set(claims) - claim_ids)
    steady = len(before) / (before[-1] - before[0]) if len(before) > 1 else float("nan")
    print(f"machine: {os.cpu_count()} cores; 3 brokers (replication factor 3, min.insync.replicas 2); "
          f"{persons:,} persons enrolled in {t_enroll:.1f}s")
    print(f"{n:,} discharges published at {rate:,.0f}/s; statements before the kill at {steady:,.0f}/s")
    print(f"settlement paused: longest gap between statements {gap:.2f}s "
          f"(from {gap_start - t_kill:+.2f}s to {gap_end - t_kill:+.2f}s around the kill)")
    print(f"recovered: statements flowed again {gap_end - t_kill:.2f}s after the kill; every discharge settled "
          f"{t_settled - t_last_publish:.2f}s after the last was published"
          + (f" (broker restarted at +{t_restart - t_kill:.1f}s)" if t_restart else " (broker left down)"))
    ok = len(statements) == n and len(events) == n and dup_events == 0 and dup_claims == 0 and missing == 0 \
        and unknown == 0
    print(f"statements: {len(statements):,} records, {len(events):,} distinct event ids, {len(claims):,} distinct "
          f"claims for {n:,} discharges; duplicates {dup_events} (event id) / {dup_claims} (claim), missing "
          f"{missing}, unknown {unknown}: {'exactly one per discharge' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--discharges", type=int, default=3_000)
    ap.add_argument("--rate", type=float, default=100.0, help="discharges per second")
    ap.add_argument("--persons", type=int, default=3_000)
    ap.add_argument("--restart-after", type=float, default=20.0, help="seconds after the kill; 0: leave it down")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for everything to settle")
    args = ap.parse_args()
    sys.exit(asyncio.run(main(args.discharges, args.rate, args.persons, args.restart_after, args.timeout)))
