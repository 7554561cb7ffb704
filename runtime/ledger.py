"""A settlement layer's state: its year accumulators and its ledger (tables in `ledger_migrations/`
and each layer's own migrations).

The accumulator of one (person, insurance year) is the layer calculator's year state — a frozen
dataclass of `Decimal` fields (`BasicYearState(paid, deductible_met)`,
`CatastrophicYearState(accumulation, paid)`, `AssistanceYearState(paid)`) — and its columns are
named like those fields. The ledger has one row per claim with what the layer priced, what its
fund paid, and the year state before and after the claim.

`LedgerStore` is what a layer handler sees: `PostgresLedger` (one query per batch to load, one
statement per table to write) and `InMemoryLedger` (handler unit tests).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from runtime.db import Connection

S = TypeVar("S")
"""A layer's year state: a frozen dataclass whose fields are `Decimal` amounts."""
YearKey = tuple[str, int]
"""(person id, insurance year)"""


@dataclass(frozen=True)
class YearRow(Generic[S]):
    """The accumulator of one person-year: the year state and how many claims changed it."""

    state: S
    claims: int = 0


@dataclass(frozen=True)
class LedgerRow:
    """One claim in a layer's ledger."""

    claim_id: str
    person_id: str
    hospital_id: str
    insurance_year: int
    outcome: str
    base: Decimal
    """what the layer priced (its input residual)"""
    paid: Decimal
    """what the layer's fund paid"""
    year_before: Mapping[str, Decimal]
    year_after: Mapping[str, Decimal]
    profile_id: str | None
    profile_version: int | None
    detail: Mapping[str, Any]


def state_fields(state_type: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(state_type))


def state_values(state: Any) -> dict[str, Decimal]:
    """A year state as a mapping of its fields (for the ledger's `year_before`/`year_after`)."""
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


class LedgerStore(Protocol[S]):
    async def load_years(self, keys: Iterable[YearKey]) -> dict[YearKey, YearRow[S]]:
        """The accumulators of these person-years (a new one starts at the state's defaults), locked
        for the transaction."""
        ...

    async def save_years(self, rows: Mapping[YearKey, YearRow[S]]) -> None: ...

    async def add_ledger(self, rows: Iterable[LedgerRow]) -> None: ...


class PostgresLedger(Generic[S]):
    def __init__(self, conn: Connection, state_type: type[S]) -> None:
        self.conn = conn
        self.state_type = state_type
        self.columns = state_fields(state_type)

    async def load_years(self, keys: Iterable[YearKey]) -> dict[YearKey, YearRow[S]]:
        wanted = list(set(keys))
        cols = ", ".join(f"a.{c}" for c in self.columns)
        rows = await self.conn.fetch(
            f"""SELECT a.person_id, a.insurance_year, a.claims, {cols}
                FROM accumulator a JOIN unnest($1::text[], $2::int[]) AS k(p, y)
                  ON a.person_id = k.p AND a.insurance_year = k.y
                FOR UPDATE OF a""",
            [k[0] for k in wanted], [k[1] for k in wanted])
        found = {(r["person_id"], r["insurance_year"]):
                 YearRow(self.state_type(**{c: r[c] for c in self.columns}), r["claims"]) for r in rows}
        return {k: found.get(k) or YearRow(self.state_type()) for k in wanted}

    async def save_years(self, rows: Mapping[YearKey, YearRow[S]]) -> None:
        if not rows:
            return
        keys = list(rows)
        cols = ", ".join(self.columns)
        casts = ", ".join(f"${i + 4}::numeric[]" for i in range(len(self.columns)))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in self.columns)
        await self.conn.execute(
            f"""INSERT INTO accumulator (person_id, insurance_year, claims, {cols})
                SELECT * FROM unnest($1::text[], $2::int[], $3::int[], {casts})
                ON CONFLICT (person_id, insurance_year) DO UPDATE
                  SET claims = EXCLUDED.claims, {updates}, updated_at = now()""",
            [k[0] for k in keys], [k[1] for k in keys], [rows[k].claims for k in keys],
            *([getattr(rows[k].state, c) for k in keys] for c in self.columns))

    async def add_ledger(self, rows: Iterable[LedgerRow]) -> None:
        rows = list(rows)
        if not rows:
            return
        await self.conn.copy_records_to_table(
            "ledger",
            columns=["claim_id", "person_id", "hospital_id", "insurance_year", "outcome", "base", "paid",
                     "year_before", "year_after", "profile_id", "profile_version", "detail"],
            records=[(r.claim_id, r.person_id, r.hospital_id, r.insurance_year, r.outcome, r.base, r.paid,
                      _json(r.year_before), _json(r.year_after), r.profile_id, r.profile_version, _json(r.detail))
                     for r in rows])


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class InMemoryLedger(Generic[S]):
    """The same store in dicts (handler unit tests)."""

    def __init__(self, state_type: type[S]) -> None:
        self.state_type = state_type
        self.years: dict[YearKey, YearRow[S]] = {}
        self.rows: list[LedgerRow] = []

    async def load_years(self, keys: Iterable[YearKey]) -> dict[YearKey, YearRow[S]]:
        return {k: self.years.get(k) or YearRow(self.state_type()) for k in set(keys)}

    async def save_years(self, rows: Mapping[YearKey, YearRow[S]]) -> None:
        self.years.update(rows)

    async def add_ledger(self, rows: Iterable[LedgerRow]) -> None:
        self.rows.extend(rows)
