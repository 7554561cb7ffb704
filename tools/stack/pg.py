"""The local PostgreSQL 15 cluster (initdb + pg_ctl, 127.0.0.1 only, SCRAM-SHA-256), its roles and
databases.

Least privilege: `initdb` makes the superuser `medsettle_admin` with a generated password (the
stack and the tests' fixtures use it, never a service); `pg_hba.conf` (infra/postgres/pg_hba.conf,
written on every start) lets nobody in without SCRAM-SHA-256. `provision` makes one login role per
service, `medsettle_<service>` (no superuser, may not create databases or roles, replicate or
bypass row security, member of no role: so no `COPY … FROM PROGRAM`, no server files), which
owns its database `medsettle_<service>` and nothing else, and `medsettle_operator`, which may read
the audit database only. Every platform database (and `postgres`, `template1`) is closed to
PUBLIC: a role may connect to the databases it owns (or, the operator, is granted) only.
Passwords: tools/stack/pg_secrets.py.

The server's log, `<base>/log/postgres.log`, is bounded: its stderr goes through a rotating writer
(`tools.stack.logpipe`: `LOG_MAX_BYTES` per file, `LOG_BACKUPS` older files; 3 × 20 MiB by default).
PostgreSQL's own collector cannot bound the total: its size-triggered rotation reuses the file
name and appends, and it truncates only on time-triggered rotation, so the collector stays off.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import string
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from runtime.settings import SERVICES, database_name, database_readers, database_role
from tools.stack import logpipe
from tools.stack.common import (
    DEFAULT_PG_PORT,
    HOST,
    PG_ADMIN,
    PG_ROLES,
    Echo,
    Paths,
    StackError,
    as_user_cmd,
    chown_to,
    pg_bin_dir,
    pg_os_user,
    pick_ports,
    port_is_free,
    tail,
    user_can_write,
)
from tools.stack.pg_secrets import PgSecrets, scram_verifier, write_private

INCLUDE_LINE = "include_if_exists = 'medsettle.conf'"


# --------------------------------------------------------------------------- URLs


def server_url(port: int, host: str = HOST, user: str = PG_ADMIN) -> str:
    return f"postgresql://{user}@{host}:{port}"


def database_dsn(server: str, dbname: str) -> str:
    """`DATABASE_URL` is a server URL without a database; a service appends its own database:
    database_dsn("postgresql://medsettle_audit@127.0.0.1:15432", "medsettle_audit")
    -> "postgresql://medsettle_audit@127.0.0.1:15432/medsettle_audit" (query parameters are kept)."""
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def with_user(server: str, user: str) -> str:
    """The server URL `server` as `user`, without any password it carried:
    with_user("postgresql://medsettle_admin@127.0.0.1:15432", "medsettle_audit")
    -> "postgresql://medsettle_audit@127.0.0.1:15432"."""
    parts = urlsplit(server)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------- where the cluster lives


def _external_base(p: Paths) -> Path:
    owner = p.root if p.local_dir is None else p.local  # a separate stack (MEDSETTLE_LOCAL) has its own
    digest = hashlib.sha1(str(owner).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"medsettle-pg-{digest}"


def candidate_bases(p: Paths) -> list[Path]:
    return [p.pg_local, _external_base(p)]


def pg_base(p: Paths, state: dict[str, Any], create: bool = False) -> Path:
    """`.local/pg`, unless PostgreSQL's unprivileged OS user cannot reach it (e.g. the checkout lives
    under a 0700 directory and we are root): then /var/tmp/medsettle-pg-<hash of the checkout>."""
    recorded = (state.get("postgres") or {}).get("base")
    if recorded and (Path(recorded) / "data" / "PG_VERSION").is_file():
        return Path(recorded)
    for base in candidate_bases(p):
        if (base / "data" / "PG_VERSION").is_file():
            return base
    if not create:
        return p.pg_local
    user = pg_os_user()
    for base in candidate_bases(p):
        base.mkdir(parents=True, exist_ok=True)
        chown_to(base, user)
        if user_can_write(base, user):
            return base
    raise StackError(f"no directory PostgreSQL's OS user ({user}) can write: tried {candidate_bases(p)}")


def data_dir(base: Path) -> Path:
    return base / "data"


def log_file(base: Path) -> Path:
    return base / "log" / "postgres.log"


def _trusting(data: Path) -> bool:
    """Does the cluster's pg_hba.conf let anyone in without a password (a cluster initialised by an
    earlier medsettle with `trust`)?"""
    try:
        lines = (data / "pg_hba.conf").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[-1] in ("trust", "peer", "ident") for line in lines
               if line.strip() and not line.lstrip().startswith("#"))


REINIT_HINT = ("./medsettle stack reset re-initialises it (wipes the local Kafka and PostgreSQL data), then "
               "./medsettle stack start")


def check_credentials(data: Path, secrets: PgSecrets) -> None:
    """Refuse a cluster this stack cannot log into with its own passwords: one initialised before
    medsettle had roles (trust authentication), or whose generated passwords are gone."""
    if _trusting(data):
        raise StackError(f"the PostgreSQL cluster in {data} lets clients in without a password (trust "
                         f"authentication, from an earlier medsettle): {REINIT_HINT}")
    if not secrets.has(PG_ADMIN):
        raise StackError(f"the password of the PostgreSQL cluster in {data} is not in {secrets.directory}: "
                         f"{REINIT_HINT}")


# --------------------------------------------------------------------------- process


def _run(cmd: list[str], user: str | None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(as_user_cmd(cmd, user), cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise StackError(f"`{' '.join(cmd)}` failed (exit {res.returncode}):\n{(res.stdout + res.stderr)[-3000:]}")
    return res


def initdb(base: Path, secrets: PgSecrets) -> None:
    """A new cluster whose superuser `medsettle_admin` has a newly generated password (every role's
    password is generated anew: the old ones belonged to a cluster that is gone)."""
    bindir, user = pg_bin_dir(), pg_os_user()
    data = data_dir(base)
    if (data / "PG_VERSION").is_file():
        return
    for d in (data, log_file(base).parent):
        d.mkdir(parents=True, exist_ok=True)
        chown_to(d, user)
    data.chmod(0o700)
    secrets.generate(PG_ROLES, replace=True)
    # initdb runs as PostgreSQL's OS user, who cannot read .local/secrets: a copy only it can read,
    # beside the data directory, for as long as initdb runs
    pwfile = base / ".initdb-password"
    write_private(pwfile, secrets.password(PG_ADMIN).encode() + b"\n")
    chown_to(pwfile, user)
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", PG_ADMIN, "--auth=scram-sha-256",
              f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-instructions"], user)
    finally:
        pwfile.unlink(missing_ok=True)
    conf = data / "postgresql.conf"
    text = conf.read_text()
    if INCLUDE_LINE not in text:
        conf.write_text(text.rstrip("\n") + "\n\n# medsettle local stack (tools.stack)\n" + INCLUDE_LINE + "\n")


def running_port(base: Path) -> int | None:
    """Port of the postmaster running on this data directory, or None."""
    bindir, user = pg_bin_dir(), pg_os_user()
    data = data_dir(base)
    if not (data / "PG_VERSION").is_file():
        return None
    res = _run([str(bindir / "pg_ctl"), "-D", str(data), "status"], user, check=False)
    if res.returncode != 0:
        return None
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int((data / "postmaster.pid").read_text().splitlines()[3])
    return None


def is_running(p: Paths, state: dict[str, Any]) -> bool:
    try:
        return running_port(pg_base(p, state)) is not None
    except StackError:  # no PostgreSQL binaries: nothing can be running
        return False


def start(p: Paths, state: dict[str, Any], echo: Echo = print) -> dict[str, Any]:
    """initdb once, start with pg_ctl (waits until it accepts connections); returns the pg state.
    Roles and databases: `provision`."""
    bindir, user = pg_bin_dir(), pg_os_user()
    base = pg_base(p, state, create=True)
    secrets = PgSecrets.of(p)
    pg = dict(state.get("postgres") or {})
    port = running_port(base)
    if (data_dir(base) / "PG_VERSION").is_file():
        check_credentials(data_dir(base), secrets)
    if port is None:
        if not (data_dir(base) / "PG_VERSION").is_file():
            echo(f"initialising PostgreSQL cluster in {data_dir(base)} ...")
            initdb(base, secrets)
        # the one used last time if free (its clients reconnect), else the default, else the next free one
        for wanted in (pg.get("port"), DEFAULT_PG_PORT):
            if wanted and port_is_free(int(wanted)):
                port = int(wanted)
                break
        else:
            port = pick_ports([DEFAULT_PG_PORT])[0]
        conf = string.Template(p.pg_conf_template.read_text()).substitute(host=HOST, port=port)
        for target, text in ((data_dir(base) / "medsettle.conf", conf),
                             (data_dir(base) / "pg_hba.conf", p.pg_hba_template.read_text())):
            target.write_text(text)
            chown_to(target, user)
        log = log_file(base)
        log.parent.mkdir(parents=True, exist_ok=True)
        chown_to(log.parent, user)
        echo(f"starting PostgreSQL on {HOST}:{port} ...")
        # no `-l`: the server's stderr (and pg_ctl's) is the pipe of a rotating writer (tools.stack.logpipe)
        with logpipe.output_to(log) as out:
            res = subprocess.run(as_user_cmd([str(bindir / "pg_ctl"), "-D", str(data_dir(base)), "-w", "-t", "60",
                                              "start"], user),
                                 cwd="/", stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        if res.returncode != 0:
            raise StackError(f"PostgreSQL did not start; see {log}\n{tail(log, 20)}")
    secrets.generate(PG_ROLES)  # a role added since the cluster was made gets its password now
    pg.update(
        host=HOST, port=port, user=PG_ADMIN, base=str(base), data_dir=str(data_dir(base)),
        log=str(log_file(base)), url=server_url(port), os_user=user, passfile=str(secrets.passfile()),
    )
    return pg


def stop(p: Paths, state: dict[str, Any], echo: Echo = print) -> bool:
    bindir, user = pg_bin_dir(), pg_os_user()
    base = pg_base(p, state)
    if running_port(base) is None:
        return False
    echo("stopping PostgreSQL ...")
    _run([str(bindir / "pg_ctl"), "-D", str(data_dir(base)), "-m", "fast", "-w", "-t", "60", "stop"], user)
    return True


def wipe(p: Paths, state: dict[str, Any]) -> list[Path]:
    """Remove the cluster, and the passwords of its roles with it (`initdb` makes new ones)."""
    PgSecrets.of(p).wipe()
    removed = []
    recorded = (state.get("postgres") or {}).get("base")
    bases = candidate_bases(p) + ([Path(recorded)] if recorded else [])
    for base in dict.fromkeys(bases):
        if base.exists():
            shutil.rmtree(base)
            removed.append(base)
    return removed


# --------------------------------------------------------------------------- roles and databases

ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
"""Every role but the admin: may log in, and nothing else a role attribute can give."""


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a role or database name medsettle makes: {name!r}")
    return f'"{name}"'


async def _connect(server: str, database: str, passfile: str | Path | None, timeout: float = 15) -> Any:
    import asyncpg

    return await asyncpg.connect(database_dsn(server, database), passfile=None if passfile is None else str(passfile),
                                 timeout=timeout)


async def ensure_role(conn: Any, role: str, password: str) -> str:
    """Create `role` (or bring an existing one back) with `ROLE_ATTRIBUTES` and `password` (sent as
    its SCRAM verifier), and take it out of every role it was made a member of (such as
    `pg_execute_server_program`, `pg_read_server_files`, `pg_read_all_data`). Returns "created"
    or "exists"."""
    import asyncpg

    verifier = scram_verifier(password)
    if not re.fullmatch(r"[A-Za-z0-9+/=$:-]+", verifier):  # nothing that could end the literal
        raise ValueError("a SCRAM verifier of an unexpected shape")
    options = f"{ROLE_ATTRIBUTES} PASSWORD '{verifier}'"
    state = "exists"
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        try:
            await conn.execute(f"CREATE ROLE {_ident(role)} {options}")
            state = "created"
        except asyncpg.DuplicateObjectError:  # another provisioner was quicker
            pass
    if state == "exists":
        await conn.execute(f"ALTER ROLE {_ident(role)} {options}")
    groups = await conn.fetch("""SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                                 JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1""", role)
    for g in groups:
        await conn.execute(f"REVOKE {_ident(g['rolname'])} FROM {_ident(role)}")
    return state


async def create_service_database(server: str, name: str, service: str, passfile: str | Path | None = None
                                  ) -> str:
    """The database `name` of `service` (its own, or a test namespace's), owned by the service's role
    and closed to everyone else (no CONNECT or TEMP for PUBLIC). Its readers (`database_readers`: the
    operator role for the audit's and the settlement layers' databases, the gateway's role for the
    layers') may also read it: CONNECT, and SELECT on every table the service's migrations make
    (default privileges). `server` is the admin's URL. Returns "created" or "exists"."""
    import asyncpg

    owner = database_role(service)
    readers = database_readers(service)
    conn = await _connect(server, "postgres", passfile)
    try:
        state = "exists"
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            try:
                await conn.execute(f"CREATE DATABASE {_ident(name)} OWNER {_ident(owner)}")
                state = "created"
            except asyncpg.DuplicateDatabaseError:
                pass
        if state == "exists":
            await conn.execute(f"ALTER DATABASE {_ident(name)} OWNER TO {_ident(owner)}")
        await conn.execute(f"REVOKE ALL ON DATABASE {_ident(name)} FROM PUBLIC")
        for reader in readers:
            await conn.execute(f"GRANT CONNECT ON DATABASE {_ident(name)} TO {_ident(reader)}")
    finally:
        await conn.close()
    if readers:
        db = await _connect(server, name, passfile)
        try:
            for reader in readers:
                await db.execute(f"""GRANT USAGE ON SCHEMA public TO {_ident(reader)};
                    ALTER DEFAULT PRIVILEGES FOR ROLE {_ident(owner)} IN SCHEMA public
                        GRANT SELECT ON TABLES TO {_ident(reader)};
                    GRANT SELECT ON ALL TABLES IN SCHEMA public TO {_ident(reader)}""")
        finally:
            await db.close()
    return state


async def provision(server: str, passwords: Mapping[str, str], passfile: str | Path | None = None
                    ) -> dict[str, str]:
    """Every role of `passwords` (the services' and the operator's, never the admin's;
    `ensure_role`), the maintenance databases closed to PUBLIC, and every service's database
    (`create_service_database`), on the server of the admin URL `server`. Idempotent; returns what
    each database was."""
    conn = await _connect(server, "postgres", passfile)
    try:
        for role, password in passwords.items():
            await ensure_role(conn, role, password)
        for db in ("postgres", "template1"):  # a service role has no business there
            await conn.execute(f"REVOKE ALL ON DATABASE {_ident(db)} FROM PUBLIC")
    finally:
        await conn.close()
    return {database_name(s): await create_service_database(server, database_name(s), s, passfile)
            for s in SERVICES}


async def inspect(server: str, passfile: str | Path | None = None) -> dict[str, Any]:
    """Databases with sizes, and the registered persons/providers of the enrollment database."""
    conn = await _connect(server, "postgres", passfile, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT datname, pg_size_pretty(pg_database_size(datname)) AS size "
            "FROM pg_database WHERE NOT datistemplate ORDER BY datname"
        )
    finally:
        await conn.close()
    dbs = [{"database": r["datname"], "size": r["size"]} for r in rows]
    enrollment: dict[str, int | None] = {}
    if any(d["database"] == "medsettle_enrollment" for d in dbs):
        conn = await _connect(server, "medsettle_enrollment", passfile, timeout=10)
        try:
            for table in ("person", "provider"):
                if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}"):
                    enrollment[table] = await conn.fetchval(f"SELECT count(*) FROM public.{table}")
        finally:
            await conn.close()
    return {"databases": dbs, "enrollment": enrollment}
