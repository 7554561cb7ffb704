"""Batch access to a layer's accumulators and ledger (tables in `ledger_migrations/`).

A batch loads every (person, year) accumulator it needs in one query, folds its claims over them
in memory in arrival order, and writes the changed accumulators and the new ledger rows back in
one statement each — inside the batch's unit of work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

ZERO = Decimal("0.00")


@dataclass
class YearAccumulator:
    person_id: str
    insurance_year: int
    accumulated: Decimal = ZERO
    paid: Decimal = ZERO
    claims: int = 0


@dataclass(frozen=True)
class LedgerRow:
    claim_id: str
    person_id: str
    hospital_id: str
    insurance_year: int
    outcome: str
    base: Decimal
    paid: Decimal
    accumulated_before: Decimal
    accumulated_after: Decimal
    profile_id: str | None
    profile_version: int | None
    detail: dict


async def load_accumulators(conn: asyncpg.Connection, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], YearAccumulator]:
    keys = list(set(keys))
    rows = await conn.fetch(
        """SELECT a.person_id, a.insurance_year, a.accumulated, a.paid, a.claims
           FROM accumulator a JOIN unnest($1::text[], $2::int[]) AS k(p, y)
             ON a.person_id = k.p AND a.insurance_year = k.y
           FOR UPDATE OF a""",
        [k[0] for k in keys], [k[1] for k in keys])
    found = {(r["person_id"], r["insurance_year"]): YearAccumulator(r["person_id"], r["insurance_year"],
                                                                      r["accumulated"], r["paid"], r["claims"])
             for r in rows}
    return {k: found.get(k) or YearAccumulator(k[0], k[1]) for k in keys}


async def save_accumulators(conn: asyncpg.Connection, accumulators: Iterable[YearAccumulator]) -> None:
    accs = list(accumulators)
    if not accs:
        return
    await conn.execute(
        """INSERT INTO accumulator (person_id, insurance_year, accumulated, paid, claims)
           SELECT * FROM unnest($1::text[], $2::int[], $3::numeric[], $4::numeric[], $5::int[])
           ON CONFLICT (person_id, insurance_year) DO UPDATE
             SET accumulated = EXCLUDED.accumulated, paid = EXCLUDED.paid, claims = EXCLUDED.claims, updated_at = now()""",
        [a.person_id for a in accs], [a.insurance_year for a in accs], [a.accumulated for a in accs],
        [a.paid for a in accs], [a.claims for a in accs])


async def insert_ledger(conn: asyncpg.Connection, rows: Iterable[LedgerRow]) -> None:
    rows = list(rows)
    if not rows:
        return
    await conn.copy_records_to_table(
        "ledger",
        columns=["claim_id", "person_id", "hospital_id", "insurance_year", "outcome", "base", "paid",
                 "accumulated_before", "accumulated_after", "profile_id", "profile_version", "detail"],
        records=[(r.claim_id, r.person_id, r.hospital_id, r.insurance_year, r.outcome, r.base, r.paid,
                  r.accumulated_before, r.accumulated_after, r.profile_id, r.profile_version,
                  json.dumps(r.detail, default=str)) for r in rows])
