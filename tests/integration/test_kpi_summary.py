"""The KPI summary the audit keeps per batch says what a full scan of its event store says, whatever
the events: statements of any revision in any order, the same revision stated twice with other
figures, reversals, claims without a profile, corrections and their refusals, alerts, persons whose
snapshots change — stored in batches of any size (hypothesis, on the real database)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import PersonSnapshot
from runtime.db import migrate
from services.audit import store
from services.audit.kpis import KpiQuery, compute_kpis, compute_kpis_full
from tests.integration.harness import Namespace

pytestmark = pytest.mark.integration

AUDIT_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "audit" / "migrations"
CLAIMS = [f"H0{h}:C{i}" for h in (1, 2, 3) for i in (1, 2)]
DAYS = [date(2026, 3, 1), date(2026, 6, 30), date(2026, 7, 1)]
QUERIES = [KpiQuery(date(2026, 1, 1), date(2026, 12, 31)), KpiQuery(date(2026, 7, 1), date(2026, 12, 31)),
           KpiQuery(date(2026, 1, 1), date(2026, 12, 31), region="demo-county", pool="POOL1"),
           KpiQuery(date(2026, 1, 1), date(2026, 12, 31), region="another-county")]

money = st.integers(min_value=-5_000, max_value=50_000).map(lambda fen: Decimal(fen) / 100)


@st.composite
def statement(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    claim = draw(st.sampled_from(CLAIMS))
    kind = draw(st.sampled_from(["SettlementStatement", "SettlementAdjusted", "SettlementReversed"]))
    amounts = {k: str(draw(money)) for k in ("total_cost", "in_policy", "hifp_pay", "hifmi_pay", "maf_pay",
                                             "fund_pay_sumamt", "psn_pay")}
    payload: dict[str, Any] = {
        "claim_id": claim, "hospital_id": claim.split(":")[0], "person_id": draw(st.sampled_from(PERSON_IDS)),
        "discharge_date": draw(st.sampled_from(DAYS)).isoformat(), "revision": draw(st.integers(1, 3)),
        "outcome": draw(st.sampled_from(["settled", "rejected"])), **amounts}
    if kind != "SettlementReversed":
        payload["profile_id"] = draw(st.sampled_from(["demo-county", "another-county", None]))
        if draw(st.booleans()):
            payload["details"] = [{"layer": "catastrophic", "deductible": "100.00",
                                   "accumulator_before": str(draw(money)), "accumulator_after": str(draw(money))}]
    if kind != "SettlementStatement":
        payload["cause"] = {"kind": draw(st.sampled_from(["correction", "reversal", "reinstatement"]))}
    return "claims.statements", kind, payload


@st.composite
def request(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    claim = draw(st.sampled_from(CLAIMS))
    kind = draw(st.sampled_from(["DischargeRecorded", "DischargeCorrected", "ClaimRequestRefused", "AuditAlert"]))
    if kind == "ClaimRequestRefused":
        return "claims.refusals", kind, {"claim_id": claim, "request_event_id": str(event_id(claim, "c"))}
    if kind == "AuditAlert":
        return "audit.alerts", kind, {
            "alert_id": f"{draw(st.sampled_from(['sample', 'beds']))}:{claim}", "rule": "sample", "claim_id": claim,
            "hospital_id": claim.split(":")[0], "detected_at": "2026-08-01T00:00:00+00:00"}
    return "claims.discharges", kind, {"claim_id": claim, "hospital_id": claim.split(":")[0],
                                       "discharge_date": draw(st.sampled_from(DAYS)).isoformat()}


def event_id(claim: str, kind: str) -> uuid.UUID:
    """Corrections get one of two ids per claim, so some refusals name them and some do not."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{claim}")


def person_snapshots() -> list[PersonSnapshot]:
    from services.enrollment.domain import EnrollmentRules, apply
    from tools.generate import generate_population

    _, commands = generate_population(persons=6, providers=3, seed=3, year=2026)
    return [s for c in commands if (s := apply(None, c, EnrollmentRules(), "x").snapshot) is not None]


PERSONS = person_snapshots()
PERSON_IDS = [p.person_id for p in PERSONS]


def registry_row(topic: str, event_type: str, subject: str, payload: dict[str, Any], offset: int) -> store.EventRow:
    return store.EventRow(topic, 0, offset, subject, event_type, uuid.uuid4(), 1, subject, None, "enrollment", None,
                          datetime(2026, 1, 1, tzinfo=UTC), json.dumps(payload), None)


def rows(events: list[tuple[str, str, dict[str, Any]]], first_offset: int) -> list[store.EventRow]:
    out = []
    for n, (topic, event_type, payload) in enumerate(events):
        eid = (event_id(payload["claim_id"], "c") if event_type == "DischargeCorrected" and n % 2 else uuid.uuid4())
        out.append(store.EventRow(topic, 0, first_offset + n, payload["claim_id"], event_type, eid, 1,
                                  payload["claim_id"], None, "test", payload["claim_id"],
                                  datetime(2026, 8, 1, tzinfo=UTC), json.dumps(payload), None))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.one_of(statement(), request()), max_size=40), cuts=st.lists(st.integers(1, 8), max_size=10),
       person_changes=st.lists(st.tuples(st.integers(0, len(PERSONS) - 1), st.integers(2026, 2027),
                                         st.integers(0, 400)), max_size=4))
async def test_the_summary_says_what_the_full_scan_says(ns: Namespace, events: list[Any], cuts: list[int],
                                                        person_changes: list[tuple[int, int, int]]) -> None:
    conn = await ns.connect("audit")
    try:
        await migrate(conn, AUDIT_MIGRATIONS)
        await conn.execute("""TRUNCATE event_store, person_snapshot, provider_snapshot, kpi_statement, kpi_claim,
                                       kpi_day, kpi_movement, kpi_correction, kpi_refusal, kpi_alert, kpi_person,
                                       kpi_person_kind RESTART IDENTITY""")
        # the registry as the handler keeps it: events in the store, the latest snapshots beside them
        providers = [{"provider_id": f"H0{h}", "version": 1, "level": h, "pool_code": f"POOL{h % 2 + 1}"} for h in (1, 2, 3)]
        await store.append_events(conn, [registry_row("enrollment.providers", "ProviderSnapshot", p["provider_id"], p, n)
                                         for n, p in enumerate(providers)])
        await conn.execute("""INSERT INTO provider_snapshot (provider_id, version, level, pool_code, location,
                                                             licensed_beds, snapshot)
                              SELECT payload->>'provider_id', 1, (payload->>'level')::int, payload->>'pool_code',
                                     'in_pool', 10, payload FROM event_store WHERE topic = 'enrollment.providers'""")
        persons = list(PERSONS)
        changed = []
        for i, year, days in person_changes:  # a later version: another coverage year, paid another day
            p = persons[i].model_dump(mode="json")
            p["coverage"] = [{**c, "coverage_year": year, "payment_date": (date(2025, 9, 1) + timedelta(days)).isoformat()}
                             for c in p["coverage"]]
            persons[i] = PersonSnapshot.model_validate({**p, "version": persons[i].version + 1})
            changed.append(persons[i])
        for n, snapshots in enumerate([PERSONS, *([c] for c in changed)]):
            await store.append_events(conn, [registry_row("enrollment.persons", "PersonSnapshot", s.person_id,
                                                          s.model_dump(mode="json"), 100 * n + k)
                                             for k, s in enumerate(snapshots)])
            await store.upsert_persons(conn, snapshots)
        # the events in batches as the cuts say, each in its own transaction as a consumer's batch
        stored = rows(events, 0)
        start = 0
        for cut in [*cuts, len(stored)]:
            batch = stored[start:start + cut]
            by_topic: dict[str, list[store.EventRow]] = {}
            for r in batch:
                by_topic.setdefault(r.topic, []).append(r)
            for topic_rows in by_topic.values():
                async with conn.transaction():
                    await store.append_events(conn, topic_rows)
            start += cut
            if start >= len(stored):
                break
        for q in QUERIES:
            summary, full = await compute_kpis(conn, q), await compute_kpis_full(conn, q)
            assert summary == full, q
            assert {k: type(v) for k, v in vars(summary).items()} == {k: type(v) for k, v in vars(full).items()}
    finally:
        await conn.close()


async def test_the_migration_folds_what_was_stored_before(ns: Namespace, tmp_path: Path) -> None:
    """An audit database with a history from before the summary: the migration folds it, and the
    summary then says what the full scan says."""
    from bench.kpis import fill

    before = tmp_path / "migrations"
    before.mkdir()
    for sql in sorted(AUDIT_MIGRATIONS.glob("*.sql")):
        if sql.name < "0006":
            (before / sql.name).write_text(sql.read_text())
    conn = await ns.connect("audit")
    try:
        # the same directory name as the service's, so the later migration counts as the next one
        await migrate(conn, before)
        await conn.execute("UPDATE schema_migrations SET name = replace(name, $1, 'audit/migrations')",
                           f"{before.parent.name}/migrations")
        await fill(conn, 3000, 500)
        assert await conn.fetchval("SELECT to_regclass('kpi_claim')") is None
        await migrate(conn, AUDIT_MIGRATIONS)
        assert await conn.fetchval("SELECT count(*) FROM kpi_claim") == 3000
        for q in QUERIES:
            assert await compute_kpis(conn, q) == await compute_kpis_full(conn, q), q
    finally:
        await conn.close()
