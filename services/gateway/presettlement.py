"""Pre-settlement (预结算, national transaction 2303): what the three layers would pay for a discharge
now, against the person's current accumulators, changing no state anywhere.

It takes the person and provider as the registry has them (the gateway's own projections, caught
up first) and reads, read-only (the gateway's role may only SELECT there, and its connections are
`default_transaction_read_only`), what the settlement layers hold: the person's claims (the
duplicate-bill check) and the person-year's accumulator of each layer. It then runs the same pure decisions the layers run
(`policy.decisions.basic` → `.catastrophic` → `.assistance`: eligibility, provider, policy, the
calculators), threading the claim from one layer to the next exactly as the services do, and
returns the statement the discharge would get. A new claim is priced after the person's current
claims of its year (`policy.repricing.next_position`), so the real discharge, sent next, is
stated with the same amounts to the fen.

The three databases are read one after another, not in one snapshot: while a claim of the person
is between the layers, their accumulators disagree (counted claims differ), and the answer says so
(`claims_in_flight`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts import DischargeRecorded, PersonSnapshot, ProviderSnapshot, SettlementStatement
from contracts.envelope import now
from policy import PolicyProfile
from policy.calculators.assistance import AssistanceYearState
from policy.calculators.basic import BasicYearState
from policy.calculators.catastrophic import CatastrophicYearState
from policy.decisions import assistance, basic, catastrophic
from policy.decisions.basic import Stay, duplicate_of
from runtime.ledger import state_fields, state_of
from runtime.settings import GATEWAY_READS, Settings, database_name

LAYER_YEAR_STATES: dict[str, type[Any]] = {
    "settlement": BasicYearState, "catastrophic": CatastrophicYearState, "assistance": AssistanceYearState}


class ClaimExists(ValueError):
    """The claim is already settled: a pre-settlement prices a new discharge (HTTP 409)."""


@dataclass(frozen=True)
class PreSettled:
    statement: SettlementStatement
    claims_in_flight: bool


@dataclass(frozen=True)
class _Year:
    state: Any
    claims: int


async def _kept(conn: asyncpg.Connection) -> None:
    """Connections return to the pools as they are: reading changes no session state."""


class LayerReader:
    """Read-only pools on the settlement layers' databases (`GATEWAY_READS`), as the gateway's role."""

    def __init__(self, settings: Settings, size: int = 2) -> None:
        self.settings = settings
        self.size = size
        self.pools: dict[str, asyncpg.Pool] = {}

    async def start(self) -> None:
        for service in GATEWAY_READS:
            database = database_name(service, self.settings.topic_prefix)
            self.pools[service] = await asyncpg.create_pool(
                f"{self.settings.database_url.rstrip('/')}/{database}", min_size=1, max_size=self.size, reset=_kept,
                server_settings={"default_transaction_read_only": "on", "application_name": "medsettle-gateway"})

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.pools.values()))
        self.pools = {}

    async def _with(self, service: str, read: Callable[[Any], Awaitable[Any]]) -> Any:
        async with self.pools[service].acquire() as conn:
            return await read(conn)

    async def year(self, service: str, person_id: str, year: int) -> _Year:
        state_type = LAYER_YEAR_STATES[service]

        async def read(conn: asyncpg.Connection) -> _Year:
            row = await conn.fetchrow("SELECT * FROM accumulator WHERE person_id = $1 AND insurance_year = $2",
                                      person_id, year)
            if row is None:
                return _Year(state_type(), 0)
            return _Year(state_of(state_type, {c: row[c] for c in state_fields(state_type)}), row["claims"])
        found: _Year = await self._with(service, read)
        return found

    async def claims(self, person_id: str) -> list[asyncpg.Record]:
        """The person's claims as settlement holds them (every year: the duplicate-bill check)."""
        async def read(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return list(await conn.fetch(
                """SELECT claim_id, hospital_id, admission_date, discharge_date, status, outcome FROM layer_claim
                   WHERE person_id = $1 ORDER BY insurance_year, position""", person_id))
        found: list[asyncpg.Record] = await self._with("settlement", read)
        return found

    async def presettle(self, d: DischargeRecorded, event_id: str, profile: PolicyProfile,
                        person: PersonSnapshot | None, provider: ProviderSnapshot | None) -> PreSettled:
        """The statement `d` would get now, for `person` and `provider` as the registry has them (see the module)."""
        year = d.discharge_date.year
        claims, b, c, a = await asyncio.gather(
            self.claims(d.person_id), self.year("settlement", d.person_id, year),
            self.year("catastrophic", d.person_id, year), self.year("assistance", d.person_id, year))
        if any(r["claim_id"] == d.claim_id and r["status"] == "current" for r in claims):
            raise ClaimExists(f"claim {d.claim_id} is already settled: a pre-settlement prices a new discharge "
                              f"(GET /v1/claims/{d.claim_id} shows its statement)")
        settled = [Stay(r["claim_id"], r["hospital_id"], r["admission_date"], r["discharge_date"]) for r in claims
                   if r["status"] == "current" and r["outcome"] == "settled"]
        stay = Stay(d.claim_id, d.hospital_id, d.admission_date, d.discharge_date)
        basic_decision = basic.decide(d, event_id, person, provider, profile, b.state, duplicate=duplicate_of(stay, settled))
        catastrophic_decision = catastrophic.decide(basic_decision.event, profile, c.state)
        statement = assistance.decide(catastrophic_decision.event, profile, a.state, settled_at=now()).statement
        return PreSettled(statement, claims_in_flight=len({b.claims, c.claims, a.claims}) > 1)
