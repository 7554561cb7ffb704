"""Operator KPIs (经办指标) per period and region, computed by SQL over the audit's event store.

The period is a range of discharge dates (both ends included); the region is a policy profile id
(the statements record the profile that priced them) and/or a provider pool code (from the
provider registry snapshots). Definitions follow seed-rules.md §4.2:

* insured persons by category (参保人数): latest person snapshot with a coverage year in the
  period paid by its end (a waiting period does not make a paid enrollment less insured), not
  deceased before its start; categories as of the period's end;
* a claim's **net** amounts are the sum of its statements (`SettlementStatement`, then
  `SettlementAdjusted` and `SettlementReversed`, one per revision: a re-sent or duplicate statement
  counts once); its **current state** is its latest statement's: settled, rejected, or reversed
  (the latest is a `SettlementReversed`); its discharge date, hospital and profile are the latest
  statement's (a reversal names no profile: the one before it);
* settlements (结算人次): claims by their current state, settled and rejected; reversed claims are
  counted apart;
* fund spending per layer (基金支出): net hifp (basic), hifmi (critical illness), maf (assistance)
  of the claims not rejected now (a reversed claim nets to zero);
* actual inpatient compensation ratio (住院实际补偿比, F000 L13): funds / total cost;
* in-policy reimbursement ratio (政策范围内住院费用报销比例, F000 L13): funds / in-policy cost,
  by hospital level and for level 2 and below;
* cost per stay (次均住院费用, F000 L27): total cost / settled stays;
* compensation per inpatient (人均住院补偿, F000 L13): funds / distinct persons with settled stays;
* catastrophic actual payment ratio (大病保险平均实际支付比例, F001 L159, L365, L727; target ≥ 50%):
  hifmi / the compliant self-pay above the threshold, i.e. per claim the part of its critical-illness
  accumulation above the threshold, `max(after - threshold, 0) - max(before - threshold, 0)`,
  from the claim's current catastrophic row (the latest statement's details);
* corrections and reversals (重新结算 / 冲正) of the period's claims: reversal statements and
  adjustment statements (by the kind of request that caused them, a claim's own or an earlier
  claim's of the same person-year) with their net money for the funds and the patients, and the
  corrections settlement accepted (`DischargeCorrected` not refused);
* alerts by rule: alerts about claims discharged in the period (other alerts by detection date).

Only claims settled now count in stays, persons and the critical-illness base; rejected ones count
as settlements only. Money is `Decimal`; ratios are fractions rounded half-up to 4 places,
averages to the fen.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from contracts import PersonSnapshot
from contracts.money import FEN, ZERO
from runtime.db import Connection

RATIO_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class KpiQuery:
    start: date
    end: date
    region: str | None = None
    """policy profile id"""
    pool: str | None = None
    """provider pool code"""


@dataclass(frozen=True)
class LevelRatio:
    level: int | None
    stays: int
    funds: Decimal
    in_policy: Decimal
    ratio: Decimal | None


@dataclass(frozen=True)
class Movement:
    """Statements of one kind after the first (reversals, adjustments by cause) and their net money."""

    kind: str
    """`reversal`, or `adjustment:<cause kind>` (correction, reversal, reinstatement)"""
    statements: int
    claims: int
    funds: Decimal
    patients: Decimal


@dataclass(frozen=True)
class Kpis:
    query: KpiQuery
    insured_total: int
    insured_by_category: dict[str, int]
    settlements: int
    settled: int
    rejected: int
    inpatients: int
    total_cost: Decimal
    in_policy: Decimal
    basic_paid: Decimal
    catastrophic_paid: Decimal
    assistance_paid: Decimal
    funds_paid: Decimal
    patient_paid: Decimal
    actual_compensation_ratio: Decimal | None
    in_policy_ratio_by_level: tuple[LevelRatio, ...]
    in_policy_ratio_level2_and_below: Decimal | None
    cost_per_stay: Decimal | None
    compensation_per_inpatient: Decimal | None
    catastrophic_beneficiaries: int
    catastrophic_above_threshold: Decimal
    catastrophic_payment_ratio: Decimal | None
    reversed: int = 0
    """claims whose current state is reversed"""
    corrections: int = 0
    """corrections (DischargeCorrected) of the period's claims that settlement did not refuse"""
    movements: tuple[Movement, ...] = ()
    alerts_by_rule: dict[str, int] = field(default_factory=dict)

    def movement(self, kind: str) -> Movement:
        """The reversals (`reversal`) or the adjustments (`adjustment`: all causes, their claims summed
        over the causes; `adjustment:<cause>`)."""
        chosen = [m for m in self.movements if m.kind == kind or m.kind.startswith(kind + ":")]
        return Movement(kind, sum(m.statements for m in chosen), sum(m.claims for m in chosen),
                        sum((m.funds for m in chosen), ZERO), sum((m.patients for m in chosen), ZERO))


# -------------------------------------------------------------- pure helpers


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator as a fraction to 4 places; None when there is nothing to divide by."""
    if not denominator:
        return None
    return (numerator / denominator).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def per_unit(amount: Decimal, count: int) -> Decimal | None:
    """An average amount, to the fen."""
    return (amount / count).quantize(FEN, rounding=ROUND_HALF_UP) if count else None


def above_threshold(threshold: Decimal, before: Decimal, after: Decimal) -> Decimal:
    """The part of one claim's critical-illness accumulation (before → after) above the threshold."""
    return max(after - threshold, ZERO) - max(before - threshold, ZERO)


def insured_in(person: PersonSnapshot, start: date, end: date) -> bool:
    if person.date_of_death is not None and person.date_of_death < start:
        return False
    return any(start.year <= c.coverage_year <= end.year and c.payment_date <= end for c in person.coverage)


def categories_on(person: PersonSnapshot, day: date) -> tuple[str, ...]:
    periods = [p for p in person.category_history if p.effective_from <= day]
    if periods:
        return tuple(periods[-1].categories)
    return tuple(person.category_history[0].categories) if person.category_history else tuple(person.categories)


def insured_by_category(persons: Iterable[PersonSnapshot], start: date, end: date) -> tuple[int, dict[str, int]]:
    """(insured persons, persons per category); a person in several categories counts in each."""
    total, counts = 0, Counter[str]()
    for person in persons:
        if insured_in(person, start, end):
            total += 1
            counts.update(set(categories_on(person, end)))
    return total, dict(sorted(counts.items()))


# ----------------------------------------------------------------------- SQL

_STATEMENTS = """
WITH st AS (  -- one statement per claim and revision, the first stored
    SELECT DISTINCT ON (claim_id, rev) claim_id, rev, id, event_type, payload AS p
    FROM (SELECT claim_id, id, event_type, payload, COALESCE((payload->>'revision')::bigint, 1) AS rev
          FROM event_store WHERE topic = 'claims.statements' AND error IS NULL AND claim_id IS NOT NULL) s
    ORDER BY claim_id, rev, id
), latest AS (  -- the claim now
    SELECT DISTINCT ON (claim_id) claim_id, event_type, p FROM st ORDER BY claim_id, rev DESC, id DESC
), priced AS (  -- the profile that priced it last
    SELECT DISTINCT ON (claim_id) claim_id, p->>'profile_id' AS profile_id
    FROM st WHERE p->>'profile_id' IS NOT NULL ORDER BY claim_id, rev DESC, id DESC
), prov AS (
    SELECT DISTINCT ON (payload->>'provider_id') payload->>'provider_id' AS provider_id,
           (payload->>'level')::int AS level, payload->>'pool_code' AS pool_code
    FROM event_store WHERE topic = 'enrollment.providers' AND error IS NULL
    ORDER BY payload->>'provider_id', (payload->>'version')::bigint DESC, id DESC
), chosen AS (  -- the period's claims
    SELECT latest.claim_id, latest.p->>'person_id' AS person_id, prov.level,
           (latest.p->>'discharge_date')::date AS discharge_date,
           CASE WHEN latest.event_type = 'SettlementReversed' THEN 'reversed' ELSE latest.p->>'outcome' END AS state,
           CASE WHEN latest.event_type = 'SettlementReversed' THEN NULL
                ELSE jsonb_path_query_first(latest.p, '$.details[*] ? (@.layer == "catastrophic")') END AS cat
    FROM latest LEFT JOIN priced USING (claim_id) LEFT JOIN prov ON prov.provider_id = latest.p->>'hospital_id'
    WHERE (latest.p->>'discharge_date')::date BETWEEN $1 AND $2
      AND ($3::text IS NULL OR priced.profile_id = $3)
      AND ($4::text IS NULL OR prov.pool_code = $4)
), moves AS (  -- every statement of the period's claims
    SELECT st.claim_id, st.event_type, st.p->'cause'->>'kind' AS cause,
           (st.p->>'total_cost')::numeric AS total_cost, (st.p->>'in_policy')::numeric AS in_policy,
           (st.p->>'hifp_pay')::numeric AS hifp, (st.p->>'hifmi_pay')::numeric AS hifmi,
           (st.p->>'maf_pay')::numeric AS maf, (st.p->>'fund_pay_sumamt')::numeric AS funds,
           (st.p->>'psn_pay')::numeric AS psn
    FROM st JOIN chosen USING (claim_id)
), nets AS (  -- each claim's net amounts: its statements summed
    SELECT claim_id, sum(total_cost) AS total_cost, sum(in_policy) AS in_policy, sum(hifp) AS hifp,
           sum(hifmi) AS hifmi, sum(maf) AS maf, sum(funds) AS funds, sum(psn) AS psn
    FROM moves GROUP BY claim_id
), sel AS (  -- each claim: its state and net amounts
    SELECT chosen.claim_id, chosen.person_id, chosen.state, chosen.level, chosen.discharge_date,
           nets.total_cost, nets.in_policy, nets.hifp, nets.hifmi, nets.maf, nets.funds, nets.psn,
           CASE WHEN chosen.state <> 'settled' OR chosen.cat IS NULL THEN 0 ELSE
                GREATEST((chosen.cat->>'accumulator_after')::numeric - (chosen.cat->>'deductible')::numeric, 0)
              - GREATEST((chosen.cat->>'accumulator_before')::numeric - (chosen.cat->>'deductible')::numeric, 0)
           END AS cat_base
    FROM chosen JOIN nets USING (claim_id)
)
"""

_TOTALS = _STATEMENTS + """
SELECT count(*) FILTER (WHERE state IN ('settled', 'rejected')) AS settlements,
       count(*) FILTER (WHERE state = 'settled') AS settled,
       count(*) FILTER (WHERE state = 'rejected') AS rejected,
       count(*) FILTER (WHERE state = 'reversed') AS reversed,
       count(DISTINCT person_id) FILTER (WHERE state = 'settled') AS inpatients,
       COALESCE(sum(total_cost) FILTER (WHERE state <> 'rejected'), 0) AS total_cost,
       COALESCE(sum(in_policy) FILTER (WHERE state <> 'rejected'), 0) AS in_policy,
       COALESCE(sum(hifp) FILTER (WHERE state <> 'rejected'), 0) AS hifp,
       COALESCE(sum(hifmi) FILTER (WHERE state <> 'rejected'), 0) AS hifmi,
       COALESCE(sum(maf) FILTER (WHERE state <> 'rejected'), 0) AS maf,
       COALESCE(sum(funds) FILTER (WHERE state <> 'rejected'), 0) AS funds,
       COALESCE(sum(psn) FILTER (WHERE state <> 'rejected'), 0) AS psn,
       COALESCE(sum(cat_base), 0) AS cat_base,
       count(DISTINCT person_id) FILTER (WHERE state = 'settled' AND hifmi > 0) AS cat_beneficiaries
FROM sel
"""

_BY_LEVEL = _STATEMENTS + """
SELECT level, count(*) AS stays, COALESCE(sum(funds), 0) AS funds, COALESCE(sum(in_policy), 0) AS in_policy
FROM sel WHERE state = 'settled' GROUP BY level ORDER BY level NULLS LAST
"""

_MOVEMENTS = _STATEMENTS + """
SELECT CASE WHEN event_type = 'SettlementReversed' THEN 'reversal'
            ELSE 'adjustment:' || COALESCE(cause, 'unknown') END AS kind,
       count(*) AS statements, count(DISTINCT claim_id) AS claims, sum(funds) AS funds, sum(psn) AS patients
FROM moves WHERE event_type IN ('SettlementAdjusted', 'SettlementReversed')
GROUP BY 1 ORDER BY 1
"""

_CORRECTIONS = _STATEMENTS + """
SELECT count(DISTINCT d.event_id) AS corrections
FROM event_store d JOIN chosen ON chosen.claim_id = d.claim_id
WHERE d.topic = 'claims.discharges' AND d.event_type = 'DischargeCorrected' AND d.error IS NULL
  AND NOT EXISTS (SELECT 1 FROM event_store r WHERE r.topic = 'claims.refusals' AND r.claim_id = d.claim_id
                                                AND r.payload->>'request_event_id' = d.event_id::text)
"""

_ALERTS = """
WITH st AS (  -- the profile that priced the claim last, and the discharge date it priced
    SELECT DISTINCT ON (claim_id) claim_id, payload->>'profile_id' AS profile_id,
           (payload->>'discharge_date')::date AS discharge_date
    FROM event_store WHERE topic = 'claims.statements' AND error IS NULL AND claim_id IS NOT NULL
      AND payload->>'profile_id' IS NOT NULL
    ORDER BY claim_id, COALESCE((payload->>'revision')::bigint, 1) DESC, id DESC
), prov AS (
    SELECT DISTINCT ON (payload->>'provider_id') payload->>'provider_id' AS provider_id,
           payload->>'pool_code' AS pool_code
    FROM event_store WHERE topic = 'enrollment.providers' AND error IS NULL
    ORDER BY payload->>'provider_id', (payload->>'version')::bigint DESC, id DESC
), dis AS (  -- a claim not settled yet: its discharge
    SELECT DISTINCT ON (claim_id) claim_id, (payload->>'discharge_date')::date AS discharge_date,
           payload->>'hospital_id' AS hospital_id
    FROM event_store WHERE topic = 'claims.discharges' AND error IS NULL AND claim_id IS NOT NULL
      AND event_type = 'DischargeRecorded'
    ORDER BY claim_id, id
), al AS (
    SELECT DISTINCT ON (payload->>'alert_id') payload->>'rule' AS rule, claim_id,
           payload->>'hospital_id' AS hospital_id,
           ((payload->>'detected_at')::timestamptz AT TIME ZONE 'UTC')::date AS detected_on
    FROM event_store WHERE topic = 'audit.alerts' AND error IS NULL
    ORDER BY payload->>'alert_id', id
)
SELECT al.rule, count(*) AS alerts
FROM al LEFT JOIN dis ON dis.claim_id = al.claim_id
        LEFT JOIN st ON st.claim_id = al.claim_id
        LEFT JOIN prov ON prov.provider_id = COALESCE(al.hospital_id, dis.hospital_id)
WHERE COALESCE(st.discharge_date, dis.discharge_date, al.detected_on) BETWEEN $1 AND $2
  AND ($3::text IS NULL OR st.profile_id = $3)
  AND ($4::text IS NULL OR prov.pool_code = $4)
GROUP BY al.rule ORDER BY al.rule
"""

_SERIES = _STATEMENTS + """
SELECT date_trunc($5, discharge_date)::date AS period, level,
       count(*) FILTER (WHERE state IN ('settled', 'rejected')) AS settlements,
       count(*) FILTER (WHERE state = 'settled') AS settled,
       COALESCE(sum(total_cost) FILTER (WHERE state <> 'rejected'), 0) AS total_cost,
       COALESCE(sum(hifp) FILTER (WHERE state <> 'rejected'), 0) AS hifp,
       COALESCE(sum(hifmi) FILTER (WHERE state <> 'rejected'), 0) AS hifmi,
       COALESCE(sum(maf) FILTER (WHERE state <> 'rejected'), 0) AS maf,
       COALESCE(sum(funds) FILTER (WHERE state <> 'rejected'), 0) AS funds,
       COALESCE(sum(psn) FILTER (WHERE state <> 'rejected'), 0) AS psn,
       COALESCE(sum(funds) FILTER (WHERE state = 'settled'), 0) AS settled_funds,
       COALESCE(sum(in_policy) FILTER (WHERE state = 'settled'), 0) AS settled_in_policy
FROM sel GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST
"""

_PERSONS = """
SELECT DISTINCT ON (payload->>'person_id') payload
FROM event_store WHERE topic = 'enrollment.persons' AND error IS NULL
ORDER BY payload->>'person_id', (payload->>'version')::bigint DESC, id DESC
"""


async def latest_persons(conn: Connection) -> list[PersonSnapshot]:
    return [PersonSnapshot.model_validate(json.loads(r["payload"])) for r in await conn.fetch(_PERSONS)]


# ------------------------------------------------- the KPI summary (kept per batch)

_CHOSEN = """
WITH chosen AS (  -- the period's claims, as the summary keeps them (migrations/0006_kpi_summary.sql)
    SELECT k.* FROM kpi_claim k LEFT JOIN provider_snapshot prov ON prov.provider_id = k.hospital_id
    WHERE k.latest_rev IS NOT NULL AND k.discharge_date BETWEEN $1 AND $2
      AND ($3::text IS NULL OR k.profile_id = $3)
      AND ($4::text IS NULL OR prov.pool_code = $4)
)
"""

_DAYS = """
WITH days AS (  -- the period's claims summed per day, hospital, profile and state
    SELECT d.*, prov.level FROM kpi_day d LEFT JOIN provider_snapshot prov ON prov.provider_id = d.hospital_id
    WHERE d.discharge_date BETWEEN $1 AND $2
      AND ($3::text IS NULL OR d.profile_id = $3)
      AND ($4::text IS NULL OR prov.pool_code = $4)
)
"""

_SUMMARY_TOTALS = _DAYS + """
SELECT COALESCE(sum(claims) FILTER (WHERE state IN ('settled', 'rejected')), 0)::bigint AS settlements,
       COALESCE(sum(claims) FILTER (WHERE state = 'settled'), 0)::bigint AS settled,
       COALESCE(sum(claims) FILTER (WHERE state = 'rejected'), 0)::bigint AS rejected,
       COALESCE(sum(claims) FILTER (WHERE state = 'reversed'), 0)::bigint AS reversed,
       COALESCE(sum(total_cost) FILTER (WHERE state <> 'rejected'), 0) AS total_cost,
       COALESCE(sum(in_policy) FILTER (WHERE state <> 'rejected'), 0) AS in_policy,
       COALESCE(sum(hifp) FILTER (WHERE state <> 'rejected'), 0) AS hifp,
       COALESCE(sum(hifmi) FILTER (WHERE state <> 'rejected'), 0) AS hifmi,
       COALESCE(sum(maf) FILTER (WHERE state <> 'rejected'), 0) AS maf,
       COALESCE(sum(funds) FILTER (WHERE state <> 'rejected'), 0) AS funds,
       COALESCE(sum(psn) FILTER (WHERE state <> 'rejected'), 0) AS psn,
       COALESCE(sum(cat_base), 0) AS cat_base
FROM days
"""

_SUMMARY_PERSONS = _CHOSEN + """
SELECT count(*) AS inpatients, count(*) FILTER (WHERE catastrophic) AS cat_beneficiaries
FROM (SELECT person_id, bool_or(hifmi > 0) AS catastrophic FROM chosen WHERE state = 'settled' GROUP BY person_id) p
"""

_SUMMARY_BY_LEVEL = _DAYS + """
SELECT level, sum(claims)::bigint AS stays, COALESCE(sum(funds), 0) AS funds, COALESCE(sum(in_policy), 0) AS in_policy
FROM days WHERE state = 'settled' GROUP BY level HAVING sum(claims) > 0 ORDER BY level NULLS LAST
"""

_IN_PERIOD = """
    LATERAL (  -- the claim, if it is one of the period's: looked up by its key (LIMIT 1 keeps it a
               -- lookup per row of the small table, not a scan of every claim)
        SELECT 1 FROM kpi_claim k LEFT JOIN provider_snapshot prov ON prov.provider_id = k.hospital_id
        WHERE k.claim_id = {row}.claim_id AND k.latest_rev IS NOT NULL AND k.discharge_date BETWEEN $1 AND $2
          AND ($3::text IS NULL OR k.profile_id = $3) AND ($4::text IS NULL OR prov.pool_code = $4)
        LIMIT 1) AS chosen
"""

_SUMMARY_MOVEMENTS = """
SELECT m.kind, sum(m.statements)::bigint AS statements, count(*) AS claims, sum(m.funds) AS funds,
       sum(m.patients) AS patients
FROM kpi_movement m, """ + _IN_PERIOD.format(row="m") + """
GROUP BY m.kind ORDER BY m.kind
"""

_SUMMARY_CORRECTIONS = """
SELECT count(DISTINCT c.event_id) AS corrections
FROM kpi_correction c, """ + _IN_PERIOD.format(row="c") + """
WHERE NOT EXISTS (SELECT 1 FROM kpi_refusal r WHERE r.claim_id = c.claim_id
                                              AND r.request_event_id = c.event_id::text)
"""

_SUMMARY_ALERTS = """
SELECT al.rule, count(*) AS alerts
FROM kpi_alert al
     LEFT JOIN LATERAL (SELECT named_discharge_date, first_discharge_date, named_profile_id, first_hospital_id
                        FROM kpi_claim k WHERE k.claim_id = al.claim_id LIMIT 1) k ON true  -- a lookup (the key's)
     LEFT JOIN provider_snapshot prov ON prov.provider_id = COALESCE(al.hospital_id, k.first_hospital_id)
WHERE COALESCE(k.named_discharge_date, k.first_discharge_date, al.detected_on) BETWEEN $1 AND $2
  AND ($3::text IS NULL OR k.named_profile_id = $3)
  AND ($4::text IS NULL OR prov.pool_code = $4)
GROUP BY al.rule ORDER BY al.rule
"""

_SUMMARY_INSURED = """
WITH insured AS (  -- insured_in, on the persons' kinds
    SELECT kind_id, facts AS s, persons FROM kpi_person_kind
    WHERE persons > 0
      AND (facts->>'date_of_death' IS NULL OR (facts->>'date_of_death')::date >= $1)
      AND EXISTS (SELECT 1 FROM jsonb_array_elements(facts->'coverage') c
                  WHERE (c->>'coverage_year')::int BETWEEN extract(year FROM $1::date) AND extract(year FROM $2::date)
                    AND (c->>'payment_date')::date <= $2)
), cats AS (  -- categories_on the period's end
    SELECT kind_id, persons, COALESCE(
        (SELECT h->'categories' FROM jsonb_array_elements(s->'category_history') WITH ORDINALITY AS x(h, i)
         WHERE (h->>'effective_from')::date <= $2 ORDER BY i DESC LIMIT 1),
        s->'category_history'->0->'categories', s->'categories') AS categories
    FROM insured
)
SELECT NULL AS category, COALESCE(sum(persons), 0)::bigint AS persons FROM insured
UNION ALL
SELECT category, sum(persons)::bigint FROM (SELECT DISTINCT kind_id, persons, c.category
                                    FROM cats, jsonb_array_elements_text(cats.categories) AS c(category)) k
GROUP BY category
"""


async def compute_kpis(conn: Connection, query: KpiQuery) -> Kpis:
    """The KPIs from the summary the audit keeps per batch (`kpi_claim` and its neighbours): what
    `compute_kpis_full` computes from the event store, without reading it.

    The queries read one snapshot (a repeatable-read transaction, or the caller's own), so a batch
    folded meanwhile is in all of them or in none. JIT compilation is off for them: it took longer
    than the queries (250 ms of the alerts' 530 ms at a million claims, `bench/kpis.py`)."""
    args = (query.start, query.end, query.region, query.pool)
    snapshot = (conn.transaction() if conn.is_in_transaction()
                else conn.transaction(isolation="repeatable_read", readonly=True))
    async with snapshot:
        await conn.execute("SET LOCAL jit = off")
        sums = await conn.fetchrow(_SUMMARY_TOTALS, *args)
        persons = await conn.fetchrow(_SUMMARY_PERSONS, *args)
        assert sums is not None and persons is not None  # aggregates return one row
        t = {**dict(sums), **dict(persons)}
        insured = await conn.fetch(_SUMMARY_INSURED, query.start, query.end)
        return _kpis(query, t, await conn.fetch(_SUMMARY_BY_LEVEL, *args),
                     {r["rule"]: r["alerts"] for r in await conn.fetch(_SUMMARY_ALERTS, *args)},
                     await conn.fetch(_SUMMARY_MOVEMENTS, *args), await conn.fetchval(_SUMMARY_CORRECTIONS, *args),
                     next(r["persons"] for r in insured if r["category"] is None),
                     dict(sorted((r["category"], r["persons"]) for r in insured if r["category"] is not None)))


async def compute_kpis_full(conn: Connection, query: KpiQuery) -> Kpis:
    """The KPIs by a full scan of the event store (the definition the summary is checked against;
    its cost grows with the history). The planner cannot estimate how many claims a period of
    JSON dates selects and, guessing one, joins the statements to them in a nested loop, quadratic
    in the claims (20,000 claims took more than ten minutes): nested loops are off for it."""
    args = (query.start, query.end, query.region, query.pool)
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_nestloop = off")
        t = await conn.fetchrow(_TOTALS, *args)
        assert t is not None  # an aggregate returns one row
        levels = await conn.fetch(_BY_LEVEL, *args)
        alerts = {r["rule"]: r["alerts"] for r in await conn.fetch(_ALERTS, *args)}
        movements = await conn.fetch(_MOVEMENTS, *args)
        corrections = await conn.fetchval(_CORRECTIONS, *args)
    insured, by_category = insured_by_category(await latest_persons(conn), query.start, query.end)
    return _kpis(query, t, levels, alerts, movements, corrections, insured, by_category)


def _kpis(query: KpiQuery, t: Any, level_rows: Iterable[Any], alerts: dict[str, int], movement_rows: Iterable[Any],
          corrections: int | None, insured: int, by_category: dict[str, int]) -> Kpis:
    levels = tuple(LevelRatio(r["level"], r["stays"], r["funds"], r["in_policy"], ratio(r["funds"], r["in_policy"]))
                   for r in level_rows)
    low = [lv for lv in levels if lv.level is not None and lv.level <= 2]
    movements = tuple(Movement(r["kind"], r["statements"], r["claims"], r["funds"], r["patients"])
                      for r in movement_rows)
    return Kpis(
        query=query, insured_total=insured, insured_by_category=by_category,
        settlements=t["settlements"], settled=t["settled"], rejected=t["rejected"], inpatients=t["inpatients"],
        total_cost=t["total_cost"], in_policy=t["in_policy"], basic_paid=t["hifp"], catastrophic_paid=t["hifmi"],
        assistance_paid=t["maf"], funds_paid=t["funds"], patient_paid=t["psn"],
        actual_compensation_ratio=ratio(t["funds"], t["total_cost"]),
        in_policy_ratio_by_level=levels,
        in_policy_ratio_level2_and_below=ratio(sum((lv.funds for lv in low), ZERO),
                                               sum((lv.in_policy for lv in low), ZERO)),
        cost_per_stay=per_unit(t["total_cost"], t["settled"]),
        compensation_per_inpatient=per_unit(t["funds"], t["inpatients"]),
        catastrophic_beneficiaries=t["cat_beneficiaries"], catastrophic_above_threshold=t["cat_base"],
        catastrophic_payment_ratio=ratio(t["hifmi"], t["cat_base"]), reversed=t["reversed"],
        corrections=corrections or 0, movements=movements, alerts_by_rule=alerts)


@dataclass(frozen=True)
class PeriodKpis:
    """The money KPIs of one period of a series (a day or a calendar month of discharge dates), by the
    same definitions as `Kpis` (the same SQL, grouped)."""

    start: date
    settlements: int
    settled: int
    total_cost: Decimal
    basic_paid: Decimal
    catastrophic_paid: Decimal
    assistance_paid: Decimal
    funds_paid: Decimal
    patient_paid: Decimal
    in_policy_ratio_by_level: tuple[LevelRatio, ...]

    @property
    def actual_compensation_ratio(self) -> Decimal | None:
        return ratio(self.funds_paid, self.total_cost)

    @property
    def cost_per_stay(self) -> Decimal | None:
        return per_unit(self.total_cost, self.settled)


async def compute_series(conn: Connection, query: KpiQuery, unit: str) -> list[PeriodKpis]:
    """The query's money KPIs per `unit` (`day` or `month`) of discharge dates, in one pass; periods
    without a claim are left out."""
    if unit not in ("day", "month"):
        raise ValueError(f"unit {unit!r}: day or month")
    rows = await conn.fetch(_SERIES, query.start, query.end, query.region, query.pool, unit)
    out: list[PeriodKpis] = []
    for period in sorted({r["period"] for r in rows}):
        mine = [r for r in rows if r["period"] == period]

        def total(column: str, mine: list[Any] = mine) -> Any:
            return sum((r[column] for r in mine), ZERO if column not in ("settlements", "settled") else 0)

        levels = tuple(LevelRatio(r["level"], r["settled"], r["settled_funds"], r["settled_in_policy"],
                                  ratio(r["settled_funds"], r["settled_in_policy"])) for r in mine if r["settled"])
        out.append(PeriodKpis(period, total("settlements"), total("settled"), total("total_cost"), total("hifp"),
                              total("hifmi"), total("maf"), total("funds"), total("psn"), levels))
    return out
