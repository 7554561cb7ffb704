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
per database; the three are opened one after the other, so a claim whose newest revision is still
on its way through the layers is compared with what was stated so far), streaming settlement's
claims in person-year order. Nothing is written: no topic, accumulator, ledger or statement is
touched, and the live services keep running. The pricing is `policy.whatif` (pure).

`read_years` and `run_what_if` are what the console will call; `report_rows` / `write_csv` give
the report as a table (CSV).
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TextIO

import asyncpg

from contracts import PersonSnapshot
from contracts.identity import mask_identity_number
from contracts.money import ZERO
from policy.eligibility import categories_as_of
from policy.profile import PolicyProfile
from policy.whatif import (
    BURDEN_BANDS,
    Aggregate,
    Figures,
    HistoricClaim,
    Pair,
    PersonYear,
    Totals,
    WhatIfReport,
    aggregate_years,
    report_of,
)
from runtime.settings import database_name

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


@asynccontextmanager
async def _snapshot(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        yield conn


def _statement_nets_sql() -> str:
    sums = ", ".join(f"sum({a}) AS {a}" for a in ("total_cost", "in_policy", "hifp_pay", "hifmi_pay", "maf_pay",
                                                  "psn_pay"))
    return f"""SELECT claim_id, {sums},
                      (array_agg(kind ORDER BY revision DESC))[1] AS last_kind,
                      (array_agg(outcome ORDER BY revision DESC))[1] AS outcome,
                      (array_agg(reason_code ORDER BY revision DESC))[1] AS reason
               FROM statement WHERE insurance_year = $1 GROUP BY claim_id"""


_ASSISTANCE_CAP_SQL = """
    SELECT claim_id,
           (jsonb_path_query_first(result, '$.details[*] ? (@.layer == "assistance").cap_left') #>> '{}')::numeric
               AS cap_left
    FROM layer_claim WHERE status = 'current' AND insurance_year = $1"""

_CATASTROPHIC_SQL = """
    SELECT claim_id,
           (result->'catastrophic'->>'deductible')::numeric AS threshold,
           (result->'catastrophic'->>'accumulator_before')::numeric AS before,
           (result->'catastrophic'->>'accumulator_after')::numeric AS after,
           (result->'catastrophic'->>'cap_left')::numeric AS cap_left
    FROM layer_claim WHERE status = 'current' AND insurance_year = $1"""


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
        FROM layer_claim c
        WHERE c.status = 'current' AND c.insurance_year = $1
        ORDER BY c.person_id, c.position, c.claim_id"""


def consecutive_years(coverage: Sequence[int] | None, year: int) -> int:
    """Years of uninterrupted contribution up to and including `year` (as settlement counts them)."""
    covered = set(coverage or ())
    n = 0
    while year - n in covered:
        n += 1
    return n


def _actual(stmt: asyncpg.Record | None, cat: asyncpg.Record | None, assist_cap: Decimal | None,
            basic_cap_left: Decimal | None) -> Figures | None:
    if stmt is None or stmt["last_kind"] == "reversal":
        return None  # no statement yet, or a reinstatement on its way: in flight
    above, crossed, cat_cap = ZERO, False, False
    if cat is not None and cat["threshold"] is not None:
        t = cat["threshold"]
        above = max(cat["after"] - t, ZERO) - max(cat["before"] - t, ZERO)
        crossed, cat_cap = cat["after"] > t, cat["cap_left"] == 0
    return Figures(stmt["outcome"], stmt["total_cost"], stmt["in_policy"], stmt["hifp_pay"], stmt["hifmi_pay"],
                   stmt["maf_pay"], stmt["psn_pay"], catastrophic_above=above, basic_cap=basic_cap_left == 0,
                   catastrophic_threshold=crossed, catastrophic_cap=cat_cap, assistance_cap=assist_cap == 0,
                   reason=stmt["reason"])


def _claim(r: asyncpg.Record, year: int, actual: Figures | None, persons: dict[str, PersonSnapshot | None]
           ) -> HistoricClaim:
    amounts = {k: r[f"amount_{k.lower()}"] for k in CLASSES if r[f"amount_{k.lower()}"] is not None}
    reason = r["reason"]
    categories, grade = frozenset(r["categories"] or ()), r["grade"]
    kept = reason if r["outcome"] == "rejected" and reason != "NO_POLICY" else None
    if reason == "NO_POLICY":  # priced again: its categories as of the admission date
        snapshot = persons.get(r["person_id"])
        if r["person_id"] not in persons:
            snapshot = persons[r["person_id"]] = (PersonSnapshot.model_validate_json(r["snapshot"])
                                                  if r["snapshot"] is not None else None)
        if snapshot is None:
            kept = reason
        else:
            period = categories_as_of(snapshot, r["admission_date"])
            categories, grade = frozenset(period.categories), period.disability_grade
    return HistoricClaim(
        claim_id=r["claim_id"], hospital_id=r["hospital_id"], discharge_date=r["discharge_date"],
        total_cost=r["total_cost"], amounts_by_class=amounts, scheme=r["scheme"], hospital_level=r["level"],
        categories=categories, disability_grade=grade,
        contribution_years=consecutive_years(r["coverage"], year) if r["coverage"] is not None else 0,
        care_location=r["care_location"], referred=bool(r["referred"]), diagnosis_codes=tuple(r["codes"] or ()),
        kept_rejection=kept, actual=actual)


@dataclass(frozen=True)
class Source:
    """Where the platform's databases are: one connection per service database, as the operator
    connects (`tools.operator.commands.database_conn`), in a namespace `prefix`."""

    prefix: str = ""

    async def connect(self, service: str) -> asyncpg.Connection:
        from tools.operator.commands import database_conn

        return await database_conn(database_name(service, self.prefix))


async def read_years(source: Source, year: int, needs: Needs, stats: ReadStats | None = None,
                     batch: int = 5000) -> AsyncIterator[PersonYear]:
    """The insurance year's person-years, streamed in person order, each with its current claims in
    position order and what was stated for them. Read-only snapshots; nothing is written."""
    stats = stats if stats is not None else ReadStats()
    t0 = time.perf_counter()
    conns = [await source.connect(s) for s in ("settlement", "catastrophic", "assistance")]
    try:
        settlement, catastrophic, assistance = conns
        async with _snapshot(settlement), _snapshot(catastrophic), _snapshot(assistance):
            nets = {r["claim_id"]: r for r in await assistance.fetch(_statement_nets_sql(), year)}
            caps = {r["claim_id"]: r["cap_left"] for r in await assistance.fetch(_ASSISTANCE_CAP_SQL, year)}
            cats = {r["claim_id"]: r for r in await catastrophic.fetch(_CATASTROPHIC_SQL, year)}
            persons: dict[str, PersonSnapshot | None] = {}
            person: str | None = None
            claims: list[HistoricClaim] = []
            async for r in settlement.cursor(_settlement_sql(needs), year, prefetch=batch):
                if r["person_id"] != person:
                    if claims:
                        stats.seconds += time.perf_counter() - t0
                        yield PersonYear(person, year, tuple(claims))  # type: ignore[arg-type]
                        t0 = time.perf_counter()
                    person, claims = r["person_id"], []
                    persons.clear()
                cid = r["claim_id"]
                actual = _actual(nets.get(cid), cats.get(cid), caps.get(cid), r["basic_cap_left"])
                claims.append(_claim(r, year, actual, persons))
                stats.live_profiles[f"{r['profile_id']} v{r['profile_version']}"] += 1
            if claims:
                stats.seconds += time.perf_counter() - t0
                yield PersonYear(person, year, tuple(claims))  # type: ignore[arg-type]
                t0 = time.perf_counter()
    finally:
        for conn in conns:
            await conn.close()
        stats.seconds += time.perf_counter() - t0


@dataclass(frozen=True)
class Run:
    """A what-if run: its report and how long it took."""

    report: WhatIfReport
    live_profiles: dict[str, int]
    seconds: float
    read_seconds: float

    @property
    def rate(self) -> float:
        return self.report.claims / self.seconds if self.seconds else 0.0


async def run_what_if(source: Source, candidate: PolicyProfile, year: int, *, top: int = 20) -> Run:
    """Re-price the insurance year under `candidate` (one pass, streaming)."""
    stats = ReadStats()
    counted = _Collector()
    t0 = time.perf_counter()
    agg = _Aggregator(candidate, top)
    async for py in read_years(source, year, Needs.of(candidate), stats):
        counted.add(py)
        agg.add(py)
    total = agg.result()
    seconds = time.perf_counter() - t0
    return Run(report_of(total, year, candidate, counted.years, counted.claims), dict(stats.live_profiles), seconds,
               stats.seconds)


async def read_all(source: Source, year: int, needs: Needs) -> tuple[list[PersonYear], ReadStats]:
    stats = ReadStats()
    return [py async for py in read_years(source, year, needs, stats)], stats


class _Collector:
    def __init__(self) -> None:
        self.years = self.claims = 0

    def add(self, py: PersonYear) -> None:
        self.years += 1
        self.claims += len(py.claims)


class _Aggregator:
    """Prices person-years as they stream in, in chunks (`policy.whatif.aggregate_years`)."""

    CHUNK = 2000

    def __init__(self, candidate: PolicyProfile, top: int) -> None:
        self.candidate, self.top = candidate, top
        self.pending: list[PersonYear] = []
        self.total = aggregate_years((), candidate, top=top)

    def add(self, py: PersonYear) -> None:
        self.pending.append(py)
        if len(self.pending) >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.total.merge(aggregate_years(self.pending, self.candidate, top=self.top))
            self.pending = []

    def result(self) -> Aggregate:
        self._flush()
        return self.total


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


__all__ = ["CSV_HEADER", "Needs", "ReadStats", "Run", "Source", "consecutive_years", "read_all", "read_years",
           "report_rows", "run_what_if", "write_csv"]
