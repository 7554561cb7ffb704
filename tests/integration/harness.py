"""Running services in-process against the real broker and database, each test in its own
namespace: topics carry a unique prefix and every service gets a fresh database.

On the platform's broker (SASL_SSL) the namespace also has its services' ACLs
(`tools.stack.namespaces`): each service runs as its own principal, confined to exactly its rights
in the namespace, so the whole suite exercises least privilege. The test itself acts as `admin`
(`Namespace.kafka`).

`Namespace.server_url` is the admin's URL (the stack's superuser, password from `PGPASSFILE`): the
harness creates a namespace's databases with it, each owned by its service's role and closed to the
others (`tools.stack.pg.create_service_database`), and drops them afterwards. The services of a
namespace, in-process or as processes, connect as their own roles (`Namespace.settings`), exactly
as in production; a service a test defines itself runs as `TEST_SERVICE_ROLE`'s role.
"""

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
from runtime.kafka_access import KafkaAccess
from runtime.settings import SERVICES, Settings, database_name, database_role, load_settings
from tools.hospital.credentials import HospitalCredentials
from tools.stack.common import paths, run_sync
from tools.stack.connection import passfile
from tools.stack.kafka import ensure_topics, hospital_topic_plan
from tools.stack.lag import lags
from tools.stack.lag import wait_drained as drained
from tools.stack.namespaces import close_namespace, open_namespace
from tools.stack.pg import create_service_database, database_dsn, with_user
from tools.stack.principals import STACK_PRINCIPALS, hospital_user
from tools.stack.secrets import StackSecrets
from tools.stack.services import spawn

TEST_SERVICE_ROLE = "settlement"
"""Whose role a service that a test defines (not one of `runtime.settings.SERVICES`) runs as: a
least-privileged service role like any other, so no role has to be made for it."""


def owner_of(topic: str, payload: Contract) -> str:
    """The producer `topic`'s events name (`contracts.topics.TopicSpec.producers`)."""
    spec = BY_NAME.get(topic)
    if spec is None or not spec.producers:
        return "test"
    owner = spec.producers[0]
    return f"hospital:{getattr(payload, 'hospital_id', '')}" if owner == HOSPITAL_PRODUCER else owner


@dataclass
class Namespace:
    kafka: KafkaAccess
    """The test's own access: admin."""
    server_url: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    databases: dict[str, str] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)
    """SCRAM users made for this namespace (its hospitals): deleted with it."""
    secrets: StackSecrets = field(default_factory=lambda: StackSecrets(paths().local))
    """The services' passwords: the stack of the tests (fixed when the namespace is made, so a test
    that points MEDSETTLE_LOCAL at a throwaway stack still runs its services as themselves)."""

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def topic(self, name: str) -> str:
        return self.prefix + name

    def access(self, principal: str) -> KafkaAccess:
        """How `principal` (a service, intake) reaches the broker: its own credentials on the platform's
        broker; the test's own elsewhere (a plaintext broker, a test-only service without a principal)."""
        if not self.kafka.secured or principal not in STACK_PRINCIPALS:
            return self.kafka
        return self.secrets.access(self.bootstrap, principal)

    @staticmethod
    def role(service: str) -> str:
        """The login role `service` runs as (a service a test defines: `TEST_SERVICE_ROLE`'s)."""
        return database_role(service if service in SERVICES else TEST_SERVICE_ROLE)

    def database(self, service: str) -> str:
        """The namespace's database of `service`, created (owned by its role) the first time it is asked for."""
        if service not in self.databases:
            name = database_name(service, self.prefix)
            owner = service if service in SERVICES else TEST_SERVICE_ROLE
            run_sync(lambda: create_service_database(self.server_url, name, owner, passfile()))
            self.databases[service] = name
        return self.databases[service]

    def settings(self, service: str, **overrides: Any) -> Settings:
        a = self.access(service)
        return load_settings(service, kafka_bootstrap_servers=a.bootstrap_servers,
                             kafka_security_protocol=a.security_protocol, kafka_username=a.username,
                             kafka_password=a.password, kafka_ca_file=a.ca_file,
                             database_url=with_user(self.server_url, self.role(service)),
                             database_name=self.database(service), topic_prefix=self.prefix, batch_timeout_ms=50,
                             **{"health_port_setting": 0, **overrides})

    def env(self, service: str) -> dict[str, str]:
        """Environment for running `service` as a process in this namespace: as its own principal and
        its own role, the password from the password file in use (never in the environment itself)."""
        s = self.settings(service)
        env = {**self.access(service).env(), "DATABASE_URL": s.database_url, "DATABASE_NAME": s.database,
               "TOPIC_PREFIX": self.prefix, "BATCH_TIMEOUT_MS": "50"}
        if (found := passfile(self.role(service))) is not None:
            env["PGPASSFILE"] = found
        return env

    async def hospital_topics(self, *hospital_ids: str) -> None:
        """Create these hospitals' requests and statements topics (what issuing their credentials does)."""
        await ensure_topics(self.kafka, prefix=self.prefix, plans=hospital_topic_plan(list(hospital_ids),
                                                                                          self.prefix))

    async def hospital(self, hospital_id: str) -> HospitalCredentials:
        """Issue a hospital's credentials in this namespace (its user is deleted with the namespace)."""
        from tools.operator.hospitals import issue

        self.users.append(hospital_user(hospital_id))
        return await issue(self.kafka, hospital_id, self.prefix)

    async def console_access(self) -> KafkaAccess:
        """A principal of the operator console for this namespace (`console-<namespace>`, deleted with
        it) with exactly the console's rights there (`principals.console_acls`)."""
        import secrets as token

        from pydantic import SecretStr

        from tools.stack.kafka_admin import KafkaAdmin
        from tools.stack.principals import console_acls, grant

        if not self.kafka.secured:
            return self.kafka
        name = f"console-{self.prefix.rstrip('.')}"
        access = KafkaAccess(self.bootstrap, self.kafka.security_protocol, name, SecretStr(token.token_urlsafe(32)),
                             self.kafka.ca_file, ca_pem=self.kafka.ca_pem)
        self.users.append(name)
        async with KafkaAdmin(self.kafka) as as_admin:
            await as_admin.set_passwords({name: access.password.get_secret_value()})  # type: ignore[union-attr]
            await grant(as_admin, console_acls(self.prefix, name))
            await as_admin.wait_user(access)
        return access

    async def connect(self, service: str) -> asyncpg.Connection:
        """A connection to `service`'s database as the service's role."""
        return await asyncpg.connect(self.settings(service).dsn, passfile=passfile(self.role(service)))

    async def publish(self, topic: str, items: Iterable[tuple[str, Contract | Envelope[Any] | bytes]],
                      producer_name: str | None = None) -> list[Envelope[Any]]:
        """Publish to the namespace's `topic`; a bare payload is wrapped in an envelope from
        `producer_name`, by default the topic's owner (as the audit expects)."""
        producer = AIOKafkaProducer(**self.kafka.options(), enable_idempotence=True, linger_ms=5)
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
        consumer = AIOKafkaConsumer(self.topic(topic), **self.kafka.options(), group_id=None,
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
        consumer = AIOKafkaConsumer(self.topic(topic), **self.kafka.options(), group_id=None,
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
        """Remove what the namespace made: its databases, its topics, its ACLs and users."""
        await close_namespace(self.kafka, self.prefix, self.users)
        conn = await asyncpg.connect(database_dsn(self.server_url, "postgres"), passfile=passfile())
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


async def new_namespace(kafka: KafkaAccess, server_url: str) -> Namespace:
    """A namespace: its topics, and its services' rights on them."""
    ns = Namespace(kafka, server_url)
    await open_namespace(kafka, ns.prefix)
    return ns


class ServiceProcess:
    """A service as a real OS process in a namespace (for crash tests: SIGKILL, restart)."""

    def __init__(self, ns: Namespace, name: str, instance: str = "") -> None:
        """`instance`: a second instance of the same service (same consumer groups) is told apart by it."""
        self.ns, self.name, self.instance = ns, name, instance
        self.proc: Any = None

    @property
    def log(self) -> Path:
        """Its rotated log (and `.out` beside it, its raw output), as for the services of tools.stack.services."""
        return paths().logs / f"test-{self.ns.prefix}{self.name}{'-' + self.instance if self.instance else ''}.log"

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

    def tail(self, lines: int = 40) -> str:
        """The last `lines` of its log and of its raw output (what a failing test reports)."""
        out = []
        for path in (self.log, self.log.with_suffix(".out")):
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.is_file() else ["(none)"]
            out.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(out)

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
    await drained(ns.kafka, _groups(ns, pairs), timeout)


async def group_lags(ns: Namespace, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """What each (service, input topic) consumer group has not committed yet."""
    pairs = list(pairs)
    lag = await lags(ns.kafka, _groups(ns, pairs))
    return {pair: lag[group] for pair, group in zip(pairs, _groups(ns, pairs), strict=True)}


async def reset_group_to_earliest(ns: Namespace, service: str, topic: str) -> None:
    """Rewind a (stopped) service's consumer group to the beginning of its input topic."""
    group = f"{ns.settings(service).consumer_group}.{topic}"
    consumer = AIOKafkaConsumer(**ns.kafka.options(), group_id=group, enable_auto_commit=False)
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

    # on the platform's broker the CLI finds the local stack's admin itself, as an operator's does
    env = {**os.environ, **({} if ns.kafka.secured else ns.kafka.env()), "KAFKA_BOOTSTRAP_SERVERS": ns.bootstrap,
           "DATABASE_URL": ns.server_url, "COLUMNS": str(columns),
           "TOPIC_PREFIX": ns.prefix, "AUDIT_DATABASE": ns.settings("audit").database}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tools", "operator", *args,
                                                cwd=Path(__file__).resolve().parents[2], env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()
