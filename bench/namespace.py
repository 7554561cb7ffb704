"""A benchmark's own namespace on the local stack, secured as production is: its topics and the
services' ACLs (`tools.stack.namespaces`), one database per service owned by the service's role,
and the services as processes, each as its own Kafka principal and PostgreSQL role. The benchmark
itself acts as `admin`.

    ns = await BenchNamespace.open("b", SERVICES)
    procs = ns.start(SERVICES, "/tmp/bench-{name}.log")
    await ns.enroll(providers, persons)     # the population, through the enrollment service
    ...                                     # ns.count(service, table), ns.audit_groups(), ns.sizes()
    await ns.close(procs)
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from contracts.enrollment import EnrollPerson, RegisterProvider
from contracts.topics import ENROLLMENT_COMMANDS, TOPICS
from runtime.kafka_access import KafkaAccess
from runtime.settings import database_name
from tools import stack
from tools.hospital.publish import prepare_command, publish
from tools.stack.common import paths
from tools.stack.connection import local_access, service_connection
from tools.stack.lag import wait_drained
from tools.stack.namespaces import close_namespace, open_namespace
from tools.stack.pg import create_service_database
from tools.stack.services import spawn


@dataclass
class BenchNamespace:
    prefix: str
    admin: KafkaAccess
    server: str
    """The admin's PostgreSQL server URL (no database, no password)."""
    passfile: str
    services: tuple[str, ...]

    @classmethod
    async def open(cls, letter: str, services: tuple[str, ...], prefix: str | None = None) -> BenchNamespace:
        """Start the local stack if needed; make (or, with `prefix`, reuse) a namespace with the
        databases of `services`."""
        settings = stack.start()
        admin = local_access("admin", settings["KAFKA_BOOTSTRAP_SERVERS"])
        ns = cls(prefix or f"{letter}{uuid.uuid4().hex[:8]}.", admin, settings["DATABASE_URL"],
                 settings["PGPASSFILE"], services)
        await open_namespace(admin, ns.prefix)
        for name in services:  # each owned by its service's role
            await create_service_database(ns.server, database_name(name, ns.prefix), name, ns.passfile)
        return ns

    def start(self, names: tuple[str, ...], log: str, env: dict[str, str] | None = None
              ) -> list[subprocess.Popen[bytes]]:
        """`names` as processes in the namespace (log file `log` with `{name}`), with `env` added;
        `BENCH_LOG_LEVEL` (default WARNING) is their log level."""
        level = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
        bootstrap = self.admin.bootstrap_servers
        return [spawn(name, {**local_access(name, bootstrap).env(), **service_connection(name, self.server),
                             "TOPIC_PREFIX": self.prefix, "DATABASE_NAME": database_name(name, self.prefix),
                             "LOG_LEVEL": level, **(env or {})}, Path(log.format(name=name)), detach=False)
                for name in names]

    async def connect(self, service: str) -> asyncpg.Connection:
        """The namespace's database of `service`, as the admin."""
        conn: asyncpg.Connection = await asyncpg.connect(f"{self.server}/{database_name(service, self.prefix)}",
                                                         passfile=self.passfile)
        return conn

    async def count(self, service: str, table: str) -> int:
        """The rows of `table` in the namespace's database of `service` (SQL, nothing read into memory)."""
        conn = await self.connect(service)
        try:
            n: int = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
            return n
        finally:
            await conn.close()

    async def enroll(self, providers: Sequence[RegisterProvider], persons: Sequence[EnrollPerson],
                     timeout: float = 1800) -> float:
        """Publish the enrollment commands of `providers` and `persons` (as an operator) and wait
        until the enrollment service has processed them; returns the seconds it took."""
        commands = [prepare_command({"event_type": type(c).__name__, "payload": c.model_dump(mode="json")})
                    for c in [*providers, *persons]]
        t0 = time.perf_counter()
        await publish(commands, self.admin, progress=False, prefix=self.prefix)
        await wait_drained(self.admin, [(f"{self.prefix}medsettle.enrollment.{ENROLLMENT_COMMANDS}",
                                         self.prefix + ENROLLMENT_COMMANDS)], timeout=timeout)
        return time.perf_counter() - t0

    def audit_groups(self) -> list[tuple[str, str]]:
        """(group, topic) of everything the audit reads: `wait_drained` on them waits for the audit."""
        return [(f"{self.prefix}medsettle.audit.{t.name}", self.prefix + t.name) for t in TOPICS]

    async def sizes(self) -> dict[str, int]:
        """`pg_database_size` of each service's database in the namespace, in bytes."""
        conn = await asyncpg.connect(f"{self.server}/postgres", passfile=self.passfile)
        try:
            return {name: await conn.fetchval("SELECT pg_database_size($1)", database_name(name, self.prefix))
                    for name in self.services}
        finally:
            await conn.close()

    def kafka_log_bytes(self) -> int | None:
        """The bytes of the record logs (`*.log` segments, no indexes) of the namespace's topics in
        the local broker's data directory; None if it is not on this host."""
        data = paths().kafka_data
        if not data.is_dir():
            return None
        return sum(f.stat().st_size for d in data.iterdir() if d.is_dir() and d.name.startswith(self.prefix)
                   for f in d.glob("*.log"))

    async def close(self, procs: list[subprocess.Popen[bytes]], drop: bool = True, timeout: float = 60,
                    users: list[str] | None = None) -> None:
        """Stop `procs`; unless not `drop`, remove the namespace's topics, ACLs, databases and the
        broker `users` made for it."""
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=timeout)
        if not drop:
            return
        await close_namespace(self.admin, self.prefix, users or [])
        conn = await asyncpg.connect(f"{self.server}/postgres", passfile=self.passfile)
        try:
            for name in self.services:
                await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(name, self.prefix)}" WITH (FORCE)')
        finally:
            await conn.close()
