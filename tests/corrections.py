"""Helpers of the correction tests: the three layer handlers chained in memory, a hospital's
requests, the net amounts of every claim from its statements, and the clean run they must equal
(computed independently, with the pure one-stop calculators)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from contracts import (
    ClaimRequestRefused,
    Contract,
    DischargeCorrected,
    DischargeRecorded,
    EnrollPerson,
    RegisterProvider,
    ReversalRequested,
    make_envelope,
)
from contracts.settlement import ClaimStatement
from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, REFUSALS, STATEMENTS
from policy import PolicyProfile
from policy.calculators.catastrophic import CatastrophicYearState
from policy.one_stop import OneStopClaim, settle_year
from runtime.claim_layer import ClaimLayerHandler, InMemoryLayerUnitOfWork
from runtime.unit_of_work import Inbound, InMemoryUnitOfWork
from services.assistance.handlers import AMOUNTS, AssistanceLayer, InMemoryAssistanceUnitOfWork
from services.catastrophic.handlers import CatastrophicLayer
from services.enrollment.domain import EnrollmentRules, apply, apply_provider
from services.settlement.handlers import BasicLayer, InMemoryRegistryView, InMemorySettlementUnitOfWork

AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
Amounts = dict[str, Decimal]


def person(pid: str, *categories: str) -> Any:
    cmd = EnrollPerson(person_id=pid, name="测试", scheme="resident", categories=categories or ("ordinary",),
                       payment_date=date(2025, 11, 20), coverage_year=2026, previous_coverage_end=date(2025, 12, 31))
    return apply(None, cmd, EnrollmentRules(), "e-" + pid).snapshot


def hospital(hid: str, level: int) -> Any:
    cmd = RegisterProvider(provider_id=hid, name="医院", level=level, location="in_pool", pool_code="500242",
                           licensed_beds=500, agreement_valid_from=date(2026, 1, 1))
    return apply_provider(None, cmd, "p-" + hid).snapshot


def corrected(d: DischargeRecorded, reason: str = "re-coded") -> DischargeCorrected:
    return DischargeCorrected(**d.model_dump(), correction_reason=reason)


def reversal(d: DischargeRecorded, reason: str = "billed in error") -> ReversalRequested:
    return ReversalRequested(hospital_claim_id=d.hospital_claim_id, hospital_id=d.hospital_id, person_id=d.person_id,
                             reason=reason)


def producer_of(payload: Contract) -> str:
    return f"hospital:{getattr(payload, 'hospital_id', '')}"


@dataclass
class InMemoryChain:
    """Settlement → critical illness → assistance, as the services run them (the same handlers),
    on in-memory units of work; each `send` is one batch per layer."""

    profile: PolicyProfile
    persons: Sequence[Any]
    providers: Sequence[Any]
    basic: InMemorySettlementUnitOfWork = field(init=False)
    catastrophic: InMemoryLayerUnitOfWork = field(init=False)
    assistance: InMemoryAssistanceUnitOfWork = field(init=False)
    sequence: int = 0

    def __post_init__(self) -> None:
        self.basic = InMemorySettlementUnitOfWork(InMemoryRegistryView(self.persons, self.providers))
        self.catastrophic = InMemoryLayerUnitOfWork(CatastrophicYearState)
        self.assistance = InMemoryAssistanceUnitOfWork()
        basic = BasicLayer(self.profile)
        self.handlers = (ClaimLayerHandler(basic, prepare=basic.prepare, clock=lambda: AT),
                         ClaimLayerHandler(CatastrophicLayer(self.profile), clock=lambda: AT),
                         ClaimLayerHandler(AssistanceLayer(self.profile), clock=lambda: AT))

    def _inbound(self, topic: str, envelope: Any) -> Inbound:
        self.sequence += 1
        return Inbound(topic, 0, self.sequence, envelope.payload.message_key(), envelope)

    async def send(self, payloads: Iterable[Contract], *, producer: str | None = None) -> None:
        batch = [self._inbound("claims.discharges", make_envelope(p, correlation_id="c",
                                                                  producer=producer or producer_of(p)))
                 for p in payloads]
        await self.deliver(batch)

    async def deliver(self, batch: list[Inbound]) -> None:
        """One batch through settlement, then what it published through the next layers."""
        uows: tuple[InMemoryUnitOfWork, ...] = (self.basic, self.catastrophic, self.assistance)
        topics = (BASIC_SETTLED, CATASTROPHIC_SETTLED)
        for i, (handler, uow) in enumerate(zip(self.handlers, uows, strict=True)):
            await handler(uow, batch)  # type: ignore[arg-type]
            published = [o for o in uow.outgoing if i < 2 and o.topic == topics[i]]
            await uow.flush()
            batch = [self._inbound(topics[i], o.envelope) for o in published]

    def statements(self) -> list[ClaimStatement]:
        return self.assistance.events(STATEMENTS)

    def refusals(self) -> list[ClaimRequestRefused]:
        return self.basic.events(REFUSALS)


def net_amounts(statements: Iterable[ClaimStatement]) -> dict[str, Amounts]:
    """Every claim's net: the sum of its statements, per amount."""
    out: dict[str, Amounts] = {}
    for s in statements:
        net = out.setdefault(s.claim_id, dict.fromkeys(AMOUNTS, Decimal("0.00")))
        for a in AMOUNTS:
            net[a] += getattr(s, a)
    return out


def clean_run(discharges: Sequence[DischargeRecorded], profile: PolicyProfile, levels: dict[str, int],
              categories: dict[str, tuple[str, ...]]) -> dict[str, Amounts]:
    """What the surviving claims would receive settled afresh, in this order, one person-year each,
    by the pure one-stop calculators (no service code): the amounts every net must equal."""
    by_year: dict[tuple[str, int], list[DischargeRecorded]] = {}
    for d in discharges:
        by_year.setdefault((d.person_id, d.discharge_date.year), []).append(d)
    out: dict[str, Amounts] = {}
    for (pid, _), claims in by_year.items():
        one_stop = [OneStopClaim(claim_id=d.claim_id, scheme="resident", hospital_level=levels[d.hospital_id],
                                 amounts_by_class=_by_class(d), categories=frozenset(categories[pid]),
                                 care_location=d.care_location, referred=d.referred) for d in claims]
        for d, r in zip(claims, settle_year(one_stop, profile), strict=True):
            out[d.claim_id] = {"total_cost": r.total_cost, "in_policy": r.in_policy, "out_of_policy": r.out_of_policy,
                               "hifp_pay": r.basic_paid, "hifmi_pay": r.catastrophic_paid,
                               "maf_pay": r.assistance_paid, "fund_pay_sumamt": r.funds_paid,
                               "psn_pay": r.patient_pays}
    return out


def zero() -> Amounts:
    return dict.fromkeys(AMOUNTS, Decimal("0.00"))


def _by_class(d: DischargeRecorded) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for line in d.lines:
        sums[line.catalogue_class] = sums.get(line.catalogue_class, Decimal("0.00")) + line.amount
    return sums
