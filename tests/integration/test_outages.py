"""Outages of the infrastructure: with the five services running as processes and discharges
being published, PostgreSQL is stopped for 30 s and started again, then the Kafka broker. The
services must pause and retry with back-off, never dead-letter, and resume by themselves: every
discharge ends with exactly one statement, no process exits, and their logs stay small during
the outage (a few lines of back-off, not an error per retry).

This stops and starts the local stack of this checkout (`tools.stack`), so it runs only when the
session's broker and database are that stack; it is skipped when `KAFKA_BOOTSTRAP_SERVERS` /
`DATABASE_URL` point elsewhere or testcontainers are in use. The stack is started again in any
case, even when the test fails. `OUTAGE_S` changes the length of each outage (default 30).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts import decode_envelope, encode
from contracts.topics import STATEMENTS, TOPICS
from runtime.kafka_access import KafkaAccess
from tests.hostile.scenario import SERVICES, Supervisor, inputs_with, register_population
from tests.integration.harness import Namespace, ServiceProcess, new_namespace, wait_drained
from tools import stack
from tools.generate import generate_discharges, generate_population
from tools.hospital.publish import prepare_discharge
from tools.operator.dlt import list_letters

pytestmark = pytest.mark.integration

OUTAGE_S = float(os.environ.get("OUTAGE_S", "30"))
DISCHARGES_N = 1000
RATE_PER_S = 10.0
RESUME_S = 120.0
MAX_LINES_PER_OUTAGE = 100
"""Log lines a service may write while the database or the broker is down for OUTAGE_S. Measured
on this code before back-off and rate-limited logging (30 s outages, 10 discharges/s): PostgreSQL
down, 1,800-6,600 lines per service that had input (tracebacks of every retry); the broker down
(30 s plus 13 s to restart), 30,000-50,000 lines per service (the Kafka client's reconnect loop)."""


def _local_stack_or_skip(kafka_bootstrap: str, database_url: str) -> None:
    try:
        local = stack.connection_settings()
    except stack.StackError as exc:
        pytest.skip(f"no local stack to stop and start ({exc})")
    running = stack.is_running()
    if kafka_bootstrap != local["KAFKA_BOOTSTRAP_SERVERS"] or database_url != local["DATABASE_URL"]:
        pytest.skip("the broker and database are not this checkout's local stack (tools.stack): "
                    "KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point elsewhere or testcontainers are in use, "
                    "and an outage test must not stop someone else's infrastructure")
    if not all(running.values()):
        pytest.skip(f"the local stack is not fully running: {running}")


def _log_lines(p: ServiceProcess) -> int:
    try:
        with p.log.open("rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


@dataclass
class Stream:
    """Publishes the discharges at a steady rate, each until the broker acknowledged it."""

    ns: Namespace
    messages: list
    sent: int = 0
    retries: int = 0
    task: asyncio.Task | None = field(default=None, repr=False)

    async def _producer(self) -> AIOKafkaProducer | None:
        producer = AIOKafkaProducer(**self.ns.kafka.options(), acks="all", request_timeout_ms=10_000)
        try:
            await producer.start()
        except (KafkaError, OSError):
            await producer.stop()
            return None
        return producer

    async def _run(self) -> None:
        producer: AIOKafkaProducer | None = None
        try:
            for m in self.messages:
                started = time.monotonic()
                while True:  # the same bytes again until acknowledged: consumers dedupe by claim id
                    try:
                        producer = producer or await self._producer()
                        if producer is not None:
                            await producer.send_and_wait(self.ns.topic(m.topic), encode(m.envelope),
                                                         key=m.key.encode(),
                                                         headers=[("event_type", m.envelope.event_type.encode())])
                            break
                    except (TimeoutError, KafkaError):
                        if producer is not None:  # a new client after a failure: no state of the old broker session
                            await producer.stop()
                        producer = None
                    self.retries += 1
                    await asyncio.sleep(1.0)
                self.sent += 1
                await asyncio.sleep(max(0.0, 1 / RATE_PER_S - (time.monotonic() - started)))
        finally:
            if producer is not None:
                await producer.stop()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())


async def _statements(ns: Namespace, claims: set[str], timeout: float) -> dict[str, set[str]]:
    """Distinct statement event ids per claim, once every claim has one (or at the timeout)."""
    by_claim: dict[str, set[str]] = defaultdict(set)

    def until(records: list) -> bool:
        by_claim.clear()
        for r in records:
            env = decode_envelope(r.value)
            by_claim[env.payload["claim_id"]].add(str(env.event_id))
        return claims <= set(by_claim)

    with contextlib.suppress(AssertionError):  # timed out: what arrived is the answer
        await ns.read(STATEMENTS, until=until, timeout=timeout)
    return by_claim


async def _settled(ns: Namespace) -> int:
    conn = await ns.connect("assistance")
    try:
        return await conn.fetchval("SELECT count(*) FROM statement")
    finally:
        await conn.close()


async def _resumed(ns: Namespace, timeout: float) -> float | None:
    """Seconds until the assistance service stores new statements again (None: not within `timeout`)."""
    t0 = time.monotonic()
    before = None
    while time.monotonic() - t0 < timeout:
        try:
            n = await _settled(ns)
            if before is None:
                before = n
            elif n > before:
                return time.monotonic() - t0
        except (OSError, asyncpg.PostgresError):  # the database is still coming back
            pass
        await asyncio.sleep(1.0)
    return None


async def _outage(component: str, procs: dict[str, ServiceProcess], say) -> dict[str, int]:
    """Stop `component` of the local stack for OUTAGE_S and start it again; log lines written meanwhile."""
    kafka = component == "kafka"
    before = {n: _log_lines(p) for n, p in procs.items()}
    try:
        await asyncio.to_thread(stack.stop, kafka_enabled=kafka, postgres_enabled=not kafka, echo=say)
        await asyncio.sleep(OUTAGE_S)
    finally:
        await asyncio.to_thread(stack.start, kafka_enabled=kafka, postgres_enabled=not kafka, echo=say)
    return {n: _log_lines(p) - before[n] for n, p in procs.items()}


async def test_the_chain_rides_out_database_and_broker_outages(kafka_admin: KafkaAccess, database_url: str) -> None:
    _local_stack_or_skip(kafka_admin.bootstrap_servers, database_url)
    say = print
    ns = await new_namespace(kafka_admin, database_url)
    lines: dict[str, dict[str, int]] = {}
    resumed: dict[str, float | None] = {}
    stream: Stream | None = None
    try:
        async with Supervisor(ns, SERVICES, say) as services:
            providers, persons = generate_population(200, 10, seed=21, year=2026)
            await register_population(ns, [*providers, *persons], len(persons), len(providers))
            hospitals = [p.provider_id for p in providers]
            await ns.hospital_topics(*hospitals)
            stream_items = generate_discharges(DISCHARGES_N, seed=21, year=2026, providers=providers, persons=persons)
            stream = Stream(ns, [prepare_discharge(d.model_dump(mode="json")) for d in stream_items])
            stream.start()
            for component in ("postgres", "kafka"):
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:  # the chain is settling before each outage
                    if await _settled(ns) >= 50 * (1 + len(lines)):
                        break
                    await asyncio.sleep(0.5)
                say(f"stopping {component} for {OUTAGE_S:.0f}s with {stream.sent} discharges published")
                lines[component] = await _outage(component, services.procs, say)
                resumed[component] = await _resumed(ns, RESUME_S)
                say(f"{component} back; log lines during the outage {lines[component]}; statements again after "
                    f"{resumed[component]}s")
            recovered = all(v is not None for v in resumed.values())
            assert stream.task is not None
            with contextlib.suppress(TimeoutError):  # counted below: discharges never published have no statement
                await asyncio.wait_for(asyncio.shield(stream.task), timeout=DISCHARGES_N / RATE_PER_S + 180)
            claims = {d.claim_id for d in stream_items}
            statements = await _statements(ns, claims, timeout=300 if recovered else 30)
            try:
                await wait_drained(ns, inputs_with(hospitals), timeout=120 if recovered else 10)
                drained = True
            except TimeoutError:
                drained = False
            letters = {t.name: len(await list_letters(ns.kafka, ns.prefix, t.name)) for t in TOPICS}
            alive = {n: p.alive for n, p in services.procs.items()}
            exits = list(services.exits)
    finally:
        if stream is not None and stream.task is not None:
            stream.task.cancel()
        await asyncio.to_thread(stack.start, echo=say)  # whatever happened, the stack runs again
        await ns.drop_databases()

    problems = [f"no statement within {RESUME_S:.0f}s after {c} came back" for c, s in resumed.items() if s is None]
    if stream.sent < len(stream.messages):
        problems.append(f"the broker took only {stream.sent} of {len(stream.messages)} discharges")
    missing = sum(1 for c in claims if not statements.get(c))
    doubled = sum(1 for c in claims if len(statements.get(c, ())) > 1)
    if missing or doubled:
        problems.append(f"of {len(claims)} discharges {missing} without a statement, {doubled} with two or more")
    if not drained:
        problems.append("consumer groups still lag")
    dead = {t: n for t, n in letters.items() if n}
    if dead:
        problems.append(f"dead letters during outages: {dead}")
    if exits or not all(alive.values()):
        problems.append(f"service processes exited: {exits}")
    for component, per_service in lines.items():
        if any(k > MAX_LINES_PER_OUTAGE for k in per_service.values()):
            problems.append(f"{component} down {OUTAGE_S:.0f}s: log lines per service {per_service} "
                            f"(at most {MAX_LINES_PER_OUTAGE} each)")
    assert not problems, "\n".join(problems)
