"""The whole settlement chain in one test namespace: enrollment, settlement, catastrophic and
assistance running in-process against the real broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Any

from aiokafka import ConsumerRecord

from contracts import (
    BillLine,
    DischargeRecorded,
    EnrollPerson,
    PersonSnapshot,
    ProviderSnapshot,
    RegisterProvider,
)
from contracts.identity import make_identity_number
from contracts.topics import (
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    PERSONS,
    PROVIDERS,
    STATEMENTS,
)
from runtime.app import ServiceSpec
from services.assistance.app import SPEC as ASSISTANCE
from services.catastrophic.app import SPEC as CATASTROPHIC
from services.enrollment.app import SPEC as ENROLLMENT
from services.intake.app import SPEC as INTAKE
from services.settlement.app import SPEC as SETTLEMENT
from tests.integration.harness import Namespace, running

CHAIN = (ENROLLMENT, SETTLEMENT, CATASTROPHIC, ASSISTANCE)
"""The settlement chain (requests published straight to `claims.discharges`)."""
HOSPITAL_CHAIN = (ENROLLMENT, INTAKE, SETTLEMENT, CATASTROPHIC, ASSISTANCE)
"""The chain as hospitals use it: requests on their own topics, through the intake."""
LAYERS = (SETTLEMENT, CATASTROPHIC, ASSISTANCE)


@asynccontextmanager
async def platform(ns: Namespace, specs: Iterable[ServiceSpec] = CHAIN) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for spec in specs:
            await stack.enter_async_context(running(spec, ns.settings(spec.name)))
        yield


def person_id(seq: int) -> str:
    return make_identity_number("500242", date(1950 + seq % 50, 1 + seq % 12, 1 + seq % 28), seq % 1000)


def enroll(pid: str, *categories: str) -> EnrollPerson:
    return EnrollPerson(person_id=pid, name="测试", scheme="resident", categories=categories or ("ordinary",),
                        payment_date=date(2025, 11, 20), coverage_year=2026, previous_coverage_end=date(2025, 12, 31))


def provider(pid: str, level: int, location: str = "in_pool", beds: int = 500) -> RegisterProvider:
    return RegisterProvider(provider_id=pid, name=f"医院{pid}", level=level, location=location, pool_code="500242",
                            licensed_beds=beds, agreement_valid_from=date(2026, 1, 1))


def line(cls: str, amount: str, day: date, code: str = "X") -> BillLine:
    return BillLine(item_code=f"{code}{cls}", item_name=f"item {cls}", catalogue_class=cls, quantity=Decimal(1),
                    unit="item", unit_price=Decimal(amount), amount=Decimal(amount), service_date=day)


def discharge(claim: str, hospital: str, pid: str, admitted: date, discharged: date,
              lines: Iterable[tuple[str, str]], care_location: str = "in_pool") -> DischargeRecorded:
    ls = tuple(line(c, a, admitted, code=f"L{i}") for i, (c, a) in enumerate(lines))
    return DischargeRecorded(hospital_claim_id=claim, hospital_id=hospital, person_id=pid, admission_date=admitted,
                             discharge_date=discharged, care_location=care_location, referred=False,
                             diagnosis_codes=("I63.9",), lines=ls, total_amount=sum((x.amount for x in ls), Decimal(0)))


async def register(ns: Namespace, persons: list[EnrollPerson], providers: list[RegisterProvider]) -> None:
    """Publish the registry commands and wait until enrollment has published every snapshot."""
    await ns.publish(ENROLLMENT_COMMANDS, [(p.provider_id, p) for p in providers] + [(p.person_id, p) for p in persons])
    await ns.read(PERSONS, until=lambda rs: len(rs) >= len(persons), timeout=120)
    await ns.read(PROVIDERS, until=lambda rs: len(rs) >= len(providers), timeout=60)


async def statements_for(ns: Namespace, n: int, timeout: float = 120) -> list[ConsumerRecord]:
    """Read the statements topic until it holds `n` distinct statements (by event id)."""
    return await ns.read(STATEMENTS, until=lambda rs: len(_distinct(rs)) >= n, timeout=timeout)


def _distinct(records: list[ConsumerRecord]) -> dict[str, ConsumerRecord]:
    from contracts import decode_envelope

    return {str(decode_envelope(r.value).event_id): r for r in records}


async def snapshot(ns: Namespace) -> dict[str, Any]:
    """Ledgers, accumulators and statements of a run, in comparable form."""
    out: dict[str, Any] = {}
    for service in ("settlement", "catastrophic", "assistance"):
        conn = await ns.connect(service)
        try:
            out[f"{service}.ledger"] = {(r["claim_id"], r["revision"]): tuple(r.values())[2:] for r in await conn.fetch(
                "SELECT claim_id, revision, outcome, reversed, base, paid, year_before, year_after FROM ledger")}
            out[f"{service}.accumulators"] = {
                (r["person_id"], r["insurance_year"]): {k: v for k, v in r.items() if k != "updated_at"}
                for r in await conn.fetch("SELECT * FROM accumulator")}
            if service == "assistance":
                out["statements"] = {(r["claim_id"], r["revision"]): tuple(r.values())[2:] for r in await conn.fetch(
                    """SELECT claim_id, revision, kind, outcome, reason_code, total_cost, in_policy, hifp_pay, hifmi_pay,
                              maf_pay, psn_pay FROM statement""")}
        finally:
            await conn.close()
    return out


__all__ = ["CHAIN", "DISCHARGES", "HOSPITAL_CHAIN", "INTAKE", "LAYERS", "PersonSnapshot", "ProviderSnapshot", "discharge", "enroll", "person_id",
           "platform", "provider", "register", "snapshot", "statements_for"]
