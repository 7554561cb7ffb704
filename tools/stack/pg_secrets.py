"""The PostgreSQL passwords of the local stack, generated into `.local/secrets/postgres/`.

    .local/secrets/                     0700, git-ignored (all of `.local/` is), never in an image;
                                        the other systems' secrets beside (`kafka/`: the Kafka part)
      postgres/                         0700
        <role>.pgpass                   0600: one line `127.0.0.1:*:*:<role>:<password>`
                                        (libpq's password-file format, which asyncpg and psql read):
                                        `medsettle_admin` (the stack's superuser), `medsettle_<service>`
                                        (one per service), `medsettle_operator` (the operator's tools)
        pgpass                          0600: all of them, the stack owner's password file
                                        (`PGPASSFILE` of the tools and the tests)

One directory per system, one file per principal, so each process is given (as `PGPASSFILE`, a
path in its environment) only the file of the principal it runs as. A password is generated
(`secrets.token_urlsafe`) when the PostgreSQL cluster is initialised, or when a role is added; it is
never printed, never logged, never put on a command line or in a URL, and it reaches the server
only as a SCRAM-SHA-256 verifier (`scram_verifier`), so even a logged `ALTER ROLE` carries no
password. `write_private` is the one way a secret file is written (0600 from the start, replaced
atomically); `secrets_dir`, `private_dir` and `write_private` have the signatures of the Kafka
part's `tools.stack.secrets`, into which they fold.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from tools.stack.common import HOST, Paths, StackError

SCRAM_ITERATIONS = 4096
"""PostgreSQL's own default (`scram_iterations`)."""


# --------------------------------------------------------------------------- files


def secrets_dir(local: Path) -> Path:
    """The secrets of the stack directory `local` (`Paths.local`)."""
    return local / "secrets"


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter (0700), created if missing."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `path` readable and writable by its owner only (0600 from the start; replaced atomically)
    into a directory only its owner can enter."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def new_password() -> str:
    """256 random bits, URL-safe: no character a password file or a URL would have to escape."""
    return secrets.token_urlsafe(32)


# --------------------------------------------------------------------------- PostgreSQL


def pgpass_line(role: str, password: str, host: str = HOST) -> str:
    """A password-file line for `role` on `host`, any port and database (the port may move)."""
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    return f"{esc(host)}:*:*:{esc(role)}:{esc(password)}\n"


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677; what libpq's
    `PQencryptPasswordConn` computes). `ALTER ROLE … PASSWORD '<verifier>'` sets the password
    without the password itself ever reaching the server. (The generated passwords are ASCII, for
    which SASLprep changes nothing.)"""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class PgSecrets:
    """The PostgreSQL passwords of one stack, one password file per role under `directory`."""

    def __init__(self, directory: Path, host: str = HOST) -> None:
        self.directory = directory
        self.host = host
        self.kept = ""
        """Lines of another password file the owner's file keeps (`keep_lines`)."""

    @classmethod
    def of(cls, p: Paths) -> PgSecrets:
        return cls(secrets_dir(p.local) / "postgres")

    def passfile(self, role: str | None = None) -> Path:
        """The password file of `role`, or with None the stack owner's (every role)."""
        return self.directory / (f"{role}.pgpass" if role else "pgpass")

    def has(self, role: str) -> bool:
        return self.passfile(role).is_file()

    def password(self, role: str) -> str:
        try:
            line = self.passfile(role).read_text().strip()
        except FileNotFoundError:
            raise StackError(f"no password for the PostgreSQL role {role} in {self.directory}") from None
        return line.split(":", 4)[4].replace("\\:", ":").replace("\\\\", "\\")

    def generate(self, roles: Iterable[str], *, replace: bool = False) -> list[str]:
        """A new password for each role without one (every role with `replace`); returns those
        generated. The owner's file is written again from all of them."""
        private_dir(self.directory.parent)  # the secrets directory: no one else may even list it
        made = []
        for role in roles:
            if replace or not self.has(role):
                write_private(self.passfile(role), pgpass_line(role, new_password(), self.host).encode())
                made.append(role)
        self.write_owner_file()
        return made

    def roles(self) -> list[str]:
        return sorted(f.name.removesuffix(".pgpass") for f in self.directory.glob("*.pgpass"))

    def write_owner_file(self) -> Path:
        lines = "".join(pgpass_line(r, self.password(r), self.host) for r in self.roles()) + self.kept
        write_private(self.passfile(), lines.encode())
        return self.passfile()

    def keep_lines(self, text: str) -> None:
        """Keep the lines of another password file (a server's admin) after this stack's in the owner's file."""
        self.kept = text if not text or text.endswith("\n") else text + "\n"
        self.write_owner_file()

    def passwords(self, roles: Iterable[str]) -> Mapping[str, str]:
        return {role: self.password(role) for role in roles}

    def wipe(self) -> None:
        """Forget every password (the cluster they were set on is gone)."""
        if self.directory.is_dir():
            for f in self.directory.iterdir():
                f.unlink()
