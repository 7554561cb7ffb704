"""SQL of the audit service (tables in `migrations/`): the event store (事件存档), the stays and
registry snapshots the rules read, and the alerts raised."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from contracts import AuditAlert, PersonSnapshot, ProviderSnapshot
from contracts.codec import parse_payload
from contracts.topics import (
    ALERTS,
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    PERSONS,
    PROVIDERS,
    REFUSALS,
    STATEMENTS,
)
from runtime.db import Connection
from services.audit.integrity import StoredEvent
from services.audit.rules import Reversal, Stay

CLAIM_TOPICS: tuple[str, ...] = (DISCHARGES, REFUSALS, BASIC_SETTLED, CATASTROPHIC_SETTLED, STATEMENTS)
"""The topics whose events reconciliation reads for a claim (`claim_activity` counts them)."""


@dataclass(frozen=True)
class EventRow:
    """One consumed record as the event store keeps it."""

    topic: str
    partition: int
    offset: int
    key: str | None
    event_type: str
    event_id: uuid.UUID
    schema_version: int
    correlation_id: str
    causation_id: uuid.UUID | None
    producer: str
    claim_id: str | None
    occurred_at: datetime
    payload_json: str
    error: str | None


KPI_TOPICS: frozenset[str] = frozenset({DISCHARGES, REFUSALS, STATEMENTS, ALERTS})
"""The topics whose events the KPI summary folds (`kpi_fold`, migrations/0006_kpi_summary.sql)."""


async def append_events(conn: Connection, rows: Sequence[EventRow]) -> int:
    """Append records; one already stored at the same topic, partition and offset is skipped.

    In the same statement, each claim's count of stored events on the claim topics goes up
    (`claim_activity`, claims in order so that concurrent batches lock them in the same order), so
    reconciliation checks the claim again. The rows stored on the KPI topics are then folded into
    the KPI summary (`kpi_fold`) in the same transaction."""
    if not rows:
        return 0
    inserted: list[int] | None = await conn.fetchval(
        """WITH ins AS (
               INSERT INTO event_store (topic, partition, "offset", key, event_type, event_id, schema_version,
                                        correlation_id, causation_id, producer, claim_id, occurred_at, payload, error)
               SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[], $6::uuid[],
                                    $7::int[], $8::text[], $9::uuid[], $10::text[], $11::text[], $12::timestamptz[],
                                    $13::jsonb[], $14::text[])
               ON CONFLICT (topic, partition, "offset") DO NOTHING RETURNING id, claim_id, topic, recorded_at
           ), activity AS (
               INSERT INTO claim_activity AS a (claim_id, events, last_recorded_at)
               SELECT claim_id, count(*), max(recorded_at) FROM ins
               WHERE claim_id IS NOT NULL AND topic = ANY($15::text[]) GROUP BY claim_id ORDER BY claim_id
               ON CONFLICT (claim_id) DO UPDATE SET events = a.events + EXCLUDED.events,
                   last_recorded_at = greatest(a.last_recorded_at, EXCLUDED.last_recorded_at), checked = false
           )
           SELECT COALESCE(array_agg(id ORDER BY id), '{}') FROM ins""",
        [r.topic for r in rows], [r.partition for r in rows], [r.offset for r in rows], [r.key for r in rows],
        [r.event_type for r in rows], [r.event_id for r in rows], [r.schema_version for r in rows],
        [r.correlation_id for r in rows], [r.causation_id for r in rows], [r.producer for r in rows],
        [r.claim_id for r in rows], [r.occurred_at for r in rows], [r.payload_json for r in rows],
        [r.error for r in rows], list(CLAIM_TOPICS))
    if inserted and any(r.topic in KPI_TOPICS for r in rows):
        await conn.execute("SELECT kpi_fold($1::bigint[])", inserted)
    return len(inserted or ())


# ------------------------------------------------------------------------ stays


def _stay(r: Any) -> Stay:
    return Stay(r["claim_id"], r["person_id"], r["hospital_id"], r["admission_date"], r["discharge_date"],
                r["reversed"])


async def load_stays(conn: Connection, claim_ids: Iterable[str]) -> dict[str, Stay]:
    """The stays of these claims as the audit knows them (reversed ones included)."""
    rows = await conn.fetch(
        """SELECT claim_id, person_id, hospital_id, admission_date, discharge_date, reversed FROM stay
           WHERE claim_id = ANY($1::text[])""", list(set(claim_ids)))
    return {r["claim_id"]: _stay(r) for r in rows}


@dataclass(frozen=True)
class StayWrite:
    stay: Stay
    event_id: uuid.UUID
    """the discharge that made the stay known (kept from the first write)"""
    changed_by: uuid.UUID | None = None
    """the last request that changed it since (correction, reversal, reinstatement)"""


async def save_stays(conn: Connection, writes: Sequence[StayWrite]) -> None:
    """Record new stays and the changes of known ones (their dates, reversed or not; a stay keeps
    its person, hospital and first event)."""
    if not writes:
        return
    await conn.execute(
        """INSERT INTO stay (claim_id, person_id, hospital_id, admission_date, discharge_date, event_id, reversed,
                             changed_by)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[], $6::uuid[], $7::bool[],
                                $8::uuid[])
           ON CONFLICT (claim_id) DO UPDATE SET admission_date = EXCLUDED.admission_date,
               discharge_date = EXCLUDED.discharge_date, reversed = EXCLUDED.reversed, changed_by = EXCLUDED.changed_by""",
        [w.stay.claim_id for w in writes], [w.stay.person_id for w in writes], [w.stay.hospital_id for w in writes],
        [w.stay.admission for w in writes], [w.stay.discharge for w in writes], [w.event_id for w in writes],
        [w.stay.reversed for w in writes], [w.changed_by for w in writes])


async def stays_of_persons(conn: Connection, person_ids: Iterable[str]) -> dict[str, list[Stay]]:
    """The persons' stays that count for the rules (reversed ones left out)."""
    rows = await conn.fetch(
        """SELECT claim_id, person_id, hospital_id, admission_date, discharge_date, reversed FROM stay
           WHERE person_id = ANY($1::text[]) AND NOT reversed ORDER BY admission_date, claim_id""",
        list(set(person_ids)))
    out: dict[str, list[Stay]] = defaultdict(list)
    for r in rows:
        out[r["person_id"]].append(_stay(r))
    return out


async def inpatients_per_night(conn: Connection, stays: Sequence[Stay]) -> dict[str, dict[date, int]]:
    """For each stay, the number of known stays (not reversed) at its hospital covering each of its nights."""
    with_nights = [s for s in stays if s.nights > 0]
    if not with_nights:
        return {}
    rows = await conn.fetch(
        """SELECT n.claim_id, g.night::date AS night, count(*) AS inpatients
           FROM unnest($1::text[], $2::text[], $3::date[], $4::date[]) AS n(claim_id, hospital_id, a, d)
           CROSS JOIN LATERAL generate_series(n.a, n.d - 1, interval '1 day') AS g(night)
           JOIN stay s ON s.hospital_id = n.hospital_id AND s.admission_date <= g.night::date
                      AND s.discharge_date > g.night::date AND NOT s.reversed
           GROUP BY n.claim_id, g.night""",
        [s.claim_id for s in with_nights], [s.hospital_id for s in with_nights],
        [s.admission for s in with_nights], [s.discharge for s in with_nights])
    out: dict[str, dict[date, int]] = defaultdict(dict)
    for r in rows:
        out[r["claim_id"]][r["night"]] = r["inpatients"]
    return out


async def occupants(conn: Connection, hospital_nights: Iterable[tuple[str, date]]
                    ) -> dict[tuple[str, date], list[Stay]]:
    """The known stays covering each (hospital, night)."""
    pairs = sorted(set(hospital_nights))
    if not pairs:
        return {}
    rows = await conn.fetch(
        """SELECT n.hospital_id AS at_hospital, n.night, s.claim_id, s.person_id, s.hospital_id, s.admission_date,
                  s.discharge_date, s.reversed
           FROM unnest($1::text[], $2::date[]) AS n(hospital_id, night)
           JOIN stay s ON s.hospital_id = n.hospital_id AND s.admission_date <= n.night AND s.discharge_date > n.night
                      AND NOT s.reversed""",
        [h for h, _ in pairs], [d for _, d in pairs])
    out: dict[tuple[str, date], list[Stay]] = defaultdict(list)
    for r in rows:
        out[(r["at_hospital"], r["night"])].append(_stay(r))
    return out


# ------------------------------------------------------------------- reversals


async def insert_reversals(conn: Connection, reversals: Sequence[Reversal]) -> None:
    if not reversals:
        return
    await conn.execute(
        """INSERT INTO reversal (event_id, claim_id, hospital_id, person_id, requested_at, requested_on, discharge_date)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::date[],
                                $7::date[])
           ON CONFLICT (event_id) DO NOTHING""",
        [r.event_id for r in reversals], [r.claim_id for r in reversals], [r.hospital_id for r in reversals],
        [r.person_id for r in reversals], [r.requested_at for r in reversals], [r.day for r in reversals],
        [r.discharge for r in reversals])


async def reversals_on(conn: Connection, hospital_days: Iterable[tuple[str, date]]) -> list[Reversal]:
    """Every accepted reversal of these hospitals on these days (Beijing time)."""
    pairs = sorted(set(hospital_days))
    if not pairs:
        return []
    rows = await conn.fetch(
        """SELECT r.event_id, r.claim_id, r.hospital_id, r.person_id, r.requested_at, r.discharge_date
           FROM unnest($1::text[], $2::date[]) AS n(hospital_id, day)
           JOIN reversal r ON r.hospital_id = n.hospital_id AND r.requested_on = n.day""",
        [h for h, _ in pairs], [d for _, d in pairs])
    return [Reversal(r["claim_id"], r["hospital_id"], r["person_id"], r["requested_at"], r["discharge_date"],
                     r["event_id"]) for r in rows]


# ---------------------------------------------------------------- registry


async def upsert_persons(conn: Connection, snapshots: Iterable[PersonSnapshot]) -> set[str]:
    """Keep the highest version of each person; returns the persons whose snapshot changed."""
    latest: dict[str, PersonSnapshot] = {}
    for s in snapshots:
        if s.person_id not in latest or s.version > latest[s.person_id].version:
            latest[s.person_id] = s
    if not latest:
        return set()
    snaps = list(latest.values())
    rows = await conn.fetch(
        """INSERT INTO person_snapshot (person_id, version, snapshot)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::jsonb[])
           ON CONFLICT (person_id) DO UPDATE SET version = EXCLUDED.version, snapshot = EXCLUDED.snapshot
             WHERE person_snapshot.version < EXCLUDED.version
           RETURNING person_id""",
        [s.person_id for s in snaps], [s.version for s in snaps], [s.model_dump_json() for s in snaps])
    changed = {r["person_id"] for r in rows}
    if changed:  # the KPIs' count of insured persons (migrations/0006_kpi_summary.sql)
        await conn.execute("SELECT kpi_persons($1::text[])", sorted(changed))
    return changed


async def load_persons(conn: Connection, person_ids: Iterable[str]) -> dict[str, PersonSnapshot]:
    rows = await conn.fetch("SELECT snapshot FROM person_snapshot WHERE person_id = ANY($1::text[])",
                            list(set(person_ids)))
    snaps = [parse_payload(r["snapshot"], PersonSnapshot) for r in rows]
    return {s.person_id: s for s in snaps}


async def upsert_providers(conn: Connection, snapshots: Iterable[ProviderSnapshot]) -> None:
    latest: dict[str, ProviderSnapshot] = {}
    for s in snapshots:
        if s.provider_id not in latest or s.version > latest[s.provider_id].version:
            latest[s.provider_id] = s
    snaps = list(latest.values())
    if not snaps:
        return
    await conn.execute(
        """INSERT INTO provider_snapshot (provider_id, version, level, pool_code, location, licensed_beds, snapshot)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::int[], $7::jsonb[])
           ON CONFLICT (provider_id) DO UPDATE SET version = EXCLUDED.version, level = EXCLUDED.level,
             pool_code = EXCLUDED.pool_code, location = EXCLUDED.location, licensed_beds = EXCLUDED.licensed_beds,
             snapshot = EXCLUDED.snapshot
             WHERE provider_snapshot.version < EXCLUDED.version""",
        [s.provider_id for s in snaps], [s.version for s in snaps], [s.level for s in snaps],
        [s.pool_code for s in snaps], [s.location for s in snaps], [s.licensed_beds for s in snaps],
        [s.model_dump_json() for s in snaps])


async def licensed_beds(conn: Connection, provider_ids: Iterable[str]) -> dict[str, int]:
    rows = await conn.fetch("SELECT provider_id, licensed_beds FROM provider_snapshot WHERE provider_id = ANY($1::text[])",
                            list(set(provider_ids)))
    return {r["provider_id"]: r["licensed_beds"] for r in rows}


async def registry_versions(conn: Connection, kind: str, subjects: Iterable[str]) -> dict[str, int]:
    """The latest version seen of each person (`kind` "person") or provider ("provider")."""
    table, column = ("person_snapshot", "person_id") if kind == "person" else ("provider_snapshot", "provider_id")
    rows = await conn.fetch(f"SELECT {column} AS subject, version FROM {table} WHERE {column} = ANY($1::text[])",
                            list(set(subjects)))
    return {r["subject"]: r["version"] for r in rows}


# ------------------------------------------------------------------ integrity


async def repeated_events(conn: Connection, event_ids: Iterable[uuid.UUID]) -> list[StoredEvent]:
    """Every stored copy of those of these event ids that are stored more than once (not counting
    the audit's own alerts), in the order they were stored."""
    rows = await conn.fetch(
        """SELECT event_id, topic, partition, "offset", event_type, producer, payload FROM event_store
           WHERE event_id IN (SELECT event_id FROM event_store WHERE event_id = ANY($1::uuid[]) AND topic <> $2
                              GROUP BY event_id HAVING count(*) > 1)
             AND topic <> $2
           ORDER BY id""", list(set(event_ids)), ALERTS)
    return [StoredEvent(r["event_id"], r["topic"], r["partition"], r["offset"], r["event_type"], r["producer"],
                        json.loads(r["payload"])) for r in rows]


WATERMARK = "snapshot_commands"


async def snapshots_without_command(conn: Connection, cutoff: datetime, record: bool = True) -> list[Any]:
    """Registry snapshots stored up to `cutoff` (and after the last call's) whose `causation_id`
    is no stored enrollment command about the same subject; moves the watermark past them (unless
    not `record`: an operator's look writes nothing)."""
    through = await conn.fetchval("SELECT through_id FROM integrity_watermark WHERE name = $1", WATERMARK) or 0
    upto = await conn.fetchval(
        """SELECT coalesce(min(id) - 1, (SELECT max(id) FROM event_store)) FROM event_store
           WHERE id > $1 AND topic = ANY($2::text[]) AND recorded_at > $3""", through, [PERSONS, PROVIDERS], cutoff)
    if upto is None or upto <= through:
        return []
    rows = await conn.fetch(
        """SELECT s.event_id, s.topic, s.causation_id, s.recorded_at,
                  coalesce(s.payload->>'person_id', s.payload->>'provider_id') AS subject,
                  (s.payload->>'version')::bigint AS version
           FROM event_store s
           WHERE s.id > $1 AND s.id <= $2 AND s.topic = ANY($3::text[]) AND s.error IS NULL
             AND NOT EXISTS (SELECT 1 FROM event_store c
                             WHERE c.event_id = s.causation_id AND c.topic = $4
                               AND coalesce(c.payload->>'person_id', c.payload->>'provider_id')
                                   = coalesce(s.payload->>'person_id', s.payload->>'provider_id'))
           ORDER BY s.id""", through, upto, [PERSONS, PROVIDERS], ENROLLMENT_COMMANDS)
    if record:
        await conn.execute(
            """INSERT INTO integrity_watermark (name, through_id) VALUES ($1, $2)
               ON CONFLICT (name) DO UPDATE SET through_id = EXCLUDED.through_id""", WATERMARK, upto)
    return list(rows)


# -------------------------------------------------------------------- alerts


async def insert_alerts(conn: Connection, alerts: Sequence[tuple[AuditAlert, uuid.UUID]]) -> set[str]:
    """Record alerts with their event ids; returns the alert ids that are new."""
    if not alerts:
        return set()
    rows = await conn.fetch(
        """INSERT INTO alert (alert_id, rule, severity, claim_id, person_id, hospital_id, evidence, source,
                              detected_at, event_id)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                                $8::text[], $9::timestamptz[], $10::uuid[])
           ON CONFLICT (alert_id) DO NOTHING RETURNING alert_id""",
        [a.alert_id for a, _ in alerts], [a.rule for a, _ in alerts], [a.severity for a, _ in alerts],
        [a.claim_id for a, _ in alerts], [a.person_id for a, _ in alerts], [a.hospital_id for a, _ in alerts],
        [json.dumps(a.evidence, ensure_ascii=False) for a, _ in alerts], [a.source for a, _ in alerts],
        [a.detected_at for a, _ in alerts], [e for _, e in alerts])
    return {r["alert_id"] for r in rows}


async def list_alerts(conn: Connection, *, rule: str | None = None, claim_id: str | None = None,
                      limit: int = 1000, severity: str | None = None, hospital_id: str | None = None,
                      detected_from: date | None = None, detected_to: date | None = None) -> list[dict[str, Any]]:
    """The alerts raised, oldest first; each filter left None matches every alert (detection days in UTC,
    both ends included)."""
    rows = await conn.fetch(
        """SELECT alert_id, rule, severity, claim_id, person_id, hospital_id, evidence, source, detected_at
           FROM alert WHERE ($1::text IS NULL OR rule = $1) AND ($2::text IS NULL OR claim_id = $2)
             AND ($4::text IS NULL OR severity = $4) AND ($5::text IS NULL OR hospital_id = $5)
             AND ($6::date IS NULL OR detected_at >= ($6::date::timestamp AT TIME ZONE 'UTC'))
             AND ($7::date IS NULL OR detected_at < (($7::date + 1)::timestamp AT TIME ZONE 'UTC'))
           ORDER BY detected_at, alert_id LIMIT $3""", rule, claim_id, limit, severity, hospital_id,
        detected_from, detected_to)
    return [{**dict(r), "evidence": json.loads(r["evidence"])} for r in rows]


_HISTORY_COLUMNS = """id, topic, partition, "offset", key, event_type, event_id, correlation_id, causation_id,
                      producer, claim_id, occurred_at, payload, error, recorded_at"""


async def claim_history(conn: Connection, claim_id: str) -> list[dict[str, Any]]:
    """Every stored event about a claim, in the order it happened (then as consumed)."""
    rows = await conn.fetch(
        f"SELECT {_HISTORY_COLUMNS} FROM event_store WHERE claim_id = $1 ORDER BY occurred_at, id", claim_id)
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


async def caused_by_claim(conn: Connection, claim_id: str) -> list[dict[str, Any]]:
    """The revisions of other claims (layer results and statements) that a hospital's correction or
    reversal of this claim caused (their `cause.claim_id`), in order."""
    rows = await conn.fetch(
        f"""SELECT {_HISTORY_COLUMNS} FROM event_store
            WHERE payload->'cause'->>'claim_id' = $1 AND claim_id IS DISTINCT FROM $1
            ORDER BY occurred_at, id""", claim_id)
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]
