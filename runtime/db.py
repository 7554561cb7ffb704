"""PostgreSQL: create the service's database if missing, a pool, and SQL migrations at start-up.

Migrations are `*.sql` files applied in name order, each once, recorded in `schema_migrations`;
the runtime's own tables (processed events, outbox) come first. An advisory lock keeps two
instances of a service from migrating at once.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection = asyncpg.Connection | PoolConnectionProxy
"""A database connection: opened directly, or acquired from a pool (what handlers get)."""

RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"
LEDGER_MIGRATIONS = Path(__file__).parent / "ledger_migrations"
"""The per-layer accumulator and ledger tables; included by the three layer services."""
_MIGRATION_LOCK = 0x6D656473  # "meds"


async def ensure_database(server_url: str, database: str) -> None:
    conn = await asyncpg.connect(f"{server_url.rstrip('/')}/postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # another instance was quicker
                await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
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
    """Create the database if needed, apply migrations, and return a pool to it."""
    await ensure_database(server_url, database)
    dsn = f"{server_url.rstrip('/')}/{database}"
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, *migration_dirs)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size)
    assert pool is not None
    return pool
