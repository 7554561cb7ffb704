"""SQL of the settlement service: the registry projections it reads claims against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg
from aiokafka import ConsumerRecord

from contracts import ContractError, PersonSnapshot, ProviderSnapshot, decode
from runtime.logging import get_logger

log = get_logger("settlement.projection")


def _latest(records: Sequence[ConsumerRecord], model: type) -> dict[str, tuple[int, str]]:
    """Highest version per key among the records (a snapshot that does not decode is skipped and logged)."""
    latest: dict[str, tuple[int, str]] = {}
    for r in records:
        try:
            snap = decode(r.value or b"", model).payload
        except ContractError as exc:
            log.warning("snapshot skipped", topic=r.topic, partition=r.partition, offset=r.offset, reason=exc.reason)
            continue
        key = snap.person_id if model is PersonSnapshot else snap.provider_id
        if key not in latest or snap.version > latest[key][0]:
            latest[key] = (snap.version, snap.model_dump_json())
    return latest


async def _upsert(conn: asyncpg.Connection, table: str, id_col: str, latest: dict[str, tuple[int, str]]) -> None:
    if latest:
        await conn.execute(
            f"""INSERT INTO {table} ({id_col}, version, snapshot)
                SELECT * FROM unnest($1::text[], $2::int[], $3::jsonb[])
                ON CONFLICT ({id_col}) DO UPDATE SET version = EXCLUDED.version, snapshot = EXCLUDED.snapshot
                WHERE {table}.version < EXCLUDED.version""",
            list(latest), [v for v, _ in latest.values()], [s for _, s in latest.values()])


async def apply_person_snapshots(conn: asyncpg.Connection, records: Sequence[ConsumerRecord]) -> None:
    await _upsert(conn, "person_projection", "person_id", _latest(records, PersonSnapshot))


async def apply_provider_snapshots(conn: asyncpg.Connection, records: Sequence[ConsumerRecord]) -> None:
    await _upsert(conn, "provider_projection", "provider_id", _latest(records, ProviderSnapshot))


async def load_persons(conn: asyncpg.Connection, ids: Iterable[str]) -> dict[str, PersonSnapshot]:
    rows = await conn.fetch("SELECT snapshot FROM person_projection WHERE person_id = ANY($1::text[])", list(set(ids)))
    return {s.person_id: s for s in (PersonSnapshot.model_validate_json(r["snapshot"]) for r in rows)}


async def load_providers(conn: asyncpg.Connection, ids: Iterable[str]) -> dict[str, ProviderSnapshot]:
    rows = await conn.fetch("SELECT snapshot FROM provider_projection WHERE provider_id = ANY($1::text[])",
                            list(set(ids)))
    return {s.provider_id: s for s in (ProviderSnapshot.model_validate_json(r["snapshot"]) for r in rows)}
