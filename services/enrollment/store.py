"""SQL of the enrollment registry (tables in `migrations/`)."""

from __future__ import annotations

from collections.abc import Iterable

from contracts import CommandRejected, PersonSnapshot, ProviderSnapshot
from contracts.codec import parse_payload
from runtime.db import Connection
from runtime.unit_of_work import Inbound


async def load_persons(conn: Connection, ids: Iterable[str]) -> dict[str, PersonSnapshot]:
    rows = await conn.fetch("SELECT snapshot FROM person WHERE person_id = ANY($1::text[]) FOR UPDATE", list(ids))
    snaps = [parse_payload(r["snapshot"], PersonSnapshot) for r in rows]
    return {s.person_id: s for s in snaps}


async def load_providers(conn: Connection, ids: Iterable[str]) -> dict[str, ProviderSnapshot]:
    rows = await conn.fetch("SELECT snapshot FROM provider WHERE provider_id = ANY($1::text[]) FOR UPDATE", list(ids))
    snaps = [parse_payload(r["snapshot"], ProviderSnapshot) for r in rows]
    return {s.provider_id: s for s in snaps}


async def save_persons(conn: Connection, snapshots: Iterable[PersonSnapshot],
                       events: list[tuple[PersonSnapshot, Inbound]]) -> None:
    snaps = list(snapshots)
    if snaps:
        await conn.execute(
            """INSERT INTO person (person_id, version, scheme, status, snapshot)
               SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[])
               ON CONFLICT (person_id) DO UPDATE SET version = EXCLUDED.version, scheme = EXCLUDED.scheme,
                 status = EXCLUDED.status, snapshot = EXCLUDED.snapshot, updated_at = now()""",
            [s.person_id for s in snaps], [s.version for s in snaps], [s.scheme for s in snaps],
            [s.status for s in snaps], [s.model_dump_json() for s in snaps])
    if events:
        await conn.copy_records_to_table(
            "person_event", columns=["person_id", "version", "command_event_id", "command_type", "command"],
            records=[(s.person_id, s.version, m.envelope.event_id, m.envelope.event_type,
                      m.payload.model_dump_json()) for s, m in events])


async def save_providers(conn: Connection, snapshots: Iterable[ProviderSnapshot],
                         events: list[tuple[ProviderSnapshot, Inbound]]) -> None:
    snaps = list(snapshots)
    if snaps:
        await conn.execute(
            """INSERT INTO provider (provider_id, version, level, snapshot)
               SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::jsonb[])
               ON CONFLICT (provider_id) DO UPDATE SET version = EXCLUDED.version, level = EXCLUDED.level,
                 snapshot = EXCLUDED.snapshot, updated_at = now()""",
            [s.provider_id for s in snaps], [s.version for s in snaps], [s.level for s in snaps],
            [s.model_dump_json() for s in snaps])
    if events:
        await conn.copy_records_to_table(
            "provider_event", columns=["provider_id", "version", "command_event_id", "command"],
            records=[(s.provider_id, s.version, m.envelope.event_id, m.payload.model_dump_json()) for s, m in events])


async def save_rejections(conn: Connection, rejections: Iterable[CommandRejected]) -> None:
    rows = [(r.command_event_id, r.command_type, r.subject_id, r.reason_code, r.field, r.reason) for r in rejections]
    if rows:
        await conn.executemany(
            """INSERT INTO rejection (command_event_id, command_type, subject_id, reason_code, field, reason)
               VALUES ($1::uuid, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""", rows)


async def counts(conn: Connection) -> dict[str, int]:
    return {
        "persons": await conn.fetchval("SELECT count(*) FROM person"),
        "providers": await conn.fetchval("SELECT count(*) FROM provider"),
        "rejections": await conn.fetchval("SELECT count(*) FROM rejection"),
    }
