"""Settings from the environment (pydantic-settings).

`KAFKA_BOOTSTRAP_SERVERS` — the broker, e.g. `127.0.0.1:19092`.
`DATABASE_URL` — a PostgreSQL *server* URL without database, e.g. `postgresql://postgres@127.0.0.1:15432`;
each service connects to its own database on it, named by `database_name` (`DATABASE_NAME` overrides).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("enrollment", "intake", "settlement", "catastrophic", "assistance", "audit")
"""The platform's services; each owns one database."""


def database_name(service: str, topic_prefix: str = "") -> str:
    """The one rule that names a service's database: `medsettle_<service>`, or in a namespace
    (`TOPIC_PREFIX` such as `t1a2b3c4.`) `<prefix without its dot>_<service>`."""
    return f"{topic_prefix.rstrip('.') or 'medsettle'}_{service}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    service_name: str = Field(default="medsettle", alias="SERVICE_NAME")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:19092", alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:15432", alias="DATABASE_URL")
    database_name: str | None = Field(default=None, alias="DATABASE_NAME")
    policy_profile: str = Field(default="demo-county", alias="POLICY_PROFILE")
    policy_overlay: str | None = Field(default=None, alias="POLICY_OVERLAY")
    """An overlay YAML of operator inputs merged into the profile (`policy.loader.read_overlay`):
    the values a profile declares `!operator-input` (e.g. the employee scheme's)."""
    batch_max_records: int = Field(default=500, ge=1, alias="BATCH_MAX_RECORDS")
    batch_timeout_ms: int = Field(default=100, ge=1, alias="BATCH_TIMEOUT_MS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    db_pool_size: int = Field(default=4, ge=1, alias="DB_POOL_SIZE")
    topic_prefix: str = Field(default="", alias="TOPIC_PREFIX")
    """Prepended to every topic name (isolated test runs, or several environments on one cluster)."""
    consumer_group_override: str | None = Field(default=None, alias="CONSUMER_GROUP")
    metadata_max_age_ms: int = Field(default=30_000, ge=1000, alias="KAFKA_METADATA_MAX_AGE_MS")
    """How often the consumers refresh topic metadata: a new hospital's requests topic reaches
    the intake's pattern subscription within this time."""

    @property
    def database(self) -> str:
        return self.database_name or database_name(self.service_name, self.topic_prefix)

    @property
    def dsn(self) -> str:
        return f"{self.database_url.rstrip('/')}/{self.database}"

    @property
    def consumer_group(self) -> str:
        return self.consumer_group_override or f"{self.topic_prefix}medsettle.{self.service_name}"

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def kafka_options(self) -> dict[str, Any]:
        """What every Kafka client of the service is made with (where the broker is)."""
        return {"bootstrap_servers": self.kafka_bootstrap_servers}


def load_settings(service_name: str, **overrides: object) -> Settings:
    """Settings of one service; keyword overrides win over the environment (tests use them)."""
    settings = Settings(SERVICE_NAME=service_name)
    return settings.model_copy(update=overrides) if overrides else settings
