"""PostgreSQL: find the service's database, a pool, and SQL migrations at start-up.

A service connects as its own login role (the user of `DATABASE_URL`, the password from the
password file `PGPASSFILE`) to its own database, which it owns but does not create: roles and
databases are made by whoever runs the server (`tools.stack` locally, the init script of
`infra/postgres/initdb.d` in docker-compose); a service role may not create databases. A missing
database, a refused login or a database the role may not enter stops the start-up with a message
that says so (`DatabaseUnavailable`).

Migrations are `*.sql` files applied in name order, each once, recorded in `schema_migrations`;
the runtime's own tables (processed events, outbox) come first. An advisory lock keeps two
instances of a service from migrating at once.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection = asyncpg.Connection | PoolConnectionProxy
"""A database connection: opened directly, or acquired from a pool (what handlers get)."""

RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"
LEDGER_MIGRATIONS = Path(__file__).parent / "ledger_migrations"
"""The per-layer accumulator and ledger tables; included by the three layer services."""
_MIGRATION_LOCK = 0x6D656473  # "meds"


class DatabaseUnavailable(RuntimeError):
    """The service cannot use its database: it does not exist, the role may not log in, or may not
    connect to it. The message says which and what to do; it never carries a password."""


async def connect(server_url: str, database: str) -> asyncpg.Connection:
    """A connection to `database` on the server of `server_url` as its user; a missing database or a
    refused login raises `DatabaseUnavailable`."""
    parts = urlsplit(server_url)
    where = f"{parts.hostname}:{parts.port or 5432}"
    role = parts.username or "(no user)"
    try:
        return await asyncpg.connect(f"{server_url.rstrip('/')}/{database}")
    except asyncpg.InvalidCatalogNameError:
        raise DatabaseUnavailable(
            f"database {database} does not exist on {where}: a service does not create its database. The local "
            "stack creates every service's database, owned by the service's role (./medsettle stack start); "
            "elsewhere whoever runs the server does (docker-compose: infra/postgres/initdb.d)") from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:  # bad password, no password, unknown role
        raise DatabaseUnavailable(
            f"PostgreSQL on {where} refused the login of {role} ({exc}): its password comes from the password "
            "file named by PGPASSFILE (./medsettle services and the stack set it)") from None
    except asyncpg.InsufficientPrivilegeError as exc:
        raise DatabaseUnavailable(f"{role} may not connect to {database} on {where} ({exc}): each service role "
                                  "may connect to its own databases only") from None


async def ensure_database(server_url: str, database: str) -> None:
    """Check that the service's database exists and that its role may connect to it (see `connect`);
    a service never creates it."""
    conn = await connect(server_url, database)
    await conn.close()


async def migrate(conn: asyncpg.Connection, *directories: Path) -> list[str]:
    """Apply pending migrations from the runtime and then from `directories`; returns what was applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for directory in (RUNTIME_MIGRATIONS, *directories):
            prefix = f"{directory.parent.name}/{directory.name}"
            for path in sorted(directory.glob("*.sql")):
                name = f"{prefix}/{path.name}"
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def open_pool(server_url: str, database: str, *migration_dirs: Path, size: int = 4) -> asyncpg.Pool:
    """Find the database (`connect`: `DatabaseUnavailable` if it is missing or refused), apply
    migrations, and return a pool to it."""
    dsn = f"{server_url.rstrip('/')}/{database}"
    conn = await connect(server_url, database)
    try:
        await migrate(conn, *migration_dirs)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size)
    assert pool is not None
    return pool
