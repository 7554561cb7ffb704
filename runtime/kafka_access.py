"""How a Kafka client reaches and authenticates to the broker: the one place every client of the
code base (the services' FastStream broker, publisher and projections, the tools, the tests) takes
its connection options from.

The platform's broker accepts clients only over TLS with SASL/SCRAM-SHA-512 (`SASL_SSL`): a
principal per service, `admin` for operators and the stack's tooling, `hospital-<id>` per
hospital. `PLAINTEXT` remains possible for a broker of one's own without security (e.g.
`MEDSETTLE_TEST_BACKEND=testcontainers`); the platform's stacks never offer it.

The password is a `SecretStr`: it is never part of a `repr`, a log line or a command line; child
processes receive it in their environment (`env()`), which only their user can read.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from faststream.security import BaseSecurity, SASLScram512
from pydantic import SecretStr

SecurityProtocol = Literal["SASL_SSL", "PLAINTEXT"]
SASL_MECHANISM = "SCRAM-SHA-512"


class KafkaAccessError(ValueError):
    """The settings cannot make a client: a credential or the CA is missing."""


@dataclass(frozen=True)
class KafkaAccess:
    """Where the broker is and who this client is."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "SASL_SSL"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None
    """PEM file of the CA that signed the broker's certificate (None: the system's CAs)."""
    ca_pem: str | None = None
    """The same as text (a hospital's credentials file carries it inline); wins over `ca_file`."""

    def __repr__(self) -> str:
        return (f"KafkaAccess({self.bootstrap_servers!r}, {self.security_protocol}, user={self.username!r}, "
                f"ca={self.ca_file or ('inline' if self.ca_pem else None)!r})")

    __str__ = __repr__

    @property
    def secured(self) -> bool:
        return self.security_protocol == "SASL_SSL"

    def as_user(self, username: str, password: str | SecretStr) -> KafkaAccess:
        """The same broker and CA, another principal."""
        secret = password if isinstance(password, SecretStr) else SecretStr(password)
        return replace(self, username=username, password=secret)

    def ca_text(self) -> str | None:
        """The CA certificate as text (what a hospital's credentials carry)."""
        return Path(self.ca_file).read_text() if self.ca_file else self.ca_pem

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the broker's certificate and its name (the certificate names 127.0.0.1 and localhost)."""
        if self.ca_pem:
            return ssl.create_default_context(cadata=self.ca_pem)
        if self.ca_file and not Path(self.ca_file).is_file():
            raise KafkaAccessError(f"the Kafka CA certificate {self.ca_file} does not exist (KAFKA_CA_FILE)")
        return ssl.create_default_context(cafile=self.ca_file)

    def _credentials(self) -> tuple[str, str]:
        if not self.username or self.password is None or not self.password.get_secret_value():
            raise KafkaAccessError(f"no Kafka credentials for {self.username or 'this client'}: set KAFKA_USERNAME and "
                                   "KAFKA_PASSWORD (or KAFKA_PASSWORD_FILE), or start the local stack, which "
                                   "generates them (./medsettle stack start)")
        return self.username, self.password.get_secret_value()

    @property
    def servers(self) -> list[str]:
        """`bootstrap_servers` as the list aiokafka and FastStream take (`host:port,host:port`: a
        cluster of several brokers; a string with commas would be read as one host)."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def options(self) -> dict[str, Any]:
        """Keyword arguments of every aiokafka client (producer, consumer, admin)."""
        opts: dict[str, Any] = {"bootstrap_servers": self.servers}
        if self.secured:
            username, password = self._credentials()
            opts.update(security_protocol="SASL_SSL", sasl_mechanism=SASL_MECHANISM, sasl_plain_username=username,
                        sasl_plain_password=password, ssl_context=self.ssl_context())
        return opts

    def faststream_security(self) -> BaseSecurity | None:
        """FastStream's security object for a `KafkaBroker` (None: plaintext)."""
        if not self.secured:
            return None
        username, password = self._credentials()
        return SASLScram512(username=username, password=password, ssl_context=self.ssl_context(), use_ssl=True)

    def env(self) -> dict[str, str]:
        """The environment variables a child process (a service) reads these settings from
        (`runtime.settings.Settings`): the password included, never a command-line argument."""
        out = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers, "KAFKA_SECURITY_PROTOCOL": self.security_protocol}
        if self.username:
            out["KAFKA_USERNAME"] = self.username
        if self.password is not None:
            out["KAFKA_PASSWORD"] = self.password.get_secret_value()
        if self.ca_file:
            out["KAFKA_CA_FILE"] = self.ca_file
        return out
