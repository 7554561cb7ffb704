"""PostgreSQL least privilege, against the real server (docs/architecture.md, "Security").

Each service logs in as its own role (`medsettle_<service>`), which owns its database and nothing
else, is no superuser, may not run server programs or read server files; every login needs its
SCRAM password; the generated passwords live in 0600 files that git ignores; the server log keeps
no statement and no identity number in clear; the audit keeps no names; the operator role may
only read the audit database.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from contracts import CommandRejected, EnrollPerson, encode, make_envelope
from contracts.identity import make_identity_number
from contracts.topics import ENROLLMENT_COMMANDS, ENROLLMENT_REJECTIONS
from runtime.db import open_pool
from runtime.settings import GATEWAY_READS, OPERATOR_ROLE, SERVICES, database_name, database_readers, database_role
from services.audit.app import make_spec
from services.audit.config import AuditConfig
from services.settlement.app import SPEC as SETTLEMENT_SPEC
from tests.integration.harness import Namespace, running
from tests.integration.test_stack_operations import local_stack_serves
from tools.stack.common import PG_ROLES, paths, read_state
from tools.stack.connection import passfile
from tools.stack.pg import database_dsn, log_file, with_user
from tools.stack.pg_secrets import PgSecrets, secrets_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def connected(server: str, database: str, role: str) -> AsyncIterator[asyncpg.Connection]:
    """`database` as `role`, the password from the session's password file."""
    conn = await asyncpg.connect(database_dsn(with_user(server, role), database), passfile=passfile(), timeout=15)
    try:
        yield conn
    finally:
        await conn.close()


def empty_passfile(tmp_path: Path) -> str:
    path = tmp_path / "pgpass"
    path.write_text("")
    path.chmod(0o600)
    return str(path)


# ---------------------------------------------------------------------------------- acceptance


async def test_a_service_role_cannot_connect_to_another_services_database(database_url: str) -> None:
    for service in SERVICES:
        role = database_role(service)
        async with connected(database_url, database_name(service), role) as own:
            assert await own.fetchval("SELECT current_user") == role
        for other in [*(database_name(s) for s in SERVICES if s != service and role not in database_readers(s)),
                      "postgres", "template1"]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
                await asyncpg.connect(database_dsn(with_user(database_url, role), other), passfile=passfile())


async def test_the_gateway_role_may_read_the_layers_databases_and_change_nothing_there(ns: Namespace) -> None:
    """Its pre-settlements read the settlement layers' accumulators and claims (GATEWAY_READS)."""
    from services.assistance.app import SPEC as ASSISTANCE_SPEC
    from services.catastrophic.app import SPEC as CATASTROPHIC_SPEC

    role = database_role("gateway")
    database_url = ns.server_url
    assert set(GATEWAY_READS) == {"settlement", "catastrophic", "assistance"}
    for spec in (SETTLEMENT_SPEC, CATASTROPHIC_SPEC, ASSISTANCE_SPEC):  # each layer's tables, made by the layer
        layer = ns.settings(spec.name)
        await (await open_pool(layer.database_url, layer.database, *spec.migrations, size=1)).close()
    for service in GATEWAY_READS:
        async with connected(database_url, ns.settings(service).database, role) as conn:
            assert await conn.fetchval("SELECT count(*) >= 0 FROM accumulator")
            for sql in ("INSERT INTO accumulator (person_id, insurance_year) VALUES ('x', 2026)",
                        "UPDATE accumulator SET claims = claims + 1", "DELETE FROM ledger",
                        "TRUNCATE layer_claim", "CREATE TABLE mine (x int)"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql)
    for service in ("enrollment", "intake", "audit"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
            await asyncpg.connect(database_dsn(with_user(database_url, role), ns.settings(service).database),
                                  passfile=passfile())


async def test_a_service_role_cannot_copy_from_or_to_a_program(database_url: str) -> None:
    marker = Path(f"/tmp/medsettle-copy-from-program-{uuid.uuid4().hex}")
    async with connected(database_url, database_name("settlement"), database_role("settlement")) as conn:
        await conn.execute("CREATE TEMP TABLE loot (line text)")
        for sql in (f"COPY loot FROM PROGRAM 'touch {marker}'", f"COPY loot TO PROGRAM 'touch {marker}'",
                    f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="pg_execute_server_program"):
                await conn.execute(sql)
    assert not marker.exists()


async def test_a_service_role_cannot_read_or_write_server_files(database_url: str) -> None:
    async with connected(database_url, database_name("enrollment"), database_role("enrollment")) as conn:
        await conn.execute("CREATE TEMP TABLE loot (line text)")
        for sql in ("SELECT pg_read_file('/etc/passwd')", "SELECT pg_read_binary_file('/etc/passwd')",
                    "SELECT pg_ls_dir('.')", "SELECT pg_stat_file('postgresql.conf')",
                    "SELECT lo_import('/etc/passwd')", "COPY loot FROM '/etc/passwd'",
                    "COPY loot TO '/tmp/medsettle-copy-to-file'", "SELECT * FROM pg_hba_file_rules",
                    "ALTER SYSTEM SET log_statement = 'all'", "SET log_min_error_statement = 'error'",
                    "CREATE DATABASE medsettle_mine", "CREATE ROLE medsettle_mine"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)


async def test_a_connection_without_a_password_is_refused(database_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    nothing = empty_passfile(tmp_path)
    for role in (database_role("settlement"), OPERATOR_ROLE, urlsplit_user(database_url)):
        with pytest.raises(asyncpg.InvalidPasswordError, match="password authentication failed"):
            await asyncpg.connect(database_dsn(with_user(database_url, role), "postgres"), passfile=nothing)


async def test_a_wrong_password_is_refused(database_url: str, tmp_path: Path) -> None:
    nothing = empty_passfile(tmp_path)
    for role in (database_role("audit"), urlsplit_user(database_url)):
        with pytest.raises(asyncpg.InvalidPasswordError, match="password authentication failed"):
            await asyncpg.connect(database_dsn(with_user(database_url, role), "postgres"), passfile=nothing,
                                  password="not-" + uuid.uuid4().hex)


async def test_no_service_role_is_a_superuser_or_holds_a_dangerous_privilege(database_url: str) -> None:
    admin = await asyncpg.connect(database_dsn(database_url, "postgres"), passfile=passfile())
    try:
        for role in (*(database_role(s) for s in SERVICES), OPERATOR_ROLE):
            attributes = await admin.fetchrow(
                """SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin
                   FROM pg_roles WHERE rolname = $1""", role)
            assert attributes is not None, f"no role {role}"
            assert dict(attributes) == {"rolsuper": False, "rolcreatedb": False, "rolcreaterole": False,
                                        "rolreplication": False, "rolbypassrls": False, "rolcanlogin": True}, role
            member_of = await admin.fetch("""SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                                             JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1""", role)
            assert member_of == [], role
            for powerful in ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files",
                             "pg_read_all_data", "pg_write_all_data", "pg_signal_backend", "pg_monitor"):
                assert not await admin.fetchval("SELECT pg_has_role($1, $2, 'USAGE')", role, powerful), (role, powerful)
        owners = {r["datname"]: r["owner"] for r in await admin.fetch(
            "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = ANY($1::text[])",
            [database_name(s) for s in SERVICES])}
        assert owners == {database_name(s): database_role(s) for s in SERVICES}
        assert not await admin.fetchval("SELECT count(*) FROM pg_database WHERE datdba = "
                                        "(SELECT oid FROM pg_roles WHERE rolname = $1)", OPERATOR_ROLE)
    finally:
        await admin.close()


def urlsplit_user(url: str) -> str:
    from urllib.parse import urlsplit

    user = urlsplit(url).username
    assert user
    return user


# ---------------------------------------------------------------------------------- secrets


def test_the_generated_passwords_are_private_and_never_in_git(kafka_bootstrap: str) -> None:
    if not local_stack_serves(kafka_bootstrap):
        pytest.skip("the tests do not run on this checkout's local stack")
    root = secrets_dir(paths().local)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    secrets = PgSecrets.of(paths())
    assert stat.S_IMODE(secrets.directory.stat().st_mode) == 0o700
    files = [secrets.passfile(), *(secrets.passfile(r) for r in PG_ROLES)]
    for f in files:
        mode = f.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.geteuid(), f
    ignored = subprocess.run(["git", "check-ignore", "-q", str(secrets.passfile())], cwd=ROOT)
    assert ignored.returncode == 0, "the secrets are not git-ignored"
    tracked = subprocess.run(["git", "ls-files", "--", str(root)], cwd=ROOT, capture_output=True, text=True)
    assert tracked.stdout == ""

    passwords = [secrets.password(r) for r in PG_ROLES]
    printed = subprocess.run([sys.executable, "-m", "tools.stack", "env"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    assert "PGPASSFILE=" in printed and f"DATABASE_URL=postgresql://{PG_ROLES[0]}@" in printed
    state = paths().state_file.read_text()
    base = Path(read_state()["postgres"]["base"])
    server_logs = "".join(f.read_text(errors="replace") for f in log_file(base).parent.glob("postgres.log*"))
    service_logs = "".join(f.read_text(errors="replace") for f in paths().logs.glob("*") if f.is_file())
    for password in passwords:
        for where, text in (("stack env", printed), ("stack.json", state), ("postgres.log", server_logs),
                            ("the services' logs", service_logs)):
            assert password not in text, f"a password in {where}"
    hba = (base / "data" / "pg_hba.conf").read_text().splitlines()
    methods = {line.split()[-1] for line in hba if line.strip() and not line.startswith("#")}
    assert methods == {"scram-sha-256"}


# ---------------------------------------------------------------------------------- personal data


async def test_the_server_log_keeps_no_statement_and_masks_identity_numbers(kafka_bootstrap: str,
                                                                           database_url: str) -> None:
    if not local_stack_serves(kafka_bootstrap):
        pytest.skip("the tests do not run on this checkout's local stack")
    base = Path(read_state()["postgres"]["base"])
    identity = make_identity_number("110101", date(1990, 3, 7), 123)
    name = f"张{uuid.uuid4().hex[:6]}"
    async with connected(database_url, database_name("enrollment"), database_role("enrollment")) as conn:
        await conn.execute("CREATE TEMP TABLE person_probe (person_id text PRIMARY KEY, name text NOT NULL)")
        await conn.execute("INSERT INTO person_probe VALUES ($1, $2)", identity, name)
        with pytest.raises(asyncpg.UniqueViolationError):  # DETAIL would name the key's value
            await conn.execute(f"INSERT INTO person_probe VALUES ('{identity}', '{name}')")
        with pytest.raises(asyncpg.NotNullViolationError):  # DETAIL would show the failing row
            await conn.execute("INSERT INTO person_probe VALUES ($1, NULL)", identity + "0")
        with pytest.raises(asyncpg.NumericValueOutOfRangeError):  # the message itself quotes the value
            await conn.execute("SELECT $1::text::int", identity)
    masked = identity[:6] + "*" * 8 + identity[-4:]
    deadline = time.monotonic() + 30
    while masked not in (text := "".join(f.read_text(errors="replace")
                                         for f in log_file(base).parent.glob("postgres.log*"))):
        assert time.monotonic() < deadline, "the error did not reach postgres.log"
        await asyncio.sleep(0.2)
    assert identity not in text and name not in text
    assert "INSERT INTO person_probe" not in text and "Failing row" not in text and "Key (" not in text


async def test_the_audit_keeps_no_names_and_services_use_their_own_roles(ns: Namespace) -> None:
    identity = make_identity_number("500242", date(1971, 5, 9), 77)
    name = f"李{uuid.uuid4().hex[:6]}"
    person = EnrollPerson(person_id=identity, name=name, scheme="resident", categories=("ordinary",),
                          payment_date=date(2025, 11, 20), coverage_year=2026)
    rejected = json.loads(encode(make_envelope(CommandRejected(
        command_event_id=str(uuid.uuid4()), command_type="EnrollPerson", subject_id=identity,
        reason_code="INVALID_FIELD", reason="test"), correlation_id=identity, producer="enrollment")))
    rejected["payload"].update(name=name, reason_code="NOT_A_CODE")  # a name where none belongs, a contract broken
    async with running(make_spec(AuditConfig(reconcile_interval_s=0)), ns.settings("audit")):
        await ns.publish(ENROLLMENT_COMMANDS, [(identity, person)])
        await ns.publish(ENROLLMENT_REJECTIONS, [(identity, json.dumps(rejected).encode())])
        conn = await ns.connect("audit")
        try:
            deadline = time.monotonic() + 60
            while len(stored := await conn.fetch("SELECT topic, event_type, payload::text AS payload, error "
                                                 "FROM event_store ORDER BY topic")) < 2:
                assert time.monotonic() < deadline, "the audit did not store the two records"
                await asyncio.sleep(0.2)
            users = {r["usename"] for r in await conn.fetch(
                "SELECT usename FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                ns.settings("audit").database)}
        finally:
            await conn.close()
    assert [(r["topic"], r["event_type"], r["error"] is None) for r in stored] == [
        (ENROLLMENT_COMMANDS, "EnrollPerson", True), (ENROLLMENT_REJECTIONS, "CommandRejected", False)]
    for row in stored:
        assert identity in row["payload"] and name not in row["payload"] and '"name"' not in row["payload"]
    assert users == {database_role("audit")}  # the service's pool: its own role


async def test_the_operator_role_may_read_the_audit_and_layer_databases_and_nothing_else(ns: Namespace) -> None:
    audit = ns.settings("audit")
    pool = await open_pool(audit.database_url, audit.database, *make_spec().migrations, size=1)  # as the audit
    await pool.close()
    async with connected(ns.server_url, audit.database, OPERATOR_ROLE) as conn:
        assert await conn.fetchval("SELECT count(*) FROM event_store") == 0
        assert await conn.fetchval("SELECT count(*) FROM reconciled_claim") == 0
        for sql in ("INSERT INTO reconciled_claim (claim_id, reconciled_at) VALUES ('x', now())",
                    "UPDATE claim_activity SET checked = true", "DELETE FROM alert", "CREATE TABLE mine (v int)",
                    "TRUNCATE event_store"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    settlement = ns.settings("settlement")  # what-if reads the layers' databases: read, never write
    pool = await open_pool(settlement.database_url, settlement.database, *SETTLEMENT_SPEC.migrations, size=1)
    await pool.close()
    async with connected(ns.server_url, settlement.database, OPERATOR_ROLE) as conn:
        assert await conn.fetchval("SELECT count(*) FROM accumulator") == 0
        for sql in ("DELETE FROM accumulator", "CREATE TABLE mine (v int)", "TRUNCATE ledger"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    for service in ("enrollment", "intake"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
            await asyncpg.connect(database_dsn(with_user(ns.server_url, OPERATOR_ROLE), ns.settings(service).database),
                                  passfile=passfile())


async def test_a_service_does_not_create_its_database(database_url: str) -> None:
    """A service finds its database or stops with a message saying who creates it."""
    from runtime.db import DatabaseUnavailable, ensure_database

    missing = f"t_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(DatabaseUnavailable, match=f"database {missing} does not exist.*stack start"):
        await ensure_database(with_user(database_url, database_role("audit")), missing)
