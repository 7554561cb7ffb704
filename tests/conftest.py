"""Session fixtures for integration tests: a real Kafka broker and a real PostgreSQL server.

Fixtures (all lazy: a test that does not ask for them starts nothing):

* `kafka_admin` (session, `runtime.kafka_access.KafkaAccess`) - a real Kafka broker and the
  tests' access to it: `admin` (TLS + SCRAM, from the local stack's secrets) on the platform's
  broker; `**kafka_admin.options()` makes any aiokafka client. The topics of `contracts.topics`
  (and their `.dlt`) exist. `kafka_bootstrap` (session, str) is its address, e.g. "127.0.0.1:19092".
* `database_url` (session, str) - a PostgreSQL *server* URL without a database and without a
  password, as the server's superuser, e.g. "postgresql://medsettle_admin@127.0.0.1:15432" (append
  a database: `tools.stack.database_dsn`). Its password, and those of the services' and the
  operator's roles, are in the password file `PGPASSFILE`, which the session sets (never a
  password in the environment or a URL). The roles and the five `medsettle_<service>` databases
  exist (`tools.stack.create_databases`), but tests should use their own (below, and the
  namespaces of `tests/integration/harness.py`).
* `fresh_database` (function) - a factory: `dsn = fresh_database()` or `fresh_database("ledger")`
  creates a new, uniquely named, empty database and returns its DSN; all it created are dropped
  after the test. With `service="settlement"` the database belongs to that service's role and the
  DSN connects as it (least privilege, as the service would); without, as the superuser.
  `fresh_database_module` is the same, living until the end of the module (usable from
  module-scoped fixtures).

Where Kafka and PostgreSQL come from is one setting, `MEDSETTLE_TEST_BACKEND`:
* `local` (the default): the local processes of `./medsettle stack start` (Apache Kafka 4.1.0 in
  KRaft mode from Maven Central, PostgreSQL 15). `./medsettle test` starts them and exports their
  `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL`; without those, the fixtures start the stack
  themselves, and stop at session end what they started (unless MEDSETTLE_KEEP_STACK=1);
* `testcontainers`: containers of the same versions on a Docker engine (`tests/containers.py`:
  `apache/kafka:4.1.0`, `postgres:15`), stopped at session end;
* `external`: the broker and server named by `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` (a
  superuser; its password from `PGPASSFILE` or `~/.pgpass`). The session gives the platform's roles
  on that server new passwords of its own.

With `testcontainers` and `external` the roles' passwords are generated for the session into a
temporary directory (`tools.stack.pg_secrets.PgSecrets`), whose password file becomes `PGPASSFILE`.

Tests under tests/integration/ are marked `integration` automatically (`-m "not integration"` skips them).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # import the project's packages even before `pip install -e .` saw them
    sys.path.insert(0, str(ROOT))

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(getattr(item, "path", item.fspath))).resolve()
        if INTEGRATION_DIR in path.parents:
            item.add_marker(pytest.mark.integration)


BACKENDS = ("local", "testcontainers", "external")


def backend() -> str:
    """`MEDSETTLE_TEST_BACKEND`: where the test broker and database come from (see the module)."""
    chosen = os.environ.get("MEDSETTLE_TEST_BACKEND", "local")
    if chosen not in BACKENDS:
        raise pytest.UsageError(f"MEDSETTLE_TEST_BACKEND={chosen!r}: expected one of {', '.join(BACKENDS)}")
    return chosen


class _Backends:
    """Resolves Kafka and PostgreSQL on first use and cleans up what it started."""

    def __init__(self) -> None:
        self._kafka: Any = None
        self._database: str | None = None
        self._containers: list[Any] = []
        self._local_started: dict[str, bool] = {"kafka": False, "postgres": False}
        self._secrets_dir: Path | None = None

    def kafka(self) -> Any:
        """The tests' `KafkaAccess`: admin on the local stack (its secrets), the environment's user on an
        external broker, plaintext on a test container (an `apache/kafka` image without security)."""
        if self._kafka is None:
            from runtime.kafka_access import KafkaAccess
            from tools import stack
            from tools.stack.connection import kafka_access, local_access

            chosen = backend()
            if chosen == "testcontainers":
                from tests.containers import kafka_container

                self._containers.append(container := kafka_container())
                access = KafkaAccess(container.bootstrap, "PLAINTEXT")
            else:
                bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or ""
                if not bootstrap and chosen == "external":
                    raise pytest.UsageError("MEDSETTLE_TEST_BACKEND=external needs KAFKA_BOOTSTRAP_SERVERS")
                if chosen == "external":
                    access = kafka_access()
                else:
                    bootstrap = bootstrap or self._local("kafka")["KAFKA_BOOTSTRAP_SERVERS"]
                    access = local_access("admin", bootstrap)
            stack.create_topics(access)  # idempotent; waits for the broker to answer
            self._kafka = access
        return self._kafka

    def database(self) -> str:
        if self._database is None:
            from tools import stack
            from tools.stack.common import PG_ADMIN

            chosen = backend()
            secrets = None
            if chosen == "testcontainers":
                from tests.containers import postgres_container

                secrets = self._session_secrets()
                self._containers.append(container := postgres_container(PG_ADMIN, secrets.password(PG_ADMIN)))
                url = container.server_url
                secrets.host = container.host
                secrets.write_owner_file()
            else:
                url = os.environ.get("DATABASE_URL") or ""
                if not url and chosen == "external":
                    raise pytest.UsageError("MEDSETTLE_TEST_BACKEND=external needs DATABASE_URL")
                if url and chosen == "external":
                    secrets = self._session_secrets(url)
                if not url:
                    local = self._local("postgres")
                    url = local["DATABASE_URL"]
                    os.environ.setdefault("PGPASSFILE", local["PGPASSFILE"])
            if secrets is not None:  # the session's own password file, for this process and its children
                os.environ["PGPASSFILE"] = str(secrets.passfile())
            stack.create_databases(url, secrets)
            self._database = url
        return self._database

    def _session_secrets(self, external_url: str | None = None) -> Any:
        """New passwords for the platform's roles (and the admin's, for a container), in a temporary
        directory; with an external server, the admin's lines of the password file in use are kept."""
        from urllib.parse import urlsplit

        from tools.stack.common import PG_LOGIN_ROLES, PG_ROLES
        from tools.stack.pg_secrets import PgSecrets

        self._secrets_dir = Path(tempfile.mkdtemp(prefix="medsettle-test-secrets-"))
        if external_url is None:
            secrets = PgSecrets(self._secrets_dir / "postgres")
            secrets.generate(PG_ROLES)
            return secrets
        secrets = PgSecrets(self._secrets_dir / "postgres", host=urlsplit(external_url).hostname or "*")
        secrets.generate(PG_LOGIN_ROLES)
        given = Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass")
        if given.is_file():
            secrets.keep_lines(given.read_text())
        return secrets

    # -- sources

    def _local(self, component: str) -> dict[str, str]:
        from tools import stack

        was_running = stack.is_running()[component]
        settings = stack.start(kafka_enabled=component == "kafka", postgres_enabled=component == "postgres")
        self._local_started[component] = not was_running
        return settings

    # -- teardown

    def close(self) -> None:
        if self._secrets_dir is not None:
            shutil.rmtree(self._secrets_dir, ignore_errors=True)
        for container in reversed(self._containers):
            try:
                container.stop()
            except Exception as exc:  # noqa: BLE001 - teardown goes on with the other containers
                print(f"warning: stopping test container failed: {exc!r}", file=sys.stderr)
        keep = os.environ.get("MEDSETTLE_KEEP_STACK") or os.environ.get("PYTEST_XDIST_WORKER")
        if any(self._local_started.values()) and not keep:
            from tools import stack

            stack.stop(kafka_enabled=self._local_started["kafka"], postgres_enabled=self._local_started["postgres"])


@pytest.fixture(scope="session")
def _backends() -> Iterator[_Backends]:
    backends = _Backends()
    try:
        yield backends
    finally:
        backends.close()


@pytest.fixture(scope="session")
def kafka_admin(_backends: _Backends) -> Any:
    """The tests' access (`KafkaAccess`, admin) to a real Kafka broker with the registry topics created."""
    return _backends.kafka()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_admin: Any) -> str:
    """Bootstrap servers of that broker."""
    return str(kafka_admin.bootstrap_servers)


@pytest.fixture(scope="session")
def database_url(_backends: _Backends) -> str:
    """A PostgreSQL server URL without a database (append one with tools.stack.database_dsn)."""
    return _backends.database()


class _DatabaseFactory:
    def __init__(self, server_url: str, default_prefix: str) -> None:
        self.server_url = server_url
        self.default_prefix = default_prefix
        self.created: list[str] = []

    def __call__(self, prefix: str | None = None, service: str | None = None) -> str:
        from runtime.settings import database_role
        from tools.stack import database_dsn
        from tools.stack.common import run_sync
        from tools.stack.connection import passfile
        from tools.stack.pg import create_service_database, with_user

        slug = re.sub(r"[^a-z0-9]+", "_", (prefix or self.default_prefix).lower()).strip("_")[:40] or "db"
        name = f"t_{slug}_{uuid.uuid4().hex[:10]}"
        if service is None:
            self._execute(f'CREATE DATABASE "{name}"')
        else:
            run_sync(lambda: create_service_database(self.server_url, name, service, passfile()))
        self.created.append(name)
        server = self.server_url if service is None else with_user(self.server_url, database_role(service))
        return database_dsn(server, name)

    def drop_all(self) -> None:
        while self.created:
            name = self.created.pop()
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _execute(self, sql: str) -> None:
        import asyncpg

        from tools.stack import database_dsn
        from tools.stack.common import run_sync
        from tools.stack.connection import passfile

        async def go() -> None:
            conn = await asyncpg.connect(database_dsn(self.server_url, "postgres"), timeout=15, passfile=passfile())
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        run_sync(go)  # usable from sync and async tests alike (own loop in a worker thread)


@pytest.fixture
def fresh_database(database_url: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Factory: `fresh_database(prefix=None, service=None) -> DSN` of a new empty database (a service's:
    owned by its role, the DSN as that role), dropped after the test."""
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
