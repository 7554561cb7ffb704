"""Where the command-line tools find Kafka and PostgreSQL: the environment first
(`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`, `PGPASSFILE`), else the local stack (`.local/stack.json`).

`DATABASE_URL` names the server and the stack owner's role (`medsettle_admin` on the local stack),
never a password; passwords come from a password file (`PGPASSFILE`, else the local stack's
`.local/secrets/postgres/pgpass`; tools/stack/pg_secrets.py). A service is given its own role and its
own password file only (`service_connection`); the operator's tools connect as the operator role
(`connect(..., user=OPERATOR_ROLE)`).

Who the tools are to the broker (`kafka_access()`): the user the environment names
(`KAFKA_USERNAME` with `KAFKA_PASSWORD` or `KAFKA_PASSWORD_FILE`, `KAFKA_CA_FILE`: the settings of
`runtime.settings.Settings`), else the local stack's `admin` (its password and CA in
`.local/secrets/`): the one helper every tool gets its Kafka client options from.

`require_kafka()` and `require_database()` also check that something answers there, so a command
run while the stack is stopped says so in one line (`StackError`) instead of retrying or failing
deep inside a client library."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

from runtime.kafka_access import KafkaAccess
from runtime.settings import database_role
from tools.stack.common import StackError, paths

START_HINT = "start it with `./medsettle stack start` (or `./medsettle run`)"


def _local(name: str) -> str:
    from tools.stack import connection_settings  # the local stack's state file

    return connection_settings()[name]


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or _local("KAFKA_BOOTSTRAP_SERVERS")


def local_access(principal: str = "admin", bootstrap: str | None = None) -> KafkaAccess:
    """How `principal` (admin, a service) reaches the local stack's broker (or `bootstrap`), with the
    password and CA the stack generated."""
    from tools.stack.secrets import StackSecrets

    return StackSecrets(paths().local).access(bootstrap or kafka_bootstrap(), principal)


def kafka_access() -> KafkaAccess:
    """The tools' access to the broker: the environment's user if it names one, else the local admin."""
    if os.environ.get("KAFKA_USERNAME") or os.environ.get("KAFKA_SECURITY_PROTOCOL") == "PLAINTEXT":
        from runtime.settings import Settings

        return Settings().kafka_access()
    return local_access()


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or _local("DATABASE_URL")


def _local_secrets() -> Any:
    from tools.stack.pg_secrets import PgSecrets

    return PgSecrets.of(paths())


def passfile(role: str | None = None) -> str | None:
    """The password file to use: `PGPASSFILE`, else the local stack's file of `role` (None: the stack
    owner's, with every role) if there is one."""
    if os.environ.get("PGPASSFILE"):
        return os.environ["PGPASSFILE"]
    found = _local_secrets().passfile(role)
    return str(found) if found.is_file() else None


def service_connection(service: str, server: str | None = None, given: str | None = None) -> dict[str, str]:
    """What a service process is given to reach its database: `DATABASE_URL` as its own role (no
    password) and `PGPASSFILE`, the password file of that role alone (the local stack's; where this
    stack has none, the password file `given`, if any)."""
    from tools.stack.pg import with_user

    role = database_role(service)
    own = _local_secrets().passfile(role)
    found = str(own) if own.is_file() else given
    return {"DATABASE_URL": with_user(server or database_url(), role), **({"PGPASSFILE": found} if found else {})}


async def connect(database: str, user: str | None = None, timeout: float = 10.0) -> Any:
    """An asyncpg connection to `database` on `require_database()`'s server, as `user` (default: the
    URL's), the password from `passfile()`."""
    import asyncpg

    from tools.stack.pg import database_dsn, with_user

    server = require_database()
    if user is not None:
        server = with_user(server, user)
    return await asyncpg.connect(database_dsn(server, database), passfile=passfile(user), timeout=timeout)


def _answers(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host or "localhost", port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _down(nobody_answers: str, variable: str) -> StackError:
    if os.environ.get(variable):
        return StackError(f"{nobody_answers} (from {variable})")
    return StackError(f"the local stack is not running ({nobody_answers}): {START_HINT}")


def require_kafka(timeout: float = 3.0, access: KafkaAccess | None = None) -> KafkaAccess:
    """`kafka_access()` (or `access`), once one of its brokers accepts a connection; else StackError."""
    bootstrap = access.bootstrap_servers if access is not None else kafka_bootstrap()
    for hostport in (h.strip() for h in bootstrap.split(",") if h.strip()):
        host, _, port = hostport.rpartition(":")
        if port.isdigit() and _answers(host.strip("[]"), int(port), timeout):
            return access or kafka_access()
    raise _down(f"no Kafka broker answers on {bootstrap}", "KAFKA_BOOTSTRAP_SERVERS")


def require_database(timeout: float = 3.0) -> str:
    """`database_url()`, once its server accepts a connection; else StackError."""
    url = database_url()
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port or 5432
    except ValueError:
        return url  # an address we cannot probe: let the client say what is wrong
    if host and not host.startswith("/") and not _answers(host, port, timeout):
        raise _down(f"PostgreSQL does not answer on {host}:{port}", "DATABASE_URL")
    return url
