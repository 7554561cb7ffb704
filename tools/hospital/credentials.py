"""A hospital's credentials: who it is to the broker (`hospital-<id>`, SCRAM over TLS) and where the
broker is. An operator issues them (`./medsettle operator hospital-credentials H001`, shown once, as
this JSON file's content); the hospital gives them to its client with `--credentials FILE` (or
`MEDSETTLE_CREDENTIALS=FILE`), and then publishes to `hospital.<id>.requests` and reads
`hospital.<id>.statements` — the only topics it may use.

    {"hospital_id": "H001", "username": "hospital-H001", "password": "…",
     "bootstrap_servers": "127.0.0.1:19092", "security_protocol": "SASL_SSL", "ca_pem": "-----BEGIN …"}

The file holds a password: keep it readable by its owner only (the demo writes its hospitals' with
mode 0600 into `.local/secrets/hospitals/`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from runtime.kafka_access import KafkaAccess


class CredentialsError(ValueError):
    """A credentials file that cannot be used (the message says why)."""


@dataclass(frozen=True)
class HospitalCredentials:
    hospital_id: str
    access: KafkaAccess

    def to_json(self) -> dict[str, Any]:
        a = self.access
        assert a.username and a.password is not None
        return {"hospital_id": self.hospital_id, "username": a.username, "password": a.password.get_secret_value(),
                "bootstrap_servers": a.bootstrap_servers, "security_protocol": a.security_protocol,
                "ca_pem": a.ca_pem}

    @classmethod
    def from_json(cls, data: Any, where: str = "credentials") -> HospitalCredentials:
        try:
            return cls(str(data["hospital_id"]), KafkaAccess(
                str(data["bootstrap_servers"]), data.get("security_protocol", "SASL_SSL"), str(data["username"]),
                SecretStr(str(data["password"])), ca_pem=data.get("ca_pem")))
        except (KeyError, TypeError) as exc:
            raise CredentialsError(f"{where}: not a hospital's credentials (missing {exc})") from None

    @classmethod
    def load(cls, path: Path) -> HospitalCredentials:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CredentialsError(f"{path}: not JSON ({exc.msg})") from None
        return cls.from_json(data, str(path))

    def at(self, bootstrap: str | None) -> HospitalCredentials:
        """The same hospital at another address (`--bootstrap`)."""
        if not bootstrap:
            return self
        from dataclasses import replace

        return HospitalCredentials(self.hospital_id, replace(self.access, bootstrap_servers=bootstrap))
