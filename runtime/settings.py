"""Settings from the environment (pydantic-settings).

`KAFKA_BOOTSTRAP_SERVERS` — the broker, e.g. `127.0.0.1:19092`; `KAFKA_SECURITY_PROTOCOL` (`SASL_SSL`, the
default, or `PLAINTEXT`), `KAFKA_USERNAME`, `KAFKA_PASSWORD` (or `KAFKA_PASSWORD_FILE`), `KAFKA_CA_FILE` — who
the service is to the broker (`runtime.kafka_access`).
`DATABASE_URL` — a PostgreSQL *server* URL without database and without password, naming the
service's own login role, e.g. `postgresql://medsettle_settlement@127.0.0.1:15432`; each service
connects to its own database on it, named by `database_name` (`DATABASE_NAME` overrides), owned by
its role (`database_role`). The password is never in the URL: it comes from the password file
`PGPASSFILE` (libpq's format, 0600), which asyncpg reads itself, so no setting, repr or log line
of the service ever holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.kafka_access import KafkaAccess, SecurityProtocol

SERVICES = ("enrollment", "intake", "settlement", "catastrophic", "assistance", "audit", "gateway")
"""The platform's services; each owns one database."""


CLAIM_PATH_FETCH_MAX_WAIT_MS = 25
OBSERVER_FETCH_MAX_WAIT_MS = 250
OBSERVERS = frozenset({"audit"})
"""Services no statement waits for (see `Settings.fetch_max_wait_ms`)."""


def database_name(service: str, topic_prefix: str = "") -> str:
    """The one rule that names a service's database: `medsettle_<service>`, or in a namespace
    (`TOPIC_PREFIX` such as `t1a2b3c4.`) `<prefix without its dot>_<service>`."""
    return f"{topic_prefix.rstrip('.') or 'medsettle'}_{service}"


def database_role(service: str) -> str:
    """The login role of a service: `medsettle_<service>`, the owner of its databases (of every
    namespace too) and of nothing else; not a superuser, may not create databases or roles."""
    return f"medsettle_{service}"


OPERATOR_ROLE = "medsettle_operator"
"""The login role of the operator's tools (`medsettle operator`): may read `OPERATOR_READS`' databases only."""
OPERATOR_READS = ("settlement", "catastrophic", "assistance", "audit")
"""The services whose databases the operator role may read (CONNECT, SELECT): the audit's (trace, KPIs,
alerts, reconcile) and the settlement layers' (what-if re-prices them; they hold identity numbers, no names)."""
GATEWAY_READS = ("settlement", "catastrophic", "assistance")
"""The services whose databases the gateway's role may also read (CONNECT, SELECT): a pre-settlement
(预结算) prices a claim against the person's current accumulators and registry projections, writing nothing."""


def database_readers(service: str) -> tuple[str, ...]:
    """The roles besides its owner that may read `service`'s database (CONNECT, SELECT on its tables)."""
    return tuple(role for role, reads in ((OPERATOR_ROLE, OPERATOR_READS), (database_role("gateway"), GATEWAY_READS))
                 if service in reads)


def health_port_of(service: str, base_port: int = 9400) -> int:
    """A service's default health and metrics port: `base_port` + its index in `SERVICES`
    (enrollment 9400, intake 9401, settlement 9402, catastrophic 9403, assistance 9404, audit 9405, gateway 9406)."""
    return base_port + (SERVICES.index(service) if service in SERVICES else len(SERVICES))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    service_name: str = Field(default="medsettle", alias="SERVICE_NAME")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:19092", alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_security_protocol: SecurityProtocol = Field(default="SASL_SSL", alias="KAFKA_SECURITY_PROTOCOL")
    kafka_username: str | None = Field(default=None, alias="KAFKA_USERNAME")
    kafka_password: SecretStr | None = Field(default=None, alias="KAFKA_PASSWORD")
    kafka_password_file: str | None = Field(default=None, alias="KAFKA_PASSWORD_FILE")
    """A file holding the password (docker-compose's secrets volume); `KAFKA_PASSWORD` wins."""
    kafka_ca_file: str | None = Field(default=None, alias="KAFKA_CA_FILE")
    database_url: str = Field(default="postgresql://127.0.0.1:15432", alias="DATABASE_URL")
    """The server, as the service's role; no database, no password (see the module)."""
    database_name: str | None = Field(default=None, alias="DATABASE_NAME")
    policy_profile: str = Field(default="demo-county", alias="POLICY_PROFILE")
    policy_overlay: str | None = Field(default=None, alias="POLICY_OVERLAY")
    """An overlay YAML of operator inputs merged into the profile (`policy.loader.read_overlay`):
    the values a profile declares `!operator-input` (e.g. the employee scheme's)."""
    batch_max_records: int = Field(default=500, ge=1, alias="BATCH_MAX_RECORDS")
    batch_timeout_ms: int = Field(default=100, ge=1, alias="BATCH_TIMEOUT_MS")
    fetch_min_bytes: int = Field(default=256 * 1024, ge=1, alias="FETCH_MIN_BYTES")
    fetch_max_wait_ms: int = Field(default=None, ge=0, le=10_000, alias="FETCH_MAX_WAIT_MS",  # type: ignore[assignment]
                                   validate_default=False)
    """Adaptive batching: the broker answers a consumer's fetch once `FETCH_MIN_BYTES` are there or
    after `FETCH_MAX_WAIT_MS`, whichever comes first. Under light traffic a record waits at most
    the wait (small batches, low latency); under heavy traffic the bytes fill first and a batch
    grows up to `BATCH_MAX_RECORDS` (per-batch costs — a transaction, a commit, the broker's
    requests — spread over many records). With `fetch_min_bytes=1` (aiokafka's default) every
    record that arrives answers a fetch at once, so at a few hundred a second each batch holds one
    or two records and the broker, PostgreSQL and the services pay per record. Unset: 25 ms for the
    services on the way to a statement, `OBSERVER_FETCH_MAX_WAIT_MS` for the audit, which is on
    no one's way and follows a dozen topics, most of them quiet: each of its consumers asks the
    broker 4 times a second instead of 40 (over TLS, for both sides' CPU)."""
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    db_pool_size: int = Field(default=4, ge=1, alias="DB_POOL_SIZE")
    topic_prefix: str = Field(default="", alias="TOPIC_PREFIX")
    """Prepended to every topic name (isolated test runs, or several environments on one cluster)."""
    processed_retention_s: int = Field(default=7 * 24 * 3600, ge=0, alias="PROCESSED_RETENTION_S")
    """How long `processed_event` keeps an input's key (against the same event at a new offset); a
    redelivery or a replay is skipped by the input watermarks whatever its age (runtime/watermark.py)."""
    consumer_group_override: str | None = Field(default=None, alias="CONSUMER_GROUP")
    metadata_max_age_ms: int = Field(default=30_000, ge=1000, alias="KAFKA_METADATA_MAX_AGE_MS")
    """How often the consumers refresh topic metadata: a new hospital's requests topic reaches
    the intake's pattern subscription within this time."""
    health_host: str = Field(default="127.0.0.1", alias="HEALTH_HOST")
    """Where the service's HTTP endpoint (`/healthz`, `/readyz`, `/metrics`) listens (`0.0.0.0` in a container)."""
    health_port_setting: int | None = Field(default=None, ge=0, le=65535, alias="HEALTH_PORT")
    """Its port; 0 picks a free one (logged, and written to `HEALTH_PORT_FILE`); unset:
    `HEALTH_BASE_PORT` + the service's index in `SERVICES`, so the services of one host never collide."""
    health_base_port: int = Field(default=9400, ge=1, le=65535 - 16, alias="HEALTH_BASE_PORT")
    health_port_file: str | None = Field(default=None, alias="HEALTH_PORT_FILE")
    """A file the service writes its endpoint to once it listens (JSON: host, port, pid)."""
    gateway_host: str = Field(default="127.0.0.1", alias="GATEWAY_HOST")
    """Where the gateway's hospital HTTP API listens (`services.gateway`; `0.0.0.0` in a container)."""
    gateway_port: int = Field(default=8080, ge=0, le=65535, alias="GATEWAY_PORT")
    """Its port (0: a free one, written to `GATEWAY_PORT_FILE`)."""
    gateway_port_file: str | None = Field(default=None, alias="GATEWAY_PORT_FILE")
    """A file the gateway writes its API's endpoint to once it listens (JSON: host, port, url, pid)."""

    @model_validator(mode="after")
    def _fetch_wait(self) -> Settings:
        if self.fetch_max_wait_ms is None:
            self.fetch_max_wait_ms = (OBSERVER_FETCH_MAX_WAIT_MS if self.service_name in OBSERVERS
                                      else CLAIM_PATH_FETCH_MAX_WAIT_MS)
        return self

    @model_validator(mode="after")
    def _as_the_service_role(self) -> Settings:
        """A `DATABASE_URL` without a user means the service's own role (`database_role`)."""
        parts = urlsplit(self.database_url)
        if parts.username is None and parts.hostname:
            netloc = f"{database_role(self.service_name)}@{parts.netloc}"
            self.database_url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return self

    @property
    def database(self) -> str:
        return self.database_name or database_name(self.service_name, self.topic_prefix)

    @property
    def dsn(self) -> str:
        return f"{self.database_url.rstrip('/')}/{self.database}"

    @property
    def health_port(self) -> int:
        """The port of the service's health and metrics endpoint (see `HEALTH_PORT`)."""
        if self.health_port_setting is not None:
            return self.health_port_setting
        return health_port_of(self.service_name, self.health_base_port)

    @property
    def consumer_group(self) -> str:
        return self.consumer_group_override or f"{self.topic_prefix}medsettle.{self.service_name}"

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def kafka_access(self) -> KafkaAccess:
        """Where the broker is and who the service is to it."""
        password = self.kafka_password
        if password is None and self.kafka_password_file:
            password = SecretStr(Path(self.kafka_password_file).read_text().strip())
        return KafkaAccess(self.kafka_bootstrap_servers, self.kafka_security_protocol, self.kafka_username, password,
                           self.kafka_ca_file)

    def kafka_options(self) -> dict[str, Any]:
        """What every aiokafka client of the service is made with (where the broker is, TLS, SASL)."""
        return self.kafka_access().options()


def load_settings(service_name: str, **overrides: object) -> Settings:
    """Settings of one service; keyword overrides win over the environment (tests use them)."""
    settings = Settings(SERVICE_NAME=service_name)
    return settings.model_copy(update=overrides) if overrides else settings
