"""`operator kpis` on an audit database holding a year of a million claims.

    .venv/bin/python bench/kpis.py [--claims 1000000] [--persons 250000] [--keep]

Makes an audit database in a fresh namespace on the local stack (owned by the audit's role,
migrated as the service migrates it), fills its event store with SQL (`generate_series`, not
through Kafka): the providers, the persons (their snapshots made from the generator's
enrollments), one `DischargeRecorded` and one `SettlementStatement` per claim over one year, a
correction and an adjustment on 2% of the claims (a third of the corrections refused), a reversal
on 1%, alerts on about 6%; then folds it into the KPI summary as the service does per batch
(`kpi_fold`, the same function), and prints how long that took, how long `./medsettle operator
kpis` takes on the year (the command, as the operator role, and the computation alone), and how
long the full scan of the event store (`compute_kpis_full`) takes, checking both give the same
KPIs. The layers' own events (`claims.basic-settled`, `claims.catastrophic-settled`) and the
discharges' bills are left out of the event store, which makes the full scan look better than it is
in production. Drops the database unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.db import migrate  # noqa: E402
from runtime.settings import database_name  # noqa: E402
from services.audit.kpis import KpiQuery, compute_kpis, compute_kpis_full  # noqa: E402
from tools import stack  # noqa: E402
from tools.stack.connection import service_connection  # noqa: E402
from tools.stack.pg import create_service_database  # noqa: E402

TEMPLATES = 200
"""Person snapshots made by the enrollment rules from generated commands; person i is template i % 200."""

_EVENT_COLUMNS = ('topic, partition, "offset", key, event_type, event_id, schema_version, correlation_id, '
                  'causation_id, producer, claim_id, occurred_at, payload')

_CLAIMS = """
CREATE UNLOGGED TABLE bench_claim AS
SELECT i, format('H%s:C%s', lpad((1 + i % 50)::text, 2, '0'), i) AS claim_id,
       (SELECT pid FROM bench_person WHERE n = i % $2) AS person_id,
       format('H%s', lpad((1 + i % 50)::text, 2, '0')) AS hospital_id,
       date '2026-01-01' + (i % 365) AS discharge_date, r, total, in_policy,
       CASE WHEN r > 0.97 THEN 0 ELSE round(in_policy * 0.6, 2) END AS hifp,
       CASE WHEN r < 0.1 THEN round(in_policy * 0.1, 2) ELSE 0 END AS hifmi,
       CASE WHEN r < 0.05 THEN round(in_policy * 0.05, 2) ELSE 0 END AS maf,
       round((r * 20000)::numeric, 2) AS acc_before
FROM (SELECT i, random() AS r, round((2000 + random() * 60000)::numeric, 2) AS total FROM generate_series(1, $1) i) g,
     LATERAL (SELECT round(total * 0.85, 2) AS in_policy) p
"""

_STATEMENT = """
jsonb_build_object('claim_id', claim_id, 'hospital_claim_id', 'C' || i, 'hospital_id', hospital_id,
    'person_id', person_id, 'admission_date', discharge_date - 5, 'discharge_date', discharge_date,
    'insurance_year', 2026, 'outcome', CASE WHEN r > 0.97 THEN 'rejected' ELSE 'settled' END,
    'total_cost', round({k} * total, 2)::text, 'in_policy', round({k} * in_policy, 2)::text,
    'out_of_policy', round({k} * (total - in_policy), 2)::text, 'hifp_pay', round({k} * hifp, 2)::text,
    'hifmi_pay', round({k} * hifmi, 2)::text, 'maf_pay', round({k} * maf, 2)::text,
    'fund_pay_sumamt', round({k} * (hifp + hifmi + maf), 2)::text, 'psn_pay', round({k} * (total - hifp - hifmi - maf), 2)::text,
    'details', jsonb_build_array(
        jsonb_build_object('layer', 'basic', 'base', in_policy::text, 'deductible', '800.00', 'paid', hifp::text,
                           'accumulator_before', '0.00', 'accumulator_after', hifp::text,
                           'profile_id', 'demo-county', 'profile_version', '2026.1'),
        jsonb_build_object('layer', 'catastrophic', 'base', (in_policy - hifp)::text, 'deductible', '6000.00',
                           'paid', hifmi::text, 'accumulator_before', acc_before::text,
                           'accumulator_after', (acc_before + 2 * hifmi)::text,
                           'profile_id', 'demo-county', 'profile_version', '2026.1'),
        jsonb_build_object('layer', 'assistance', 'base', (total - hifp - hifmi)::text, 'deductible', '0.00',
                           'paid', maf::text, 'accumulator_before', '0.00', 'accumulator_after', maf::text,
                           'profile_id', 'demo-county', 'profile_version', '2026.1')),
    'profile_id', 'demo-county', 'profile_version', '2026.1', 'settled_at', '2026-12-31T00:00:00+00:00',
    'revision', {rev}{extra})
"""


def _events(topic: str, event_type: str, offset: str, event_id: str, producer: str, payload: str,
            where: str = "true", claim: str = "claim_id") -> str:
    return (f"INSERT INTO event_store ({_EVENT_COLUMNS}) SELECT '{topic}', 0, {offset}, person_id, '{event_type}', "
            f"md5({event_id})::uuid, 1, claim_id, NULL, '{producer}', {claim}, timestamptz '2026-12-31', {payload} "
            f"FROM bench_claim WHERE {where} ORDER BY i")


FILL = [
    _events("claims.discharges", "DischargeRecorded", "i", "'d' || i", "hospital:x",
            "jsonb_build_object('claim_id', claim_id, 'hospital_id', hospital_id, 'person_id', person_id, "
            "'admission_date', discharge_date - 5, 'discharge_date', discharge_date)"),
    _events("claims.statements", "SettlementStatement", "i", "'s' || i", "assistance",
            _STATEMENT.format(k=1, rev=1, extra="")),
    _events("claims.discharges", "DischargeCorrected", "10000000 + i", "'c' || i", "hospital:x",
            "jsonb_build_object('claim_id', claim_id, 'hospital_id', hospital_id, 'person_id', person_id, "
            "'discharge_date', discharge_date)", "i % 50 = 7"),
    _events("claims.refusals", "ClaimRequestRefused", "i", "'r' || i", "settlement",
            "jsonb_build_object('claim_id', claim_id, 'request_event_id', md5('c' || i)::uuid::text, "
            "'request_type', 'DischargeCorrected', 'reason', 'bench')", "i % 150 = 7"),
    _events("claims.statements", "SettlementAdjusted", "10000000 + i", "'a' || i", "assistance",
            _STATEMENT.format(k="0.1", rev=2, extra=", 'cause', jsonb_build_object('kind', 'correction', "
                                                  "'claim_id', claim_id)"), "i % 50 = 7 AND i % 150 <> 7"),
    _events("claims.statements", "SettlementReversed", "20000000 + i", "'v' || i", "assistance",
            _STATEMENT.format(k=-1, rev=2, extra=", 'cause', jsonb_build_object('kind', 'reversal', "
                                                 "'claim_id', claim_id)").replace(
                "'profile_id', 'demo-county', 'profile_version', '2026.1', 'settled_at'", "'settled_at'"),
            "i % 100 = 13"),
    _events("audit.alerts", "AuditAlert", "i", "'al' || i", "audit",
            "jsonb_build_object('alert_id', CASE WHEN i % 20 = 3 THEN 'manual_review_sample:' ELSE 'duplicate_line:' "
            "END || claim_id, 'rule', CASE WHEN i % 20 = 3 THEN 'manual_review_sample' ELSE 'duplicate_line' END, "
            "'claim_id', claim_id, 'hospital_id', hospital_id, 'detected_at', '2026-12-31T00:00:00+00:00')",
            "i % 20 = 3 OR i % 97 = 5"),
]


def person_ids(persons: int) -> list[str]:
    """Valid identity numbers (GB 11643), all different."""
    from contracts.identity import make_identity_number

    return [make_identity_number("110101", date(1950, 1, 1) + timedelta(days=n // 999), n % 999 + 1)
            for n in range(persons)]


def person_templates() -> list[str]:
    from services.enrollment.domain import EnrollmentRules, apply
    from tools.generate import generate_population

    _, commands = generate_population(persons=TEMPLATES, providers=5, seed=7, year=2026)
    snaps = [s for c in commands if (s := apply(None, c, EnrollmentRules(), "x").snapshot) is not None]
    return [s.model_dump_json() for s in snaps]


async def fill(conn: asyncpg.Connection, claims: int, persons: int) -> None:
    await conn.execute("SELECT setseed(0.42)")
    ids = person_ids(persons)
    await conn.execute("CREATE UNLOGGED TABLE bench_person (n int PRIMARY KEY, pid text NOT NULL)")
    await conn.execute("INSERT INTO bench_person SELECT n - 1, pid FROM unnest($1::text[]) WITH ORDINALITY AS u(pid, n)", ids)
    await conn.execute(_CLAIMS.replace("$1", str(claims)).replace("$2", str(persons)))
    templates = person_templates()
    await conn.execute(
        f"""INSERT INTO event_store ({_EVENT_COLUMNS})
            SELECT 'enrollment.providers', 0, p, 'H' || lpad(p::text, 2, '0'), 'ProviderSnapshot', md5('p' || p)::uuid,
                   1, 'H' || lpad(p::text, 2, '0'), NULL, 'enrollment', NULL, timestamptz '2025-12-01',
                   jsonb_build_object('provider_id', 'H' || lpad(p::text, 2, '0'), 'version', 1, 'level', 1 + p % 3,
                                      'pool_code', 'POOL' || p % 2)
            FROM generate_series(1, 50) p""")
    await conn.execute(
        """INSERT INTO provider_snapshot (provider_id, version, level, pool_code, location, licensed_beds, snapshot)
           SELECT payload->>'provider_id', 1, (payload->>'level')::int, payload->>'pool_code', 'in_pool', 500, payload
           FROM event_store WHERE topic = 'enrollment.providers'""")
    await conn.execute("CREATE UNLOGGED TABLE bench_template (t int PRIMARY KEY, snapshot jsonb NOT NULL)")
    await conn.execute("INSERT INTO bench_template SELECT t - 1, s FROM unnest($1::jsonb[]) WITH ORDINALITY AS u(s, t)",
                       templates)
    await conn.execute(
        f"""INSERT INTO event_store ({_EVENT_COLUMNS})
            SELECT 'enrollment.persons', 0, n, pid, 'PersonSnapshot', md5('person' || n)::uuid, 1, pid, NULL,
                   'enrollment', NULL, timestamptz '2025-12-01', jsonb_set(snapshot, '{{person_id}}', to_jsonb(pid))
            FROM bench_person JOIN bench_template ON t = n % {len(templates)} ORDER BY n""")
    await conn.execute("""INSERT INTO person_snapshot (person_id, version, snapshot)
                          SELECT payload->>'person_id', 1, payload FROM event_store WHERE topic = 'enrollment.persons'""")
    for sql in FILL:
        await conn.execute(sql)
    await conn.execute("DROP TABLE bench_claim, bench_person, bench_template")
    await conn.execute("ANALYZE")


async def fold_all(conn: asyncpg.Connection) -> int:
    """Fold the persons and the whole event store into the KPI summary, in the order stored, 500 at a
    time (a batch of the service's)."""
    last, total = 0, 0
    persons = [r["person_id"] for r in await conn.fetch("SELECT person_id FROM person_snapshot ORDER BY person_id")]
    for i in range(0, len(persons), 500):  # as the handler does on each batch of person snapshots
        async with conn.transaction():
            await conn.execute("SELECT kpi_persons($1::text[])", persons[i:i + 500])
    while True:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM event_store WHERE id > $1 ORDER BY id LIMIT 500", last)]
        if not ids:
            return total
        async with conn.transaction():
            await conn.execute("SELECT kpi_fold($1::bigint[])", ids)
        last, total = ids[-1], total + len(ids)


async def main(claims: int, persons: int, keep: bool) -> None:
    settings = stack.start()
    server, passfile = settings["DATABASE_URL"], settings["PGPASSFILE"]
    prefix = f"k{uuid.uuid4().hex[:8]}."
    db = database_name("audit", prefix)
    await create_service_database(server, db, "audit", passfile)
    as_audit = service_connection("audit", server)
    try:
        conn = await asyncpg.connect(f"{as_audit['DATABASE_URL']}/{db}", passfile=as_audit.get("PGPASSFILE"))
        await migrate(conn, ROOT / "services" / "audit" / "migrations")
        t0 = time.perf_counter()
        await fill(conn, claims, persons)
        rows = await conn.fetchval("SELECT count(*) FROM event_store")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('event_store'))")
        print(f"filled the event store: {rows:,} events ({size}) for {claims:,} claims and {persons:,} persons "
              f"in {time.perf_counter() - t0:.0f}s")
        t0 = time.perf_counter()
        folded = await fold_all(conn)
        t_fold = time.perf_counter() - t0
        await conn.execute("ANALYZE")
        print(f"folded into the KPI summary in batches of 500: {t_fold:.0f}s ({folded / t_fold:,.0f} events/s)")
        year = KpiQuery(date(2026, 1, 1), date(2026, 12, 31))
        t0 = time.perf_counter()
        summary = await compute_kpis(conn, year)
        t_folded = time.perf_counter() - t0
        # what autovacuum does once the tables settle: it marks the pages all-visible, which the
        # index-only scans of the summary need (right after a fold of every claim they are not)
        await conn.execute("VACUUM (ANALYZE) kpi_claim, kpi_day, kpi_alert, kpi_movement, kpi_correction")
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            summary = await compute_kpis(conn, year)
            runs.append(time.perf_counter() - t0)
        t_summary = sorted(runs)[1]
        print(f"KPIs of the year from the summary: {t_summary:.2f}s (the median of 3 after VACUUM; "
              f"{t_folded:.2f}s right after the fold, before it)")
        t0 = time.perf_counter()
        full = await compute_kpis_full(conn, year)
        t_full = time.perf_counter() - t0
        await conn.close()
        print(f"KPIs by a full scan of the event store: {t_full:.1f}s ({t_full / t_summary:,.0f} times as long); "
              f"the same KPIs: {summary == full}")
        print(f"  {summary.settlements:,} settlements, {summary.reversed:,} reversed, {summary.corrections:,} corrections, "
              f"funds {summary.funds_paid}, insured {summary.insured_total:,}, alerts {sum(summary.alerts_by_rule.values()):,}")
        command = [sys.executable, "-m", "tools", "operator", "kpis", "--from", "2026-01-01", "--to", "2026-12-31",
                   "--audit-db", db]
        for attempt in ("first", "second"):  # the first after the full scan, which pushed the summary out of cache
            t0 = time.perf_counter()
            done = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE)
            out, err = await done.communicate()
            t_command = time.perf_counter() - t0
            print(f"`./medsettle operator kpis --from 2026-01-01 --to 2026-12-31`, {attempt} run: {t_command:.2f}s "
                  f"(exit {done.returncode}, interpreter start-up included)")
        if done.returncode:
            print(out.decode()[-2000:], err.decode()[-2000:])
        if summary != full:
            print(json.dumps({"summary": str(summary), "full": str(full)}, indent=1)[:4000])
    finally:
        if not keep:
            admin = await asyncpg.connect(f"{server}/postgres", passfile=passfile)
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await admin.close()
        else:
            print(f"kept the database {db}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", type=int, default=1_000_000)
    ap.add_argument("--persons", type=int, default=250_000)
    ap.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = ap.parse_args()
    asyncio.run(main(args.claims, args.persons, args.keep))
