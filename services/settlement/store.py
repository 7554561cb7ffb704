"""SQL of the settlement service: the registry projections it reads claims against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from contracts import PersonSnapshot, ProviderSnapshot
from contracts.codec import parse_payload
from runtime.db import Connection


def _latest(snapshots: Sequence[PersonSnapshot] | Sequence[ProviderSnapshot]) -> dict[str, tuple[int, str]]:
    """Highest version per subject among the snapshots."""
    latest: dict[str, tuple[int, str]] = {}
    for snap in snapshots:
        key = snap.message_key()
        if key not in latest or snap.version > latest[key][0]:
            latest[key] = (snap.version, snap.model_dump_json())
    return latest


async def _upsert(conn: Connection, table: str, id_col: str, latest: dict[str, tuple[int, str]]) -> None:
    if latest:
        await conn.execute(
            f"""INSERT INTO {table} ({id_col}, version, snapshot)
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::jsonb[])
                ON CONFLICT ({id_col}) DO UPDATE SET version = EXCLUDED.version, snapshot = EXCLUDED.snapshot
                WHERE {table}.version < EXCLUDED.version""",
            list(latest), [v for v, _ in latest.values()], [s for _, s in latest.values()])


async def apply_person_snapshots(conn: Connection, snapshots: Sequence[PersonSnapshot]) -> None:
    await _upsert(conn, "person_projection", "person_id", _latest(snapshots))


async def apply_provider_snapshots(conn: Connection, snapshots: Sequence[ProviderSnapshot]) -> None:
    await _upsert(conn, "provider_projection", "provider_id", _latest(snapshots))


async def load_persons(conn: Connection, ids: Iterable[str]) -> dict[str, PersonSnapshot]:
    rows = await conn.fetch("SELECT snapshot FROM person_projection WHERE person_id = ANY($1::text[])", list(set(ids)))
    return {s.person_id: s for s in (parse_payload(r["snapshot"], PersonSnapshot) for r in rows)}


async def load_providers(conn: Connection, ids: Iterable[str]) -> dict[str, ProviderSnapshot]:
    rows = await conn.fetch("SELECT snapshot FROM provider_projection WHERE provider_id = ANY($1::text[])",
                            list(set(ids)))
    return {s.provider_id: s for s in (parse_payload(r["snapshot"], ProviderSnapshot) for r in rows)}
