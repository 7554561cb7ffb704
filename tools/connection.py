"""Where the command-line tools find Kafka and PostgreSQL: the environment first
(`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`), else the local stack (`.local/stack.json`)."""

from __future__ import annotations

import os


def _local(name: str) -> str:
    from tools.stack import connection_settings  # the local stack's state file

    return connection_settings()[name]


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or _local("KAFKA_BOOTSTRAP_SERVERS")


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or _local("DATABASE_URL")
