"""What the console's pages read: the same queries as `./medsettle operator kpis|alerts|trace`
(services/audit/kpis.py, services/audit/store.py) on the audit's database, and the settlement
layers' accumulators and ledgers for a person-year, each as the read-only operator role
(`tools.operator.commands.database_conn`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from contracts.money import ZERO
from contracts.topics import STATEMENTS
from policy import ProfileError, load_profile
from policy.profile import PolicyProfile
from runtime.settings import database_name
from services.audit import store
from services.audit.kpis import KpiQuery, Kpis, PeriodKpis, compute_kpis, compute_series
from tools.operator.commands import database_conn

LAYERS = (("basic", "settlement"), ("catastrophic", "catastrophic"), ("assistance", "assistance"))
"""(layer, the service whose database keeps its accumulators and ledger)."""
STATEMENT_TYPES = ("SettlementStatement", "SettlementAdjusted", "SettlementReversed")
MAX_PERIOD_DAYS = 732


@asynccontextmanager
async def reading(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A read-only connection to `database` as the operator role."""

    conn = await database_conn(database)
    try:
        yield conn
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------ KPIs


def unit_of(start: date, end: date) -> str:
    """The chart's periods: days for a range of up to 62 days, else calendar months."""
    return "day" if (end - start).days <= 62 else "month"


def periods(start: date, end: date) -> list[tuple[str, date]]:
    """(label, first day) of every period of the range (a month's first day may be before `start`)."""
    if unit_of(start, end) == "day":
        return [(d.strftime("%m-%d"), d) for d in (start + timedelta(days=i) for i in range((end - start).days + 1))]
    out, first = [], date(start.year, start.month, 1)
    while first <= end:
        out.append((first.strftime("%Y-%m"), first))
        first = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return out


def _empty(start: date) -> PeriodKpis:
    return PeriodKpis(start, 0, 0, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ())


@dataclass(frozen=True)
class KpiSeries:
    total: Kpis
    periods: list[tuple[str, PeriodKpis]]

    def levels(self) -> list[int | None]:
        return sorted({lv.level for _, k in self.periods for lv in k.in_policy_ratio_by_level},
                      key=lambda lv: (lv is None, lv or 0))


async def kpi_series(conn: asyncpg.Connection, start: date, end: date) -> KpiSeries:
    """The KPIs of the whole range (what `operator kpis --from --to` prints) and the money KPIs of each
    period in it (`compute_series`: one grouped pass of the same SQL)."""
    query = KpiQuery(start, end)
    total = await compute_kpis(conn, query)
    found = {p.start: p for p in await compute_series(conn, query, unit_of(start, end))}
    return KpiSeries(total, [(label, found.get(first) or _empty(first)) for label, first in periods(start, end)])


async def discharge_year(conn: asyncpg.Connection) -> int | None:
    """The latest year with a stated discharge (the pages' default period)."""
    found = await conn.fetchval(
        "SELECT max((payload->>'discharge_date')::date) FROM event_store WHERE topic = $1 AND error IS NULL", STATEMENTS)
    return found.year if found else None


# ---------------------------------------------------------------------------------- trace


@dataclass(frozen=True)
class Trace:
    claim_id: str
    events: list[dict[str, Any]]
    pending_alerts: list[dict[str, Any]]
    knock_on: list[dict[str, Any]]


async def trace(conn: asyncpg.Connection, claim_id: str) -> Trace:
    """What `operator trace` shows: the claim's events in order, alerts not yet consumed back, and the
    revisions of other claims its requests caused."""
    events = await store.claim_history(conn, claim_id)
    alerts = await store.list_alerts(conn, claim_id=claim_id)
    knock_on = await store.caused_by_claim(conn, claim_id)
    consumed = {e["payload"].get("alert_id") for e in events if e["event_type"] == "AuditAlert"}
    return Trace(claim_id, events, [a for a in alerts if a["alert_id"] not in consumed], knock_on)


def statements_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statements (first settlement, adjustments, reversal) from events, one per claim, kind and revision."""
    seen: set[tuple[str | None, str, int]] = set()
    out = []
    for e in events:
        if e["topic"] != STATEMENTS or e["error"] or e["event_type"] not in STATEMENT_TYPES:
            continue
        key = (e.get("claim_id"), e["event_type"], int(e["payload"].get("revision") or 1))
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


MONEY_FIELDS = ("total_cost", "in_policy", "out_of_policy", "hifp_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt",
                "psn_pay")


def net_amounts(statements: list[dict[str, Any]]) -> dict[str, Decimal]:
    """A claim's net amounts: the sum of its statements."""
    return {name: sum((Decimal(str(s["payload"].get(name) or 0)) for s in statements), ZERO) for name in MONEY_FIELDS}


async def person_of_claim(conn: asyncpg.Connection, claim_id: str) -> tuple[str, int] | None:
    """(person id, insurance year) of a stated claim."""
    row = await conn.fetchrow(
        """SELECT payload->>'person_id' AS person_id, (payload->>'insurance_year')::int AS year FROM event_store
           WHERE topic = $1 AND claim_id = $2 AND error IS NULL ORDER BY id LIMIT 1""", STATEMENTS, claim_id)
    return (row["person_id"], row["year"]) if row else None


# ---------------------------------------------------------------------------- person-year


@dataclass
class LayerYear:
    """One layer's view of a person-year: its accumulator, cap and what is left, and its ledger."""

    layer: str
    accumulator: dict[str, Any] | None
    cap: Decimal | None = None
    remaining: Decimal | None = None
    ledger: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PersonYear:
    person_id: str
    year: int
    scheme: str | None
    categories: tuple[str, ...]
    profile: str | None
    layers: list[LayerYear]
    statements: list[dict[str, Any]]


def _cap(profile: PolicyProfile | None, layer: str, scheme: str | None, categories: tuple[str, ...]) -> Decimal | None:
    """The person-year's annual cap (封顶线) of `layer` in the profile: basic and critical illness by
    scheme; assistance the most generous tier of the person's categories (none: no assistance)."""
    if profile is None or scheme is None:
        return None
    section = profile.layer_policy(layer, scheme)  # type: ignore[arg-type]
    if section is None:
        return None
    if layer == "assistance":
        caps = [t.annual_cap for t in section.tiers if t.category in categories]  # type: ignore[union-attr]
        return max(caps) if caps else ZERO
    return section.annual_cap  # type: ignore[union-attr]


def _profile(profile_id: str | None) -> PolicyProfile | None:
    if not profile_id:
        return None
    try:
        return load_profile(profile_id)
    except (ProfileError, FileNotFoundError, ValueError):
        return None


async def person_year(prefix: str, audit: asyncpg.Connection, person_id: str, year: int) -> PersonYear:
    """Each layer's accumulator, cap, remaining cap and ledger of the person-year, and every statement."""
    layers: list[LayerYear] = []
    scheme, categories, profile_id = None, (), None
    for layer, service in LAYERS:
        async with reading(database_name(service, prefix)) as conn:
            acc = await conn.fetchrow("SELECT * FROM accumulator WHERE person_id = $1 AND insurance_year = $2",
                                      person_id, year)
            ledger = await conn.fetch(
                """SELECT l.claim_id, l.revision, l.outcome, l.reversed, l.base, l.paid, l.year_before, l.year_after,
                          l.cause, l.profile_id, l.recorded_at, c.position
                   FROM ledger l LEFT JOIN layer_claim c USING (claim_id)
                   WHERE l.person_id = $1 AND l.insurance_year = $2 ORDER BY c.position NULLS LAST, l.claim_id,
                         l.revision""", person_id, year)
            if layer == "assistance":
                found = await conn.fetchval(
                    """SELECT input->'claim' FROM layer_claim WHERE person_id = $1 AND insurance_year = $2
                       ORDER BY position DESC LIMIT 1""", person_id, year)
                if found:
                    claim = json.loads(found)
                    scheme, categories = claim.get("scheme"), tuple(claim.get("categories") or ())
        rows = [{**dict(r), **{k: json.loads(r[k]) if r[k] else None for k in ("year_before", "year_after", "cause")}}
                for r in ledger]
        profile_id = next((r["profile_id"] for r in reversed(rows) if r["profile_id"]), profile_id)
        layers.append(LayerYear(layer, {k: v for k, v in dict(acc).items() if k != "updated_at"} if acc else None,
                                ledger=rows))
    profile = _profile(profile_id)
    for ly in layers:
        ly.cap = _cap(profile, ly.layer, scheme, categories)
        paid = Decimal(ly.accumulator["paid"]) if ly.accumulator else ZERO
        ly.remaining = None if ly.cap is None else max(ly.cap - paid, ZERO)
    stated = await audit.fetch(
        """SELECT claim_id, event_type, occurred_at, payload FROM event_store
           WHERE topic = $1 AND error IS NULL AND payload->>'person_id' = $2 AND (payload->>'insurance_year')::int = $3
           ORDER BY occurred_at, id""", STATEMENTS, person_id, year)
    statements = statements_of([{"topic": STATEMENTS, "error": None, "event_type": r["event_type"],
                                 "claim_id": r["claim_id"], "occurred_at": r["occurred_at"],
                                 "payload": json.loads(r["payload"])} for r in stated])
    return PersonYear(person_id, year, scheme, categories, profile_id, layers, statements)
