"""Session fixtures for integration tests: a real Kafka broker and a real PostgreSQL server.

Fixtures (all lazy: a test that does not ask for them starts nothing):

* `kafka_bootstrap` (session, str) - bootstrap servers, e.g. "127.0.0.1:19092". The topics of
  `contracts.topics` (and their `.dlt`) exist.
* `database_url` (session, str) - a PostgreSQL *server* URL without a database, e.g.
  "postgresql://postgres@127.0.0.1:15432" (append a database: `tools.stack.database_dsn`). The five
  `medsettle_<service>` databases exist, but tests should use their own (below).
* `fresh_database` (function) - a factory: `dsn = fresh_database()` or `fresh_database("ledger")`
  creates a new, uniquely named, empty database and returns its DSN; all it created are dropped
  after the test. `fresh_database_module` is the same, living until the end of the module (usable
  from module-scoped fixtures).

Where Kafka and PostgreSQL come from, per component, first that applies:
1. `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` environment variables (CI exports the local stack's);
2. a Docker engine answering `docker info`: testcontainers (Kafka in KRaft mode, postgres:15);
   stopped at session end. Set MEDSETTLE_NO_DOCKER=1 to skip this;
3. the local processes of `./medsettle stack start`. A running stack is reused and left running;
   what this session had to start is stopped at session end (unless MEDSETTLE_KEEP_STACK=1).

Tests under tests/integration/ are marked `integration` automatically (`-m "not integration"` skips them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # import the project's packages even before `pip install -e .` saw them
    sys.path.insert(0, str(ROOT))

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"
KAFKA_TEST_IMAGE = os.environ.get("MEDSETTLE_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.9.0")
POSTGRES_TEST_IMAGE = os.environ.get("MEDSETTLE_TEST_POSTGRES_IMAGE", "postgres:15")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(getattr(item, "path", item.fspath))).resolve()
        if INTEGRATION_DIR in path.parents:
            item.add_marker(pytest.mark.integration)


def _docker_engine_answers() -> bool:
    if os.environ.get("MEDSETTLE_NO_DOCKER") or not shutil.which("docker"):
        return False
    try:
        res = subprocess.run(["docker", "info"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


class _Backends:
    """Resolves Kafka and PostgreSQL on first use and cleans up what it started."""

    def __init__(self) -> None:
        self._kafka: str | None = None
        self._database: str | None = None
        self._docker: bool | None = None
        self._containers: list[Any] = []
        self._local_started: dict[str, bool] = {"kafka": False, "postgres": False}

    def docker(self) -> bool:
        if self._docker is None:
            self._docker = _docker_engine_answers()
        return self._docker

    def kafka(self) -> str:
        if self._kafka is None:
            from tools import stack  # noqa: PLC0415

            bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if not bootstrap and self.docker():
                bootstrap = self._kafka_container()
            if not bootstrap:
                bootstrap = self._local("kafka")["KAFKA_BOOTSTRAP_SERVERS"]
            stack.create_topics(bootstrap)  # idempotent; waits for the broker to answer
            self._kafka = bootstrap
        return self._kafka

    def database(self) -> str:
        if self._database is None:
            from tools import stack  # noqa: PLC0415

            url = os.environ.get("DATABASE_URL")
            if not url and self.docker():
                url = self._postgres_container()
            if not url:
                url = self._local("postgres")["DATABASE_URL"]
            stack.create_databases(url)
            self._database = url
        return self._database

    # -- sources

    def _kafka_container(self) -> str:
        try:
            from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415
        except ImportError:
            from testcontainers.kafka import KafkaContainer  # noqa: PLC0415
        container = KafkaContainer(KAFKA_TEST_IMAGE).with_kraft()
        container.start()
        self._containers.append(container)
        return container.get_bootstrap_server()

    def _postgres_container(self) -> str:
        try:
            from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415
        except ImportError:
            from testcontainers.postgres import PostgresContainer  # noqa: PLC0415
        container = PostgresContainer(POSTGRES_TEST_IMAGE, username="postgres", password="postgres", dbname="postgres")
        container.start()
        self._containers.append(container)
        host, port = container.get_container_host_ip(), container.get_exposed_port(5432)
        return f"postgresql://postgres:postgres@{host}:{port}"

    def _local(self, component: str) -> dict[str, str]:
        from tools import stack  # noqa: PLC0415

        was_running = stack.is_running()[component]
        settings = stack.start(kafka_enabled=component == "kafka", postgres_enabled=component == "postgres")
        self._local_started[component] = not was_running
        return settings

    # -- teardown

    def close(self) -> None:
        for container in reversed(self._containers):
            try:
                container.stop()
            except Exception as exc:  # noqa: BLE001
                print(f"warning: stopping test container failed: {exc!r}", file=sys.stderr)
        keep = os.environ.get("MEDSETTLE_KEEP_STACK") or os.environ.get("PYTEST_XDIST_WORKER")
        if any(self._local_started.values()) and not keep:
            from tools import stack  # noqa: PLC0415

            stack.stop(kafka_enabled=self._local_started["kafka"], postgres_enabled=self._local_started["postgres"])


@pytest.fixture(scope="session")
def _backends() -> Iterator[_Backends]:
    backends = _Backends()
    try:
        yield backends
    finally:
        backends.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(_backends: _Backends) -> str:
    """Bootstrap servers of a real Kafka broker with the registry topics created."""
    return _backends.kafka()


@pytest.fixture(scope="session")
def database_url(_backends: _Backends) -> str:
    """A PostgreSQL server URL without a database (append one with tools.stack.database_dsn)."""
    return _backends.database()


class _DatabaseFactory:
    def __init__(self, server_url: str, default_prefix: str) -> None:
        self.server_url = server_url
        self.default_prefix = default_prefix
        self.created: list[str] = []

    def __call__(self, prefix: str | None = None) -> str:
        from tools.stack import database_dsn  # noqa: PLC0415

        slug = re.sub(r"[^a-z0-9]+", "_", (prefix or self.default_prefix).lower()).strip("_")[:40] or "db"
        name = f"t_{slug}_{uuid.uuid4().hex[:10]}"
        self._execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return database_dsn(self.server_url, name)

    def drop_all(self) -> None:
        while self.created:
            name = self.created.pop()
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _execute(self, sql: str) -> None:
        import asyncpg  # noqa: PLC0415

        from tools.stack import database_dsn  # noqa: PLC0415
        from tools.stack.common import run_sync  # noqa: PLC0415

        async def go() -> None:
            conn = await asyncpg.connect(database_dsn(self.server_url, "postgres"), timeout=15)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        run_sync(go)  # usable from sync and async tests alike (own loop in a worker thread)


@pytest.fixture
def fresh_database(database_url: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Factory: `fresh_database(prefix=None) -> DSN` of a new empty database, dropped after the test."""
    factory = _DatabaseFactory(database_url, request.node.name)
    try:
        yield factory
    finally:
        factory.drop_all()


@pytest.fixture(scope="module")
def fresh_database_module(database_url: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Like `fresh_database`, but the databases live until the end of the test module."""
    factory = _DatabaseFactory(database_url, request.module.__name__.rsplit(".", 1)[-1])
    try:
        yield factory
    finally:
        factory.drop_all()
