"""Running services in-process against the real broker and database, each test in its own
namespace: topics carry a unique prefix and every service gets a fresh database."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from contracts import Contract, Envelope, decode, encode, make_envelope
from contracts.topics import BY_NAME, HOSPITAL_PRODUCER, subscription_of
from runtime.app import ServiceSpec, create_app
from runtime.settings import Settings, database_name, load_settings
from tools.stack import create_topics
from tools.stack.common import paths
from tools.stack.kafka import ensure_topics, hospital_topic_plan
from tools.stack.lag import lags
from tools.stack.lag import wait_drained as drained
from tools.stack.services import spawn


def owner_of(topic: str, payload: Contract) -> str:
    """The producer `topic`'s events name (`contracts.topics.TopicSpec.producers`)."""
    spec = BY_NAME.get(topic)
    if spec is None or not spec.producers:
        return "test"
    owner = spec.producers[0]
    return f"hospital:{getattr(payload, 'hospital_id', '')}" if owner == HOSPITAL_PRODUCER else owner


@dataclass
class Namespace:
    bootstrap: str
    server_url: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    databases: dict[str, str] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def settings(self, service: str, **overrides: Any) -> Settings:
        db = self.databases.setdefault(service, database_name(service, self.prefix))
        return load_settings(service, kafka_bootstrap_servers=self.bootstrap, database_url=self.server_url,
                             database_name=db, topic_prefix=self.prefix, batch_timeout_ms=50,
                             **{"health_port_setting": 0, **overrides})

    def env(self, service: str) -> dict[str, str]:
        """Environment for running `service` as a process in this namespace."""
        s = self.settings(service)
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.server_url,
                "DATABASE_NAME": s.database, "TOPIC_PREFIX": self.prefix, "BATCH_TIMEOUT_MS": "50"}

    async def hospital_topics(self, *hospital_ids: str) -> None:
        """Create these hospitals' requests and statements topics (what issuing their credentials does)."""
        await ensure_topics(self.bootstrap, prefix=self.prefix, plans=hospital_topic_plan(list(hospital_ids),
                                                                                          self.prefix))

    async def connect(self, service: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.settings(service).dsn)

    async def publish(self, topic: str, items: Iterable[tuple[str, Contract | Envelope[Any] | bytes]],
                      producer_name: str | None = None) -> list[Envelope[Any]]:
        """Publish to the namespace's `topic`; a bare payload is wrapped in an envelope from
        `producer_name`, by default the topic's owner (as the audit expects)."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, linger_ms=5)
        await producer.start()
        sent: list[Envelope[Any]] = []
        try:
            futures = []
            for key, item in items:
                if isinstance(item, bytes):
                    value = item
                else:
                    env = item if isinstance(item, Envelope) else make_envelope(
                        item, correlation_id=key, producer=producer_name or owner_of(topic, item))
                    sent.append(env)
                    value = encode(env)
                futures.append(await producer.send(self.topic(topic), value, key=key.encode()))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return sent

    async def read(self, topic: str, *, until: Callable[[list[ConsumerRecord]], bool], timeout: float = 60.0
                   ) -> list[ConsumerRecord]:
        """Read `topic` from the beginning until `until(records)` holds (or fail after `timeout`)."""
        consumer = AIOKafkaConsumer(self.topic(topic), bootstrap_servers=self.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        try:
            while not until(records):
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out reading {self.topic(topic)}: {len(records)} records so far")
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for rs in batch.values():
                    records.extend(rs)
        finally:
            await consumer.stop()
        return records

    async def read_for(self, topic: str, *, seconds: float) -> list[ConsumerRecord]:
        """Everything on `topic` from the beginning that arrives within `seconds` (to show that
        something did NOT arrive)."""
        consumer = AIOKafkaConsumer(self.topic(topic), bootstrap_servers=self.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                for rs in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                    records.extend(rs)
        finally:
            await consumer.stop()
        return records

    async def drop_databases(self) -> None:
        """Remove what the namespace made: its databases and its topics."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(self.prefix)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()
        conn = await asyncpg.connect(f"{self.server_url.rstrip('/')}/postgres")
        try:
            for db in self.databases.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await conn.close()


def payloads(records: Iterable[ConsumerRecord], *models: type[Contract]) -> list[Any]:
    return [decode(r.value, *models).payload for r in records]


@asynccontextmanager
async def running(spec: ServiceSpec, settings: Settings) -> AsyncIterator[Any]:
    """Start a service in-process; stop it gracefully on exit."""
    app, ctx = create_app(spec, settings)
    await app.start()
    try:
        yield ctx
    finally:
        await app.stop()


async def new_namespace(bootstrap: str, server_url: str) -> Namespace:
    ns = Namespace(bootstrap, server_url)
    await asyncio.to_thread(create_topics, bootstrap, 60.0, ns.prefix)
    return ns


class ServiceProcess:
    """A service as a real OS process in a namespace (for crash tests: SIGKILL, restart)."""

    def __init__(self, ns: Namespace, name: str) -> None:
        self.ns, self.name = ns, name
        self.proc: Any = None

    @property
    def log(self) -> Path:
        """Its rotated log (and `.out` beside it, its raw output), as for the services of tools.stack.services."""
        return paths().logs / f"test-{self.ns.prefix}{self.name}.log"

    @property
    def endpoint_file(self) -> Path:
        """Where it writes its health and metrics endpoint (`runtime.health`) once it listens."""
        return self.log.with_suffix(".health.json")

    def endpoint(self) -> str | None:
        """The URL of its health and metrics endpoint, once it listens."""
        from runtime.health import read_endpoint

        found = read_endpoint(self.endpoint_file)
        return found["url"] if found is not None and self.alive else None

    def start(self) -> None:
        self.endpoint_file.unlink(missing_ok=True)
        self.proc = spawn(self.name, {**self.ns.env(self.name), "HEALTH_PORT_FILE": str(self.endpoint_file)},
                          self.log, detach=False)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_bytes(self) -> int:
        """Bytes in the service's log files: its rotated log, the rotated copies and its raw output."""
        return sum(p.stat().st_size for p in self.log.parent.glob(self.log.stem + "*") if p.is_file())

    def kill(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a hung service is killed
                self.proc.kill()
                self.proc.wait()



def _groups(ns: Namespace, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(f"{ns.settings(service).consumer_group}.{subscription_of(topic)}", ns.topic(topic))
            for service, topic in pairs]


async def wait_drained(ns: Namespace, pairs: Iterable[tuple[str, str]], timeout: float = 300.0) -> None:
    """Wait until every (service, input topic) consumer group has committed everything published."""
    await drained(ns.bootstrap, _groups(ns, pairs), timeout)


async def group_lags(ns: Namespace, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """What each (service, input topic) consumer group has not committed yet."""
    pairs = list(pairs)
    lag = await lags(ns.bootstrap, _groups(ns, pairs))
    return {pair: lag[group] for pair, group in zip(pairs, _groups(ns, pairs), strict=True)}


async def reset_group_to_earliest(ns: Namespace, service: str, topic: str) -> None:
    """Rewind a (stopped) service's consumer group to the beginning of its input topic."""
    group = f"{ns.settings(service).consumer_group}.{topic}"
    consumer = AIOKafkaConsumer(bootstrap_servers=ns.bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        parts = [TopicPartition(ns.topic(topic), p) for p in consumer.partitions_for_topic(ns.topic(topic)) or ()]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(ns.topic(topic), p) for p in consumer.partitions_for_topic(ns.topic(topic)) or ()]
        consumer.assign(parts)
        begins = await consumer.beginning_offsets(parts)
        from aiokafka.structs import OffsetAndMetadata

        await consumer.commit({tp: OffsetAndMetadata(begins[tp], "") for tp in parts})
    finally:
        await consumer.stop()


async def run_operator(ns: Namespace, *args: str, columns: int = 250) -> tuple[int, str]:
    """Run the operator CLI as a process in the namespace (tables `columns` wide); (exit code, stdout + stderr)."""
    import os
    import sys
    from pathlib import Path

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": ns.bootstrap, "DATABASE_URL": ns.server_url, "COLUMNS": str(columns),
           "TOPIC_PREFIX": ns.prefix, "AUDIT_DATABASE": ns.settings("audit").database}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tools", "operator", *args,
                                                cwd=Path(__file__).resolve().parents[2], env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()
