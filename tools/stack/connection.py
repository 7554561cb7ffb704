"""Where the command-line tools find Kafka and PostgreSQL: the environment first
(`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`), else the local stack (`.local/stack.json`).

`require_kafka()` and `require_database()` also check that something answers there, so a command
run while the stack is stopped says so in one line (`StackError`) instead of retrying or failing
deep inside a client library."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from tools.stack.common import StackError

START_HINT = "start it with `./medsettle stack start` (or `./medsettle run`)"


def _local(name: str) -> str:
    from tools.stack import connection_settings  # the local stack's state file

    return connection_settings()[name]


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or _local("KAFKA_BOOTSTRAP_SERVERS")


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or _local("DATABASE_URL")


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


def require_kafka(timeout: float = 3.0) -> str:
    """`kafka_bootstrap()`, once one of its brokers accepts a connection; else StackError."""
    bootstrap = kafka_bootstrap()
    for hostport in (h.strip() for h in bootstrap.split(",") if h.strip()):
        host, _, port = hostport.rpartition(":")
        if port.isdigit() and _answers(host.strip("[]"), int(port), timeout):
            return bootstrap
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
