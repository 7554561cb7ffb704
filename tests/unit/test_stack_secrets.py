"""The local stack's generated passwords (tools.stack.pg_secrets) and the checks around them: files
only their owner can read, libpq's password-file format, SCRAM verifiers instead of passwords, a
cluster that lets clients in without a password refused, service connections without a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from runtime.settings import load_settings
from tools.stack.common import PG_ADMIN, PG_ROLES, StackError
from tools.stack.pg import check_credentials, with_user
from tools.stack.pg_secrets import PgSecrets, pgpass_line, scram_verifier, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_secret_file_is_its_owners_alone(tmp_path: Path) -> None:
    secrets = PgSecrets(tmp_path / "secrets" / "postgres")
    assert secrets.generate(PG_ROLES) == list(PG_ROLES)
    assert mode(tmp_path / "secrets") == mode(secrets.directory) == 0o700
    files = sorted(secrets.directory.iterdir())
    assert [f.name for f in files] == sorted([*(f"{r}.pgpass" for r in PG_ROLES), "pgpass"])
    assert all(mode(f) == 0o600 for f in files)
    owner = secrets.passfile().read_text().splitlines()
    assert owner == [pgpass_line(r, secrets.password(r)).rstrip("\n") for r in sorted(PG_ROLES)]
    assert len({secrets.password(r) for r in PG_ROLES}) == len(PG_ROLES)  # each its own, 256 bits
    assert all(len(secrets.password(r)) >= 43 for r in PG_ROLES)


def test_a_second_generation_keeps_the_passwords_unless_told_to_replace_them(tmp_path: Path) -> None:
    secrets = PgSecrets(tmp_path / "postgres")
    secrets.generate([PG_ADMIN])
    first = secrets.password(PG_ADMIN)
    assert secrets.generate([PG_ADMIN, "medsettle_audit"]) == ["medsettle_audit"]
    assert secrets.password(PG_ADMIN) == first
    secrets.generate([PG_ADMIN], replace=True)
    assert secrets.password(PG_ADMIN) != first
    secrets.wipe()
    assert not secrets.has(PG_ADMIN)


def test_write_private_replaces_a_file_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "d" / "secret"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.read_text() == "new" and mode(path) == 0o600 and mode(path.parent) == 0o700


def test_password_file_lines_escape_what_libpq_would_split_on() -> None:
    assert pgpass_line("r", "a:b\\c") == "127.0.0.1:*:*:r:a\\:b\\\\c\n"


def test_the_scram_verifier_is_postgresqls() -> None:
    """RFC 5802: SaltedPassword = Hi(password, salt, i); StoredKey = H(HMAC(SaltedPassword, "Client
    Key")); ServerKey = HMAC(SaltedPassword, "Server Key"), as PostgreSQL stores it."""
    salt = bytes(range(16))
    verifier = scram_verifier("pencil", salt, 4096)
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    assert verifier == f"SCRAM-SHA-256$4096:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"
    assert "pencil" not in verifier and scram_verifier("pencil") != scram_verifier("pencil")  # salted


def test_a_cluster_that_trusts_or_whose_password_is_gone_is_refused(tmp_path: Path) -> None:
    data, secrets = tmp_path / "data", PgSecrets(tmp_path / "secrets")
    data.mkdir()
    (data / "pg_hba.conf").write_text("# TYPE DATABASE USER ADDRESS METHOD\nlocal all all trust\n")
    secrets.generate([PG_ADMIN])
    with pytest.raises(StackError, match=r"without a password.*stack reset"):
        check_credentials(data, secrets)
    (data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 scram-sha-256\n")
    check_credentials(data, secrets)
    secrets.wipe()
    with pytest.raises(StackError, match=r"password of the PostgreSQL cluster.*stack reset"):
        check_credentials(data, secrets)


def test_a_service_logs_in_as_its_own_role_and_no_url_carries_a_password() -> None:
    assert with_user("postgresql://medsettle_admin:secret@127.0.0.1:15432", "medsettle_audit") == \
        "postgresql://medsettle_audit@127.0.0.1:15432"
    settings = load_settings("settlement", database_url="postgresql://127.0.0.1:1")  # an override is taken as is
    assert settings.dsn == "postgresql://127.0.0.1:1/medsettle_settlement"
    from runtime.settings import Settings

    assert Settings(SERVICE_NAME="settlement", DATABASE_URL="postgresql://db:5432").dsn == \
        "postgresql://medsettle_settlement@db:5432/medsettle_settlement"
