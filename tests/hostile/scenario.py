"""The hostile-input run, shared by `bench/hostile.py` and `tests/integration/test_hostile_input.py`.

In a namespace of its own on the broker and database (topic prefix, fresh databases), it starts
the five services as real OS processes, enrolls a small population and its hospitals (plus the
catalogue's own person and hospital), then publishes with a raw aiokafka producer every catalogue
case and N fuzzed records, with the valid discharges published in the middle through the hospital
CLI (`medsettle publish discharges FILE` with `TOPIC_PREFIX` set). It waits until every
consumer group (and settlement's registry projection) has nothing left, or until nothing moved
for `stall_s` seconds, watches the processes meanwhile (one that exits is counted and started
again), measures the growth of their logs, and accounts for every hostile record.

`Report.failures()` lists every acceptance point that failed; `Report.summary()` is one line.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.topics import (
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    PERSONS,
    PROVIDERS,
    REFUSALS,
    STATEMENTS,
    TOPICS,
    hospital_requests_topic,
)
from runtime.kafka_access import KafkaAccess
from tests.hostile.accounting import Published, Tally, gather, tally
from tests.hostile.catalogue import REGISTRY, Case, catalogue, record_size
from tests.hostile.fuzz import Fuzzed, fuzz
from tests.hostile.world import fuzz_bases
from tests.integration.harness import Namespace, ServiceProcess, group_lags, new_namespace
from tests.integration.platform import person_id
from tools.generate import generate_discharges, generate_population, write_discharges
from tools.hospital.publish import prepare_command, publish

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("enrollment", "intake", "settlement", "catastrophic", "assistance", "audit")
INPUTS: tuple[tuple[str, str], ...] = (
    ("enrollment", ENROLLMENT_COMMANDS), ("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED),
    ("assistance", CATASTROPHIC_SETTLED), ("intake", STATEMENTS), ("intake", REFUSALS),
    *(("audit", t.name) for t in TOPICS))
"""Every (service, input topic) consumer group of the platform but the intake's on hospitals' topics."""


def inputs_with(hospitals: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`INPUTS` and the intake on these hospitals' requests topics."""
    return INPUTS + tuple(("intake", hospital_requests_topic(h)) for h in hospitals)

LOG_BYTES_PER_RECORD = 2048
"""Log growth bound while input arrives, on average per record published: a line or two per bad record.
Measured on this code: about 80 B per valid discharge when nothing is wrong; 3,700-44,000 B with
consumers stuck redelivering a record they cannot decode."""
LOG_BYTES_PER_S_IDLE = 2048
"""Log growth bound once input stopped and the consumers are drained (or stuck). Measured on this
code: 0 B/s when drained; 186,000-720,000 B/s with consumers stuck redelivering."""

Say = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    fuzz: int = 300
    seed: int = 1
    valid: int = 200
    persons: int = 60
    providers: int = 6
    stall_s: float = 60.0
    """stop waiting for the consumers when their total lag has not changed for this long"""
    timeout_s: float = 1800.0
    quiet_s: float = 10.0
    """how long log growth is measured after input stopped and the consumers drained"""
    cases: str | None = None
    """only the catalogue cases whose `<topic>/<name>` matches this regular expression"""


@dataclass
class Report:
    options: Options
    valid_statements: dict[str, int] = field(repr=False)
    """valid claim id → distinct statements (by event id) the assistance service published"""
    tally: Tally = field(repr=False)
    lag: dict[tuple[str, str], int]
    projection_lag: int
    exits: list[tuple[str, int]]
    restarts: int
    log_bytes_during: int
    seconds_during: float
    log_bytes_after: int
    seconds_after: float
    published: int
    unsent: list[str] = field(default_factory=list)
    drained: bool = False

    @property
    def one_statement(self) -> int:
        return sum(1 for n in self.valid_statements.values() if n == 1)

    @property
    def lagging(self) -> dict[tuple[str, str], int]:
        return {pair: n for pair, n in self.lag.items() if n}

    @property
    def rate_during(self) -> float:
        return self.log_bytes_during / max(self.seconds_during, 1e-9)

    @property
    def rate_after(self) -> float:
        return self.log_bytes_after / max(self.seconds_after, 1e-9)

    def failures(self) -> list[str]:
        out = []
        if self.one_statement != len(self.valid_statements):
            out.append(f"valid discharges with exactly one statement {self.one_statement}/{len(self.valid_statements)}")
        unaccounted = self.tally.unaccounted()
        if unaccounted:
            out.append(f"{len(unaccounted)} hostile records unaccounted")
        if self.tally.twice:
            out.append(f"{len(self.tally.twice)} hostile records dead-lettered more than once")
        cases = self.tally.case_failures()
        if cases:
            out.append(f"{len(cases)} catalogue cases not as specified")
        if self.lagging or self.projection_lag:
            out.append(f"{len(self.lagging)} consumer groups with lag, projection lag {self.projection_lag}")
        if self.exits:
            out.append(f"{len(self.exits)} service process exits")
        if self.log_bytes_during > LOG_BYTES_PER_RECORD * max(self.published, 1):
            out.append(f"log growth during the run {self.log_bytes_during:,} B > {LOG_BYTES_PER_RECORD} B per record")
        if self.rate_after > LOG_BYTES_PER_S_IDLE:
            out.append(f"log growth after input stopped {self.rate_after:,.0f} B/s > {LOG_BYTES_PER_S_IDLE} B/s")
        if self.unsent:
            out.append(f"{len(self.unsent)} hostile records the broker refused")
        return out

    def summary(self) -> str:
        verdict = "PASS" if not self.failures() else "FAIL"
        exited = ", ".join(sorted({name for name, _ in self.exits}))
        return (f"hostile input: valid discharges with exactly one statement {self.one_statement}/"
                f"{len(self.valid_statements)}; {self.tally.line()}; consumer groups with lag "
                f"{len(self.lagging)}/{len(self.lag)} (registry projection lag {self.projection_lag}); "
                f"service processes exited {len(self.exits)}{f' ({exited})' if exited else ''}, restarted "
                f"{self.restarts}; log growth {self.rate_during:,.0f} B/s during the run "
                f"({self.log_bytes_during / max(self.published, 1):,.0f} B per record), {self.rate_after:,.0f} B/s "
                f"after input stopped; {verdict}")

    def details(self, limit: int = 40) -> list[str]:
        """Why it failed, one line each: every catalogue case, up to `limit` fuzzed records."""
        lines = [f"failed: {f}" for f in self.failures()]
        for rec, _, problem in self.tally.case_failures():
            lines.append(f"case {rec.label}: {problem}")
        fuzzed = [(rec, v) for rec, v in self.tally.unaccounted() if rec.case is None]
        for rec, v in fuzzed[:limit]:
            lines.append(f"unaccounted {rec.label} (partition {rec.partition}, offset {rec.offset}): {v.detail}")
        if len(fuzzed) > limit:
            lines.append(f"... and {len(fuzzed) - limit} more unaccounted fuzzed records")
        for (service, topic), n in sorted(self.lagging.items()):
            lines.append(f"lag {service} on {topic}: {n}")
        lines += [f"exited: {name} with code {code}" for name, code in self.exits]
        lines += [f"refused by the broker: {label}" for label in self.unsent[:limit]]
        return lines


# ------------------------------------------------------------------ pieces of the run


@dataclass(frozen=True)
class _Record:
    label: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    compress: bool
    event_id: str | None
    claim_id: str | None
    case: Case | None = None


def _from_case(c: Case) -> _Record:
    return _Record(f"catalogue:{c.id}", c.topic, c.key, c.value, c.headers, c.compress, c.event_id, c.claim_id, c)


def _from_fuzz(f: Fuzzed) -> _Record:
    return _Record(f"fuzz:{f.index}:{'+'.join(f.mutations)}:{f.topic}", f.topic, f.key, f.value, f.headers, False,
                   f.event_id, f.claim_id)


class RawPublisher:
    """What a buggy client would use: a plain aiokafka producer, big enough for the 1 MB cases."""

    BIG = 256 * 1024

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.published: list[Published] = []
        self.unsent: list[str] = []

    async def __aenter__(self) -> Self:
        # not idempotent: a batch the broker refuses must not poison the sequence of the ones after it
        common: dict[str, Any] = {**self.ns.kafka.options(), "max_request_size": 8 * 1024 * 1024,
                                  "acks": "all", "enable_idempotence": False, "linger_ms": 5}
        self.plain = AIOKafkaProducer(**common)
        self.gzip = AIOKafkaProducer(compression_type="gzip", **common)
        await self.plain.start()
        await self.gzip.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.plain.stop()
        await self.gzip.stop()

    async def send(self, records: Sequence[_Record]) -> None:
        pending: list[tuple[_Record, asyncio.Future[Any]]] = []
        for rec in records:
            producer = self.gzip if rec.compress else self.plain
            topic = self.ns.topic(rec.topic)
            headers = list(rec.headers)
            if record_size(rec.key, rec.value, rec.headers) > self.BIG:  # alone in its batch
                await self._settle(pending)
                pending = []
                pending.append((rec, await producer.send(topic, rec.value, key=rec.key, headers=headers)))
                await self._settle(pending)
                pending = []
            else:
                pending.append((rec, await producer.send(topic, rec.value, key=rec.key, headers=headers)))
        await self._settle(pending)

    async def _settle(self, pending: list[tuple[_Record, asyncio.Future[Any]]]) -> None:
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        for (rec, _), md in zip(pending, results, strict=True):
            if isinstance(md, BaseException):
                self.unsent.append(f"{rec.label}: {type(md).__name__}")
                continue
            self.published.append(Published(rec.label, rec.topic, md.partition, md.offset, rec.key, rec.value,
                                            rec.event_id, rec.claim_id, rec.case))


class Supervisor:
    """The services as processes in a namespace, watched: one that exits is recorded and started
    again. `async with Supervisor(ns, names, say) as services:` starts them; leaving stops them."""

    def __init__(self, ns: Namespace, names: Sequence[str], say: Say) -> None:
        self.procs = {name: ServiceProcess(ns, name) for name in names}
        self.say = say
        self.exits: list[tuple[str, int]] = []
        self._task: asyncio.Task[Any] | None = None

    async def _watch(self) -> None:
        while True:
            for name, p in self.procs.items():
                if p.proc is not None and not p.alive:
                    self.exits.append((name, p.proc.returncode))
                    self.say(f"service {name} exited with code {p.proc.returncode}; starting it again")
                    p.start()
            await asyncio.sleep(0.5)

    async def __aenter__(self) -> Self:
        try:
            for p in self.procs.values():
                p.start()
        except BaseException:
            self._stop()
            raise
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        for p in self.procs.values():
            p.stop()

    def log_bytes(self) -> dict[str, int]:
        return {n: p.log_bytes() for n, p in self.procs.items()}


async def projection_lag(ns: Namespace) -> int:
    """Registry records settlement's projections have not applied yet."""
    consumer = AIOKafkaConsumer(**ns.kafka.options(), group_id=None)
    await consumer.start()
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in (PERSONS, PROVIDERS):
            parts = [TopicPartition(ns.topic(topic), p) for p in sorted(consumer.partitions_for_topic(ns.topic(topic))
                                                                           or ())]
            if not parts:
                await consumer._client.force_metadata_update()
                parts = [TopicPartition(ns.topic(topic), p)
                         for p in sorted(consumer.partitions_for_topic(ns.topic(topic)) or ())]
            for tp, end in (await consumer.end_offsets(parts)).items():
                ends[(tp.topic, tp.partition)] = end
    finally:
        await consumer.stop()
    try:
        conn = await ns.connect("settlement")
        try:
            rows = await conn.fetch("SELECT topic, partition, next_offset FROM projection_position")
        finally:
            await conn.close()
    except (asyncpg.PostgresError, OSError):
        rows = []
    done = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
    return sum(max(end - done.get(tp, 0), 0) for tp, end in ends.items())


async def wait_quiet(ns: Namespace, opts: Options, say: Say, inputs: Sequence[tuple[str, str]] = INPUTS
                     ) -> tuple[dict[tuple[str, str], int], int, bool]:
    """Until every group and the projection have nothing left (True), or nothing moved for `stall_s`."""
    deadline = time.monotonic() + opts.timeout_s
    last, moved = -1, time.monotonic()
    while True:
        lag = await group_lags(ns, inputs)
        plag = await projection_lag(ns)
        total = sum(lag.values()) + plag
        if total == 0:
            return lag, plag, True
        now = time.monotonic()
        if total != last:
            last, moved = total, now
        elif now - moved > opts.stall_s or now > deadline:
            say(f"giving up: {total} records still unprocessed, nothing moved for {now - moved:.0f}s")
            return lag, plag, False
        await asyncio.sleep(1.0)


async def _run_cli(ns: Namespace, *args: str) -> None:
    env = {**os.environ, **({} if ns.kafka.secured else ns.kafka.env()), "KAFKA_BOOTSTRAP_SERVERS": ns.bootstrap,
           "TOPIC_PREFIX": ns.prefix}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tools", "publish", *args, "--no-progress",
                                                cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"medsettle publish {' '.join(args[:1])} failed: {out.decode()[-2000:]}")


async def register_population(ns: Namespace, commands: Sequence[object], persons: int, providers: int) -> None:
    """Publish the commands as an operator does and wait until enrollment published every snapshot."""
    prepared = [prepare_command({"event_type": type(c).__name__, "payload": c.model_dump(mode="json")})  # type: ignore[attr-defined]
                for c in commands]
    await publish(prepared, ns.kafka, progress=False, prefix=ns.prefix)
    await ns.read(PERSONS, until=lambda rs: len(rs) >= persons, timeout=180)
    await ns.read(PROVIDERS, until=lambda rs: len(rs) >= providers, timeout=60)


# ------------------------------------------------------------------ the run


async def run(kafka: KafkaAccess, server_url: str, opts: Options, say: Say = _stderr,
              services: Sequence[str] = SERVICES,
              inspect: Callable[[Namespace, Report], Awaitable[None]] | None = None) -> Report:
    """The whole hostile-input run in a fresh namespace, removed afterwards.

    `inspect(ns, report)` is awaited before the namespace is removed (tests look at the databases)."""
    ns = await new_namespace(kafka, server_url)
    say(f"namespace {ns.prefix} on {kafka.bootstrap_servers}; services as processes: {', '.join(services)}")
    try:
        async with Supervisor(ns, services, say) as supervisor:
            providers, persons = generate_population(opts.persons, opts.providers, seed=opts.seed, year=2026)
            registry_persons = sum(1 for c in REGISTRY if hasattr(c, "person_id"))
            await register_population(ns, [*providers, *persons, *REGISTRY], len(persons) + registry_persons,
                                      len(providers) + len(REGISTRY) - registry_persons)
            say(f"enrolled {len(persons)} persons and {len(providers)} hospitals")
            hospitals = [p.provider_id for p in providers]
            await ns.hospital_topics(*hospitals)

            valid = generate_discharges(opts.valid, seed=opts.seed, year=2026, providers=providers, persons=persons)
            bases = fuzz_bases(persons, providers, generate_discharges(20, seed=opts.seed + 1000, year=2026,
                                                                       providers=providers, persons=persons),
                               [person_id(600 + i) for i in range(10)])
            cases = [_from_case(c) for c in catalogue() if opts.cases is None or re.search(opts.cases, c.id)]
            fuzzed = [_from_fuzz(f) for f in fuzz(bases, opts.fuzz, opts.seed)]
            half = len(fuzzed) // 2

            before = supervisor.log_bytes()
            t0 = time.monotonic()
            with tempfile.TemporaryDirectory() as tmp:
                bills = Path(tmp) / "bills.jsonl"
                write_discharges(bills, valid)
                async with RawPublisher(ns) as raw:
                    await raw.send(cases + fuzzed[:half])
                    say(f"published {len(cases)} catalogue cases and {half} fuzzed records")
                    await _run_cli(ns, "discharges", str(bills))
                    say(f"published {len(valid)} valid discharges with the hospital CLI")
                    await raw.send(fuzzed[half:])
                    say(f"published {len(fuzzed) - half} more fuzzed records")
            lag, plag, drained = await wait_quiet(ns, opts, say, inputs_with(hospitals))
            t1 = time.monotonic()
            during = supervisor.log_bytes()
            await asyncio.sleep(opts.quiet_s)
            after = supervisor.log_bytes()
            t2 = time.monotonic()
            exits = list(supervisor.exits)

        evidence = await gather(kafka, ns.prefix, ns.settings("audit").dsn, raw.published)
        report = Report(
            options=opts,
            valid_statements={d.claim_id: len({e for e, _ in evidence.statements.get(d.claim_id, ())}) for d in valid},
            tally=tally(raw.published, evidence), lag=lag, projection_lag=plag, exits=exits, restarts=len(exits),
            log_bytes_during=sum(during[n] - before[n] for n in services), seconds_during=t1 - t0,
            log_bytes_after=sum(after[n] - during[n] for n in services), seconds_after=t2 - t1,
            published=len(raw.published) + len(valid), unsent=raw.unsent, drained=drained)
        if inspect is not None:
            await inspect(ns, report)
        return report
    finally:
        await ns.drop_databases()
