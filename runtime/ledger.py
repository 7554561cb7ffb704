"""A settlement layer's state: its claims, its year accumulators and its ledger (tables in
`ledger_migrations/` and each layer's own migrations).

- `layer_claim`: one row per claim — its place in its person-year (`position`), whether it counts
  (`status`), its latest revision, input and result, and the year state before and after it: what
  re-pricing (`policy.repricing`) works on.
- `accumulator`: per (person, insurance year) the layer calculator's year state — a frozen
  dataclass of `Decimal` fields (`BasicYearState(paid, deductible_met)`,
  `CatastrophicYearState(accumulation, paid)`, `AssistanceYearState(paid)`), its columns named like
  those fields — always the fold of the year's current claims.
- `ledger`: append-only, one row per claim revision: what the layer priced and paid, the year
  state before and after, whether the revision reverses the claim and why it was made.

`LedgerStore` is what a layer handler sees: `PostgresLedger` (one query per table per batch) and
`InMemoryLedger` (handler unit tests).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from policy.repricing import Entry
from runtime.db import Connection

S = TypeVar("S")
"""A layer's year state: a frozen dataclass whose fields are `Decimal` amounts."""
YearKey = tuple[str, int]
"""(person id, insurance year)"""
Result = dict[str, Any]
"""A layer's result for one claim, in its JSON form."""


@dataclass
class ClaimRow(Generic[S]):
    """A claim as a layer keeps it: the re-pricing entry plus what identifies the stay."""

    entry: Entry[Result, S]
    person_id: str
    insurance_year: int
    hospital_id: str
    admission_date: date
    discharge_date: date
    input_event_id: str
    digest: str | None = None
    """settlement: the digest of the discharge's content (a claim id sent again with other content
    is refused unless it is a correction)"""

    @property
    def claim_id(self) -> str:
        return self.entry.claim_id

    @property
    def key(self) -> YearKey:
        return self.person_id, self.insurance_year

    @property
    def outcome(self) -> str | None:
        result = self.entry.result
        return None if result is None else str(result.get("outcome"))


@dataclass(frozen=True)
class YearRow(Generic[S]):
    """The accumulator of one person-year: the year state and how many current claims it has."""

    state: S
    claims: int = 0


@dataclass(frozen=True)
class LedgerRow:
    """One revision of one claim in a layer's ledger."""

    claim_id: str
    revision: int
    person_id: str
    hospital_id: str
    insurance_year: int
    outcome: str
    reversed: bool
    base: Decimal
    """what the layer priced (its input residual)"""
    paid: Decimal
    """what the layer's fund paid on this revision (0 for a reversal)"""
    year_before: Mapping[str, Decimal]
    year_after: Mapping[str, Decimal]
    profile_id: str | None
    profile_version: int | None
    cause: Mapping[str, Any] | None
    detail: Mapping[str, Any]


def state_fields(state_type: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(state_type))


def state_values(state: Any) -> dict[str, Decimal]:
    """A year state as a mapping of its fields (for the ledger's `year_before`/`year_after`)."""
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def state_of(state_type: type[S], values: Mapping[str, Any]) -> S:
    return state_type(**{k: Decimal(str(v)) for k, v in values.items()})


class LedgerStore(Protocol[S]):
    state_type: type[S]

    async def load_claims(self, person_ids: Iterable[str]) -> list[ClaimRow[S]]:
        """Every claim of these persons (all years), locked for the transaction."""
        ...

    async def save_claims(self, rows: Iterable[ClaimRow[S]]) -> None: ...

    async def save_years(self, rows: Mapping[YearKey, YearRow[S]]) -> None: ...

    async def add_ledger(self, rows: Iterable[LedgerRow]) -> None: ...


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class PostgresLedger(Generic[S]):
    def __init__(self, conn: Connection, state_type: type[S]) -> None:
        self.conn = conn
        self.state_type = state_type
        self.columns = state_fields(state_type)

    async def load_claims(self, person_ids: Iterable[str]) -> list[ClaimRow[S]]:
        rows = await self.conn.fetch(
            """SELECT * FROM layer_claim WHERE person_id = ANY($1::text[])
               ORDER BY person_id, insurance_year, position FOR UPDATE""", list(set(person_ids)))
        return [ClaimRow(
            Entry(r["claim_id"], r["position"], r["status"], r["revision"], r["input"],
                  json.loads(r["result"]) if r["result"] is not None else None,
                  state_of(self.state_type, json.loads(r["year_before"])),
                  state_of(self.state_type, json.loads(r["year_after"]))),
            r["person_id"], r["insurance_year"], r["hospital_id"], r["admission_date"], r["discharge_date"],
            str(r["input_event_id"]), r["digest"]) for r in rows]

    async def save_claims(self, rows: Iterable[ClaimRow[S]]) -> None:
        rows = list(rows)
        if not rows:
            return
        await self.conn.execute(
            """INSERT INTO layer_claim (claim_id, person_id, insurance_year, position, hospital_id, admission_date,
                                        discharge_date, status, revision, input, input_event_id, digest, result,
                                        outcome, year_before, year_after)
               SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::text[], $6::date[], $7::date[],
                                    $8::text[], $9::int[], $10::jsonb[], $11::uuid[], $12::text[], $13::jsonb[],
                                    $14::text[], $15::jsonb[], $16::jsonb[])
               ON CONFLICT (claim_id) DO UPDATE SET
                 hospital_id = EXCLUDED.hospital_id, admission_date = EXCLUDED.admission_date,
                 discharge_date = EXCLUDED.discharge_date, status = EXCLUDED.status, revision = EXCLUDED.revision,
                 input = EXCLUDED.input, input_event_id = EXCLUDED.input_event_id, digest = EXCLUDED.digest,
                 result = EXCLUDED.result, outcome = EXCLUDED.outcome, year_before = EXCLUDED.year_before,
                 year_after = EXCLUDED.year_after, updated_at = now()""",
            [r.claim_id for r in rows], [r.person_id for r in rows], [r.insurance_year for r in rows],
            [r.entry.position for r in rows], [r.hospital_id for r in rows], [r.admission_date for r in rows],
            [r.discharge_date for r in rows], [r.entry.status for r in rows], [r.entry.revision for r in rows],
            [r.entry.input_json for r in rows], [r.input_event_id for r in rows], [r.digest for r in rows],
            [_json(r.entry.result) if r.entry.result is not None else None for r in rows],
            [r.outcome for r in rows], [_json(state_values(r.entry.year_before)) for r in rows],
            [_json(state_values(r.entry.year_after)) for r in rows])

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
            columns=["claim_id", "revision", "person_id", "hospital_id", "insurance_year", "outcome", "reversed",
                     "base", "paid", "year_before", "year_after", "profile_id", "profile_version", "cause", "detail"],
            records=[(r.claim_id, r.revision, r.person_id, r.hospital_id, r.insurance_year, r.outcome, r.reversed,
                      r.base, r.paid, _json(r.year_before), _json(r.year_after), r.profile_id, r.profile_version,
                      _json(r.cause) if r.cause is not None else None, _json(r.detail)) for r in rows])


class InMemoryLedger(Generic[S]):
    """The same store in dicts (handler unit tests)."""

    def __init__(self, state_type: type[S]) -> None:
        self.state_type = state_type
        self.claims: dict[str, ClaimRow[S]] = {}
        self.years: dict[YearKey, YearRow[S]] = {}
        self.rows: list[LedgerRow] = []

    async def load_claims(self, person_ids: Iterable[str]) -> list[ClaimRow[S]]:
        wanted = set(person_ids)
        return [dataclasses.replace(r, entry=dataclasses.replace(r.entry)) for r in self.claims.values()
                if r.person_id in wanted]

    async def save_claims(self, rows: Iterable[ClaimRow[S]]) -> None:
        for r in rows:
            self.claims[r.claim_id] = dataclasses.replace(r, entry=dataclasses.replace(r.entry))

    async def save_years(self, rows: Mapping[YearKey, YearRow[S]]) -> None:
        self.years.update(rows)

    async def add_ledger(self, rows: Iterable[LedgerRow]) -> None:
        self.rows.extend(rows)
