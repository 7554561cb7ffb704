"""The stack's secrets, generated at stack init into `.local/secrets/` (a 0700 directory, 0600 files,
git-ignored with the rest of `.local/`): never committed, never printed, never on a command line.

    secrets/ca.crt                  the local CA's certificate (clients verify the broker with it)
    secrets/ca.key                  the CA's private key (signs the broker's certificate)
    secrets/broker.pem              the broker's private key and certificate (PEM, read by Kafka as its
                                    keystore): SAN 127.0.0.1, localhost (+ `kafka` in docker-compose),
                                    CN `kafka-broker`, for TLS on every listener and as the broker's own
                                    client certificate on the mutual-TLS INTERNAL and CONTROLLER listeners
    secrets/kafka/<principal>.password   the SCRAM password of `admin`, each service and `intake`
    secrets/hospitals/<id>.json     credentials the demo issued for its hospitals (`operator
                                    hospital-credentials` shows a hospital's once and keeps nothing)

Keys are ECDSA P-256 made with the `cryptography` package. The broker stores only SCRAM hashes
(salted, 8192 iterations of PBKDF2-HMAC-SHA-512), never a password.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets as token
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from runtime.kafka_access import KafkaAccess

BROKER_CN = "kafka-broker"
"""The broker's identity on its mutual-TLS listeners (`User:kafka-broker`, a super user); no SCRAM
user can be given this name (`principals.check_user_name`)."""
DEFAULT_SANS = ("127.0.0.1", "localhost")
CA_DAYS = 3650
BROKER_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)


def secrets_dir(local: Path) -> Path:
    return local / "secrets"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by its owner only (0600), atomically."""
    _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class StackSecrets:
    """The secrets of one stack directory (`Paths.local`)."""

    def __init__(self, local: Path, *, root: Path | None = None) -> None:
        self.root = root or secrets_dir(local)

    @classmethod
    def at(cls, root: Path) -> StackSecrets:
        """Secrets kept directly in `root` (docker-compose's secrets volume)."""
        return cls(root, root=root)

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def broker_pem(self) -> Path:
        return self.root / "broker.pem"

    def password_file(self, principal: str) -> Path:
        return self.root / "kafka" / f"{principal}.password"

    @property
    def hospitals(self) -> Path:
        return self.root / "hospitals"

    def hospital_file(self, hospital_id: str) -> Path:
        return self.hospitals / f"{hospital_id}.json"

    # ------------------------------------------------------------------ generation

    def ensure(self, principals: Iterable[str], sans: Iterable[str] = DEFAULT_SANS) -> list[str]:
        """Create what is missing: the CA, the broker's certificate (again when its names change or
        it expires within 30 days), a password per principal. Returns what it created."""
        _private_dir(self.root)
        made = []
        if not (self.ca_cert.is_file() and self.ca_key.is_file()):
            self._new_ca()
            made.append("CA")
            self.broker_pem.unlink(missing_ok=True)
        if not self._broker_cert_ok(list(sans)):
            self._new_broker_cert(list(sans))
            made.append("broker certificate")
        for principal in principals:
            if not self.password_file(principal).is_file():
                write_private(self.password_file(principal), token.token_urlsafe(32).encode())
                made.append(f"password of {principal}")
        return made

    def password(self, principal: str) -> SecretStr:
        try:
            return SecretStr(self.password_file(principal).read_text().strip())
        except FileNotFoundError:
            raise FileNotFoundError(f"no Kafka password for {principal} in {self.root} (start the stack: "
                                    "./medsettle stack start)") from None

    def access(self, bootstrap: str, principal: str) -> KafkaAccess:
        """How `principal` (admin, a service) reaches the broker at `bootstrap` (without a password while
        the stack has not generated one: a client made with it says so)."""
        try:
            password: SecretStr | None = self.password(principal)
        except FileNotFoundError:
            password = None
        return KafkaAccess(bootstrap, "SASL_SSL", principal, password, str(self.ca_cert))

    def _new_ca(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "medsettle local stack"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "medsettle local CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False, decipher_only=False),
                               critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        write_private(self.ca_key, _key_pem(key))
        write_private(self.ca_cert, _cert_pem(cert))

    def _broker_cert_ok(self, sans: list[str]) -> bool:
        from cryptography import x509

        if not self.broker_pem.is_file():
            return False
        try:
            cert = x509.load_pem_x509_certificate(self.broker_pem.read_bytes())
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, x509.ExtensionNotFound):
            return False
        have = {str(n) for n in names.get_values_for_type(x509.IPAddress)} | set(names.get_values_for_type(x509.DNSName))
        return set(sans) <= have and cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE

    def _new_broker_cert(self, sans: list[str]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for n in sans:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
                .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=BROKER_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        write_private(self.broker_pem, _key_pem(key) + _cert_pem(cert) + self.ca_cert.read_bytes())

    # ------------------------------------------------------------------ hospitals (the demo's)

    def save_hospital(self, hospital_id: str, credentials: dict[str, Any]) -> Path:
        path = self.hospital_file(hospital_id)
        write_private(path, json.dumps(credentials, indent=2).encode() + b"\n")
        return path


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _cert_pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(cert.public_bytes(serialization.Encoding.PEM))


def mutual_tls_context(s: StackSecrets) -> Any:
    """A TLS context that presents the broker's own certificate: `User:kafka-broker` on the INTERNAL
    listener. Only the stack uses it, once per start, to set the SCRAM credentials (no SCRAM user
    exists before; see `tools.stack.principals.bootstrap`)."""
    import ssl

    ctx = ssl.create_default_context(cafile=str(s.ca_cert))
    ctx.load_cert_chain(str(s.broker_pem))
    return ctx
