"""`./medsettle operator what-if`: re-price a period's claims under a candidate profile, in a sandbox.

Where the history comes from: the claims as the platform settled them, read-only. Settlement's
`layer_claim` rows of the insurance year (each current claim, its position in its person-year, and
its latest basic result: the scheme, hospital level, categories, amounts by class and diagnosis
codes settlement priced it with) give the candidate's input; the actual side is what the platform
stated — each claim's net amounts from assistance's `statement` table — with the caps and
thresholds of the layers' current results (`layer_claim` of settlement, catastrophic and
assistance). A claim rejected with ``NO_POLICY`` gets its categories as of its admission date from
settlement's person projection (the registry snapshot settlement keeps); so do the contribution
years when a profile has a continuity bonus.

Each database is read in one ``REPEATABLE READ, READ ONLY`` transaction (one consistent snapshot
per database, exported to the worker processes so that they all read the same state; the three are
opened one after the other, so a claim whose newest revision is still on its way through the
layers is compared with what was stated so far), streaming settlement's claims in person-year
order. The stored results are decoded straight into the calculators' plain values in SQL, never
through the pydantic contracts. Nothing is written: no topic, accumulator, ledger or statement is
touched, and the live services keep running. The pricing is `policy.whatif` (pure); the workers
are `tools.operator.whatif_workers`.

`run_what_if` (one run), `load_shards` (to price again, solving) and `read_years` are what the
console will call; `report_rows` / `write_csv` give the report as a table (CSV).
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

import asyncpg

from contracts import PersonSnapshot
from contracts.identity import mask_identity_number
from contracts.money import ZERO
from policy.eligibility import categories_as_of
from policy.profile import PolicyProfile
from policy.whatif import (
    BURDEN_BANDS,
    Figures,
    HistoricClaim,
    Pair,
    PersonYear,
    Totals,
    WhatIfReport,
    report_of,
)
from runtime.settings import database_name

if TYPE_CHECKING:
    from tools.operator.whatif_workers import Pool

CLASSES = ("A", "B", "C", "SELF")


@dataclass(frozen=True)
class Needs:
    """What the candidate profile needs beyond the basic result (read only then)."""

    diagnosis_codes: bool = False
    contribution_years: bool = False

    @classmethod
    def of(cls, profile: PolicyProfile) -> Needs:
        bonus = profile.basic is not None and profile.basic.continuity_bonus is not None
        bonus = bonus or any(v.basic is not None and v.basic.continuity_bonus is not None
                             for v in profile.scheme_variants.values())
        return cls(diagnosis_codes=bool(profile.condition_groups), contribution_years=bonus)


@dataclass
class ReadStats:
    """What the reading saw (for the command's header), filled while the years stream."""

    live_profiles: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    """time spent reading (the databases, and the rows into plain values), pricing aside"""
    claims: int = 0
    person_years: int = 0


LAYER_DATABASES = ("settlement", "catastrophic", "assistance")

SHARD = "($2::int <= 1 OR mod(abs(hashtext(person_id)::bigint), $2::int) = $3::int)"
"""A worker's share of the persons (every query takes `$2` shards and `$3` this one)."""


@dataclass(frozen=True)
class Shard:
    """This reader's part of the persons: `index` of `count` (by a hash of the person id)."""

    index: int = 0
    count: int = 1


@asynccontextmanager
async def _snapshot(conn: asyncpg.Connection, exported: str | None) -> AsyncIterator[asyncpg.Connection]:
    """A REPEATABLE READ, READ ONLY transaction; on `exported`, the snapshot another session exported
    (so that every worker reads the very same state)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if exported is not None:
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{exported}'")
        yield conn


@asynccontextmanager
async def exported_snapshots(source: Source) -> AsyncIterator[dict[str, str]]:
    """One consistent snapshot per layer database, exported for the workers (`pg_export_snapshot`),
    held open until the block ends."""
    conns = [await source.connect(s) for s in LAYER_DATABASES]
    try:
        ids: dict[str, str] = {}
        async with _snapshot(conns[0], None), _snapshot(conns[1], None), _snapshot(conns[2], None):
            for name, conn in zip(LAYER_DATABASES, conns, strict=True):
                ids[name] = await conn.fetchval("SELECT pg_export_snapshot()")
            yield ids
    finally:
        for conn in conns:
            await conn.close()


def _statement_nets_sql() -> str:
    sums = ", ".join(f"sum({a}) AS {a}" for a in ("total_cost", "in_policy", "hifp_pay", "hifmi_pay", "maf_pay",
                                                  "psn_pay"))
    return f"""SELECT claim_id, {sums},
                      (array_agg(kind ORDER BY revision DESC))[1] AS last_kind,
                      (array_agg(outcome ORDER BY revision DESC))[1] AS outcome,
                      (array_agg(reason_code ORDER BY revision DESC))[1] AS reason
               FROM statement WHERE insurance_year = $1 AND {SHARD} GROUP BY claim_id"""


_ASSISTANCE_CAP_SQL = """
    SELECT claim_id,
           (jsonb_path_query_first(result, '$.details[*] ? (@.layer == "assistance").cap_left') #>> '{}')::numeric
               AS cap_left
    FROM layer_claim WHERE status = 'current' AND insurance_year = $1 AND """ + SHARD

_CATASTROPHIC_SQL = """
    SELECT claim_id,
           (cat->>'deductible')::numeric AS threshold,
           (cat->>'accumulator_before')::numeric AS before,
           (cat->>'accumulator_after')::numeric AS after,
           (cat->>'cap_left')::numeric AS cap_left
    FROM (SELECT claim_id, result->'catastrophic' AS cat FROM layer_claim
          WHERE status = 'current' AND insurance_year = $1 AND """ + SHARD + """ OFFSET 0) c"""


# The stored results are compressed (TOAST): each `->` on a column decompresses it again, so every
# query takes the value once in a subquery (OFFSET 0 keeps it) and reads its fields from that copy.
def _settlement_sql(needs: Needs) -> str:
    amounts = ", ".join(f"(c.result->'claim'->'amounts_by_class'->>'{k}')::numeric AS amount_{k.lower()}"
                        for k in CLASSES)
    codes = ("ARRAY(SELECT jsonb_array_elements_text(COALESCE(c.result->'claim'->'diagnosis_codes', "
             "c.input->'diagnosis_codes')))" if needs.diagnosis_codes else "NULL::text[]")
    coverage = ("(SELECT ARRAY(SELECT (jsonb_array_elements(p.snapshot->'coverage')->>'coverage_year')::int) "
                "FROM person_projection p WHERE p.person_id = c.person_id)" if needs.contribution_years
                else "NULL::int[]")
    return f"""
        SELECT c.person_id, c.claim_id, c.hospital_id, c.admission_date, c.discharge_date, c.outcome,
               c.result->'rejection'->>'reason_code' AS reason,
               c.result->'claim'->>'scheme' AS scheme,
               c.result->'claim'->>'hospital_level' AS level,
               ARRAY(SELECT jsonb_array_elements_text(c.result->'claim'->'categories')) AS categories,
               (c.result->'claim'->>'disability_grade')::int AS grade,
               (c.result->'claim'->>'total_cost')::numeric AS total_cost,
               {amounts},
               c.result->'claim'->>'care_location' AS care_location,
               (c.result->'claim'->>'referred')::boolean AS referred,
               (c.result->'basic'->>'cap_left')::numeric AS basic_cap_left,
               c.result->'claim'->>'profile_id' AS profile_id,
               c.result->'claim'->>'profile_version' AS profile_version,
               {codes} AS codes,
               {coverage} AS coverage,
               CASE WHEN c.result->'rejection'->>'reason_code' = 'NO_POLICY' THEN
                   (SELECT p.snapshot FROM person_projection p WHERE p.person_id = c.person_id) END AS snapshot
        FROM (SELECT person_id, position, claim_id, hospital_id, admission_date, discharge_date, outcome, input,
                     result || '{{}}'::jsonb AS result
              FROM layer_claim WHERE status = 'current' AND insurance_year = $1 AND {SHARD} OFFSET 0) c
        ORDER BY c.person_id, c.position, c.claim_id"""


def consecutive_years(coverage: Sequence[int] | None, year: int) -> int:
    """Years of uninterrupted contribution up to and including `year` (as settlement counts them)."""
    covered = set(coverage or ())
    n = 0
    while year - n in covered:
        n += 1
    return n


Row = tuple[tuple[Any, ...], tuple[Any, ...] | None, tuple[Any, ...] | None, Decimal | None]
"""One claim as read: settlement's columns (`COLUMNS`), its statements' net (`NET_COLUMNS`, None: no
statement yet), critical illness's current result (`CAT_COLUMNS`) and assistance's cap left. Plain
values (picklable), turned into a `HistoricClaim` by `years_of` — in a worker process when there are."""

COLUMNS = ("person_id", "claim_id", "hospital_id", "admission_date", "discharge_date", "outcome", "reason", "scheme",
           "level", "categories", "grade", "total_cost", *(f"amount_{k.lower()}" for k in CLASSES), "care_location",
           "referred", "basic_cap_left", "profile_id", "profile_version", "codes", "coverage", "snapshot")
NET_COLUMNS = ("claim_id", "total_cost", "in_policy", "hifp_pay", "hifmi_pay", "maf_pay", "psn_pay", "last_kind",
               "outcome", "reason")
CAT_COLUMNS = ("claim_id", "threshold", "before", "after", "cap_left")


def _actual(stmt: tuple[Any, ...] | None, cat: tuple[Any, ...] | None, assist_cap: Decimal | None,
            basic_cap_left: Decimal | None) -> Figures | None:
    """What the platform stated for a claim (`NET_COLUMNS`), with its layers' caps and thresholds."""
    if stmt is None:
        return None  # no statement yet: in flight
    _, total, in_policy, hifp, hifmi, maf, psn, last_kind, outcome, reason = stmt
    if last_kind == "reversal":
        return None  # reversed, and sent again on its way through the layers: in flight
    above, crossed, cat_cap = ZERO, False, False
    if cat is not None and cat[1] is not None:
        _, t, before, after, cap_left = cat
        above = max(after - t, ZERO) - max(before - t, ZERO)
        crossed, cat_cap = after > t, cap_left == 0
    return Figures(outcome, total, in_policy, hifp, hifmi, maf, psn, catastrophic_above=above,
                   basic_cap=basic_cap_left == 0, catastrophic_threshold=crossed, catastrophic_cap=cat_cap,
                   assistance_cap=assist_cap == 0, reason=reason)


_AMOUNTS = tuple((k, COLUMNS.index(f"amount_{k.lower()}")) for k in CLASSES)


def _claim(values: tuple[Any, ...], year: int, actual: Figures | None, persons: dict[str, PersonSnapshot | None]
           ) -> HistoricClaim:
    (person_id, claim_id, hospital_id, admission, discharge, outcome, reason, scheme, level, cats, grade, total,
     *_, care_location, referred, _basic_cap, _pid, _pversion, codes, coverage, snapshot_json) = values
    amounts = {k: values[i] for k, i in _AMOUNTS if values[i] is not None}
    categories = frozenset(cats or ())
    kept = reason if outcome == "rejected" and reason != "NO_POLICY" else None
    if reason == "NO_POLICY":  # priced again: its categories as of the admission date
        if person_id not in persons:
            persons[person_id] = (PersonSnapshot.model_validate_json(snapshot_json)
                                  if snapshot_json is not None else None)
        snapshot = persons[person_id]
        if snapshot is None:
            kept = reason
        else:
            period = categories_as_of(snapshot, admission)
            categories, grade = frozenset(period.categories), period.disability_grade
    return HistoricClaim(
        claim_id=claim_id, hospital_id=hospital_id, discharge_date=discharge, total_cost=total,
        amounts_by_class=amounts, scheme=scheme, hospital_level=level, categories=categories, disability_grade=grade,
        contribution_years=consecutive_years(coverage, year) if coverage is not None else 0,
        care_location=care_location, referred=bool(referred), diagnosis_codes=tuple(codes or ()),
        kept_rejection=kept, actual=actual)


_BASIC_CAP = COLUMNS.index("basic_cap_left")


def years_of(rows: Sequence[Row], year: int) -> list[PersonYear]:
    """The person-years of rows read in person order (a person's rows are never split between batches)."""
    out: list[PersonYear] = []
    persons: dict[str, PersonSnapshot | None] = {}
    person: str | None = None
    claims: list[HistoricClaim] = []
    for values, stmt, cat, cap in rows:
        if values[0] != person:
            if claims:
                out.append(PersonYear(person, year, tuple(claims)))  # type: ignore[arg-type]
            person, claims = values[0], []
        claims.append(_claim(values, year, _actual(stmt, cat, cap, values[_BASIC_CAP]), persons))
    if claims:
        out.append(PersonYear(person, year, tuple(claims)))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class Source:
    """Where the platform's databases are: one connection per service database, as the operator
    connects (`tools.operator.commands.database_conn`), in a namespace `prefix`."""

    prefix: str = ""

    async def connect(self, service: str) -> asyncpg.Connection:
        from tools.operator.commands import database_conn

        return await database_conn(database_name(service, self.prefix))


async def read_rows(source: Source, year: int, needs: Needs, stats: ReadStats | None = None, batch: int = 5000, *,
                    shard: Shard = Shard(), snapshots: dict[str, str] | None = None) -> AsyncIterator[list[Row]]:
    """The insurance year's claims (of `shard`'s persons) in batches of about `batch` rows, in
    person-year order (each person's claims in position order, never split between batches), with
    what was stated for them. One REPEATABLE READ, READ ONLY transaction per database (the
    `snapshots` exported by `exported_snapshots`, when given); nothing is written."""
    stats = stats if stats is not None else ReadStats()
    t0 = time.perf_counter()
    pid, pv = COLUMNS.index("profile_id"), COLUMNS.index("profile_version")
    snapshots = snapshots or {}
    args = (year, shard.count, shard.index)
    conns = [await source.connect(s) for s in LAYER_DATABASES]
    try:
        settlement, catastrophic, assistance = conns
        async with _snapshot(settlement, snapshots.get("settlement")), \
                _snapshot(catastrophic, snapshots.get("catastrophic")), \
                _snapshot(assistance, snapshots.get("assistance")):
            nets = {r[0]: tuple(r) for r in await assistance.fetch(_statement_nets_sql(), *args)}
            caps = {r[0]: r[1] for r in await assistance.fetch(_ASSISTANCE_CAP_SQL, *args)}
            cats = {r[0]: tuple(r) for r in await catastrophic.fetch(_CATASTROPHIC_SQL, *args)}
            rows: list[Row] = []
            person = None
            async for r in settlement.cursor(_settlement_sql(needs), *args, prefetch=batch):
                values = tuple(r)
                if values[0] != person:
                    stats.person_years += 1
                    if len(rows) >= batch:
                        stats.seconds += time.perf_counter() - t0
                        yield rows
                        t0 = time.perf_counter()
                        rows = []
                    person = values[0]
                cid = values[1]
                rows.append((values, nets.get(cid), cats.get(cid), caps.get(cid)))
                stats.claims += 1
                stats.live_profiles[f"{values[pid]} v{values[pv]}"] += 1
            if rows:
                stats.seconds += time.perf_counter() - t0
                yield rows
                t0 = time.perf_counter()
    finally:
        for conn in conns:
            await conn.close()
        stats.seconds += time.perf_counter() - t0


async def read_years(source: Source, year: int, needs: Needs, stats: ReadStats | None = None
                     ) -> AsyncIterator[PersonYear]:
    """The insurance year's person-years (`read_rows`, built in this process)."""
    async for rows in read_rows(source, year, needs, stats):
        for py in years_of(rows, year):
            yield py


DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
"""Worker processes pricing the person-years (this machine has 2 cores)."""


@dataclass(frozen=True)
class Run:
    """A what-if run: its report and how long it took."""

    report: WhatIfReport
    live_profiles: dict[str, int]
    seconds: float
    read_seconds: float
    workers: int

    @property
    def rate(self) -> float:
        return self.report.claims / self.seconds if self.seconds else 0.0


async def run_what_if(source: Source, candidate: PolicyProfile, year: int, *, top: int = 20,
                      workers: int = DEFAULT_WORKERS) -> Run:
    """Re-price the insurance year under `candidate` in one pass: `workers` processes each read their
    share of the persons from the same snapshots and price it as it streams in."""
    from tools.operator.whatif_workers import pool

    t0 = time.perf_counter()
    shards = pool(workers, source, candidate, year, top)  # before any connection is opened (workers are forked)
    try:
        stats = await shards.load(source)
        total = shards.result()
    finally:
        shards.close()
    seconds = time.perf_counter() - t0
    return Run(report_of(total, year, candidate, stats.person_years, stats.claims), dict(stats.live_profiles),
               seconds, stats.seconds, shards.workers)


async def load_shards(source: Source, candidate: PolicyProfile, year: int, *, top: int = 20,
                      workers: int = DEFAULT_WORKERS) -> tuple[Pool, ReadStats]:
    """The insurance year read into `workers` processes that keep it, to be priced again and again
    (`Pool.run`: solving for a parameter). The caller closes the pool."""
    from tools.operator.whatif_workers import pool

    shards = pool(workers, source, candidate, year, top, hold=True)
    try:
        stats = await shards.load(source)
    except BaseException:
        shards.close()
        raise
    return shards, stats


async def read_all(source: Source, year: int, needs: Needs) -> tuple[list[PersonYear], ReadStats]:
    """Every person-year of the insurance year, in this process."""
    stats = ReadStats()
    return [py async for py in read_years(source, year, needs, stats)], stats


# ------------------------------------------------------------------------------ as a table


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _fraction(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _diff(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else b - a


def totals_rows(section: str, group: str, pair: Pair[Totals]) -> list[tuple[str, str, str, str, str, str]]:
    a, c = pair.actual, pair.candidate
    rows: list[tuple[str, str, str, str, str, str]] = []
    for measure, fa, fc in (("claims", a.claims, c.claims), ("settled", a.settled, c.settled),
                            ("rejected", a.rejected, c.rejected)):
        rows.append((section, group, measure, str(fa), str(fc), str(fc - fa)))
    for measure in ("total_cost", "in_policy", "basic", "catastrophic", "assistance", "funds", "patients",
                    "rejected_cost", "catastrophic_above"):
        va, vc = getattr(a, measure), getattr(c, measure)
        rows.append((section, group, measure, _money(va), _money(vc), _money(vc - va)))
    for measure in ("compensation_ratio", "in_policy_ratio", "catastrophic_ratio"):
        va, vc = getattr(a, measure), getattr(c, measure)
        rows.append((section, group, measure, _fraction(va), _fraction(vc), _fraction(_diff(va, vc))))
    return rows


def report_rows(report: WhatIfReport, *, show_identity: bool = False) -> list[tuple[str, str, str, str, str, str]]:
    """The report in long form: (section, group, measure, actual, candidate, difference); money in
    yuan with two decimals, ratios as fractions to 4 places. Person ids are masked unless asked."""
    rows = totals_rows("overall", "all", report.overall)
    for level, pair in report.by_level.items():
        rows += totals_rows("hospital_level", level, pair)
    for category, pair in report.by_category.items():
        rows += totals_rows("assistance_category", category, pair)
    ra, rc = report.reached.actual, report.reached.candidate
    for measure in ("person_years", "basic_cap", "catastrophic_threshold", "catastrophic_cap", "assistance_cap"):
        va, vc = getattr(ra, measure), getattr(rc, measure)
        rows.append(("person_years", "all", measure, str(va), str(vc), str(vc - va)))
    for band in BURDEN_BANDS:
        va, vc = ra.burden_above[band], rc.burden_above[band]
        rows.append(("out_of_pocket_burden", "all", f"above_{band}", str(va), str(vc), str(vc - va)))
    for changed in report.most_changed:
        who = changed.person_id if show_identity else mask_identity_number(changed.person_id)
        group = f"{changed.claim_id} ({who})"
        a, c = changed.actual, changed.candidate
        rows.append(("claims_changed", group, "outcome", a.outcome, c.outcome, ""))
        for measure in ("basic", "catastrophic", "assistance", "funds", "patients"):
            va, vc = getattr(a, measure), getattr(c, measure)
            rows.append(("claims_changed", group, measure, _money(va), _money(vc), _money(vc - va)))
    for name, value in report.differences.items():
        rows.append(("difference", "sum_over_claims", name, "", "", _money(value)))
    rows.append(("difference", "all", "changed_claims", "", "", str(report.changed_claims)))
    return rows


CSV_HEADER = ("section", "group", "measure", "actual", "candidate", "difference")


def write_csv(report: WhatIfReport, out: TextIO, *, show_identity: bool = False) -> int:
    """Write the report as CSV (`report_rows`, with a header); returns the rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    rows = report_rows(report, show_identity=show_identity)
    writer.writerows(rows)
    return len(rows)


__all__ = ["CSV_HEADER", "DEFAULT_WORKERS", "Needs", "ReadStats", "Row", "Run", "Shard", "Source",
           "consecutive_years", "exported_snapshots", "load_shards", "read_all", "read_rows", "read_years",
           "report_rows", "run_what_if", "write_csv", "years_of"]
