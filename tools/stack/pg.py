"""The local PostgreSQL 15 cluster (initdb + pg_ctl, 127.0.0.1 only, trust auth) and databases.

The server's log, `<base>/log/postgres.log`, is bounded: its stderr goes through a rotating writer
(`tools.stack.logpipe`: `LOG_MAX_BYTES` per file, `LOG_BACKUPS` older files; 3 × 20 MiB by default).
PostgreSQL's own collector cannot bound the total: its size-triggered rotation reuses the file
name and appends, and it truncates only on time-triggered rotation, so the collector stays off.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import string
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tools.stack import logpipe
from tools.stack.common import (
    DEFAULT_PG_PORT,
    HOST,
    PG_SUPERUSER,
    SERVICE_DATABASES,
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

INCLUDE_LINE = "include_if_exists = 'medsettle.conf'"


# --------------------------------------------------------------------------- URLs


def server_url(port: int, host: str = HOST, user: str = PG_SUPERUSER) -> str:
    return f"postgresql://{user}@{host}:{port}"


def database_dsn(server: str, dbname: str) -> str:
    """`DATABASE_URL` is a server URL without a database; a service appends its own database:
    database_dsn("postgresql://postgres@127.0.0.1:15432", "medsettle_audit")
    -> "postgresql://postgres@127.0.0.1:15432/medsettle_audit" (query parameters are kept)."""
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


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


# --------------------------------------------------------------------------- process


def _run(cmd: list[str], user: str | None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(as_user_cmd(cmd, user), cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise StackError(f"`{' '.join(cmd)}` failed (exit {res.returncode}):\n{(res.stdout + res.stderr)[-3000:]}")
    return res


def initdb(base: Path) -> None:
    bindir, user = pg_bin_dir(), pg_os_user()
    data = data_dir(base)
    if (data / "PG_VERSION").is_file():
        return
    for d in (data, log_file(base).parent):
        d.mkdir(parents=True, exist_ok=True)
        chown_to(d, user)
    data.chmod(0o700)
    _run([str(bindir / "initdb"), "-D", str(data), "-U", PG_SUPERUSER, "-A", "trust", "-E", "UTF8",
          "--locale=C", "--no-instructions"], user)
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
    """initdb once, start with pg_ctl (waits until it accepts connections); returns the pg state."""
    bindir, user = pg_bin_dir(), pg_os_user()
    base = pg_base(p, state, create=True)
    pg = dict(state.get("postgres") or {})
    port = running_port(base)
    if port is None:
        if not (data_dir(base) / "PG_VERSION").is_file():
            echo(f"initialising PostgreSQL cluster in {data_dir(base)} ...")
            initdb(base)
        # the one used last time if free (its clients reconnect), else the default, else the next free one
        for wanted in (pg.get("port"), DEFAULT_PG_PORT):
            if wanted and port_is_free(int(wanted)):
                port = int(wanted)
                break
        else:
            port = pick_ports([DEFAULT_PG_PORT])[0]
        conf = string.Template(p.pg_conf_template.read_text()).substitute(host=HOST, port=port)
        target = data_dir(base) / "medsettle.conf"
        target.write_text(conf)
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
    pg.update(
        host=HOST, port=port, user=PG_SUPERUSER, base=str(base), data_dir=str(data_dir(base)),
        log=str(log_file(base)), url=server_url(port), os_user=user,
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
    removed = []
    recorded = (state.get("postgres") or {}).get("base")
    bases = candidate_bases(p) + ([Path(recorded)] if recorded else [])
    for base in dict.fromkeys(bases):
        if base.exists():
            shutil.rmtree(base)
            removed.append(base)
    return removed


# --------------------------------------------------------------------------- databases


async def ensure_databases(server: str, names: tuple[str, ...] = SERVICE_DATABASES) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(database_dsn(server, "postgres"), timeout=15)
    out: dict[str, str] = {}
    try:
        for name in names:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists:
                out[name] = "exists"
                continue
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
                out[name] = "created"
            except asyncpg.DuplicateDatabaseError:
                out[name] = "exists"
    finally:
        await conn.close()
    return out


async def inspect(server: str) -> dict[str, Any]:
    """Databases with sizes, and the registered persons/providers of the enrollment database."""
    import asyncpg

    conn = await asyncpg.connect(database_dsn(server, "postgres"), timeout=10)
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
        conn = await asyncpg.connect(database_dsn(server, "medsettle_enrollment"), timeout=10)
        try:
            for table in ("person", "provider"):
                if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}"):
                    enrollment[table] = await conn.fetchval(f"SELECT count(*) FROM public.{table}")
        finally:
            await conn.close()
    return {"databases": dbs, "enrollment": enrollment}
