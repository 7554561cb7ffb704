"""Who may use the console: operators with a password, stored as scrypt hashes (hashlib.scrypt).

The stack generates one operator, `operator`, with a random password into
`.local/secrets/console/operator.password` (0600) and its hash into `users.json` (0600), plus the
key that signs the session cookie (`session.key`). The console reads only the hashes and the key;
the password is in no log and no command line. A signed-in session carries a CSRF token that every
form that changes something (POST) must send back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from tools.stack.secrets import write_private

OPERATOR = "operator"
"""The operator user the stack generates."""
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (base64), the form `users.json` keeps."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(("scrypt", str(_N), str(_R), str(_P), base64.b64encode(salt).decode(),
                     base64.b64encode(digest).decode()))


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


@dataclass(frozen=True)
class ConsoleSecrets:
    """The console's files in the stack's secrets directory (`.local/secrets/console/`)."""

    root: Path

    @property
    def password_file(self) -> Path:
        """The generated operator's password (for the operator to read; the console never does)."""
        return self.root / f"{OPERATOR}.password"

    @property
    def users_file(self) -> Path:
        return self.root / "users.json"

    @property
    def session_key_file(self) -> Path:
        return self.root / "session.key"

    def ensure(self) -> list[str]:
        """Generate what is missing: the operator's password and hash, the session key. Returns what was made."""

        made = []
        if not self.password_file.is_file() or not self.users_file.is_file():
            password = secrets.token_urlsafe(18)
            write_private(self.password_file, password.encode())
            write_private(self.users_file, json.dumps({OPERATOR: hash_password(password)}).encode())
            made.append(f"the console's {OPERATOR} password ({self.password_file})")
        if not self.session_key_file.is_file():
            write_private(self.session_key_file, secrets.token_urlsafe(48).encode())
            made.append("the console's session key")
        return made


class Users:
    """The operators' password hashes (`users.json`: {user: hash})."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self._hashes = dict(hashes)

    @classmethod
    def read(cls, path: Path) -> Users:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{path}: not a mapping of user to password hash")
        return cls(data)

    def check(self, user: str, password: str) -> bool:
        stored = self._hashes.get(user)
        if stored is None:  # as slow as a wrong password, so the answer does not tell who exists
            verify_password(password, hash_password("x", b"0" * 16))
            return False
        return verify_password(password, stored)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
