"""The console's settings, from the environment.

`CONSOLE_HOST` / `CONSOLE_PORT` (127.0.0.1:8090), `CONSOLE_SECRETS` (the directory of the console's
secrets, `.local/secrets/console`: `users.json`, `session.key`), `TOPIC_PREFIX`, `AUDIT_DATABASE`;
the broker as in every service (`KAFKA_*`, runtime/settings.py: the principal `console`); the
databases on `DATABASE_URL` as the operator role with `PGPASSFILE` (tools/stack/connection.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.kafka_access import KafkaAccess
from runtime.settings import Settings, database_name
from tools.stack.common import paths
from tools.stack.secrets import secrets_dir

DEFAULT_PORT = 8090


class ConsoleEnv(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    host: str = Field(default="127.0.0.1", alias="CONSOLE_HOST")
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535, alias="CONSOLE_PORT")
    secrets: Path | None = Field(default=None, alias="CONSOLE_SECRETS")
    topic_prefix: str = Field(default="", alias="TOPIC_PREFIX")
    audit_database: str | None = Field(default=None, alias="AUDIT_DATABASE")
    secure_cookie: bool = Field(default=False, alias="CONSOLE_SECURE_COOKIE")
    """Send the session cookie over HTTPS only (behind a TLS proxy)."""


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console app is made with."""

    kafka: KafkaAccess
    secrets: Path
    prefix: str = ""
    audit_database: str | None = None
    secure_cookie: bool = False

    @property
    def audit_db(self) -> str:
        return self.audit_database or database_name("audit", self.prefix)

    @classmethod
    def from_env(cls) -> tuple[ConsoleConfig, ConsoleEnv]:

        env = ConsoleEnv()
        kafka = Settings(SERVICE_NAME="console").kafka_access()
        return cls(kafka, env.secrets or secrets_dir(paths().local) / "console", env.topic_prefix,
                   env.audit_database, env.secure_cookie), env
