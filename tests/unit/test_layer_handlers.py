"""The three layer handlers against in-memory units of work: the worked examples of demo-county.md
flow basic → critical illness → assistance as the services run them (same handler, same fold,
same ledger rows), without a broker or a database. The real-PostgreSQL tests prove the SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from contracts import (
    BasicSettled,
    CatastrophicSettled,
    DischargeRecorded,
    EnrollPerson,
    RegisterProvider,
    SettlementStatement,
    make_envelope,
)
from contracts.identity import make_identity_number
from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, STATEMENTS
from policy import load_profile
from policy.calculators.basic import BasicYearState
from policy.calculators.catastrophic import CatastrophicYearState
from runtime.claim_layer import ClaimLayerHandler, InMemoryLayerUnitOfWork
from runtime.unit_of_work import Inbound
from services.assistance.handlers import (
    AssistanceLayer,
    InMemoryAssistanceUnitOfWork,
)
from services.catastrophic.handlers import CatastrophicLayer
from services.enrollment.domain import EnrollmentRules, apply, apply_provider
from services.settlement.handlers import (
    BasicLayer,
    InMemoryRegistryView,
    InMemorySettlementUnitOfWork,
)
from tests.integration.platform import discharge

D = Decimal
PROFILE = load_profile("demo-county")
AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
ORDINARY = make_identity_number("500242", date(1960, 3, 1), 11)
DIBAO = make_identity_number("500242", date(1958, 7, 9), 12)


def registry() -> InMemoryRegistryView:
    def person(pid: str, category: str) -> Any:
        cmd = EnrollPerson(person_id=pid, name="测试", scheme="resident", categories=(category,),
                           payment_date=date(2025, 11, 20), coverage_year=2026,
                           previous_coverage_end=date(2025, 12, 31))
        return apply(None, cmd, EnrollmentRules(), "e-" + pid).snapshot

    def hospital(hid: str, level: int) -> Any:
        cmd = RegisterProvider(provider_id=hid, name="医院", level=level, location="in_pool", pool_code="500242",
                               licensed_beds=500, agreement_valid_from=date(2026, 1, 1))
        return apply_provider(None, cmd, "p-" + hid).snapshot

    return InMemoryRegistryView([person(ORDINARY, "ordinary"), person(DIBAO, "dibao")],
                                [hospital("H3", 3), hospital("H2", 2)])


def inbound(topic: str, payload: Any, offset: int) -> Inbound:
    env = make_envelope(payload, correlation_id="c", producer="test", event_id=uuid.uuid5(uuid.NAMESPACE_OID,
                                                                                          f"{topic}{offset}"))
    return Inbound(topic, 0, offset, payload.message_key(), env)


def discharges() -> list[DischargeRecorded]:
    return [
        discharge("E1", "H3", ORDINARY, date(2026, 3, 2), date(2026, 3, 10),
                  [("A", "8000.00"), ("B", "2000.00"), ("SELF", "500.00")]),
        discharge("E2", "H2", ORDINARY, date(2026, 6, 1), date(2026, 6, 5), [("A", "5000.00")]),
        discharge("E3", "H3", DIBAO, date(2026, 4, 1), date(2026, 4, 20), [("A", "50000.00")]),
    ]


async def run_chain(batch: list[DischargeRecorded]) -> tuple[Any, Any, Any]:
    basic_uow = InMemorySettlementUnitOfWork(registry())
    basic = BasicLayer(PROFILE)
    await ClaimLayerHandler(basic, prepare=basic.prepare, clock=lambda: AT)(
        basic_uow, [inbound("claims.discharges", d, i) for i, d in enumerate(batch)])
    await basic_uow.flush()
    cat_uow = InMemoryLayerUnitOfWork(CatastrophicYearState)
    await ClaimLayerHandler(CatastrophicLayer(PROFILE), clock=lambda: AT)(
        cat_uow, [inbound(BASIC_SETTLED, e, i) for i, e in enumerate(basic_uow.events(BASIC_SETTLED))])
    await cat_uow.flush()
    assist_uow = InMemoryAssistanceUnitOfWork()
    await ClaimLayerHandler(AssistanceLayer(PROFILE), clock=lambda: AT)(
        assist_uow, [inbound(CATASTROPHIC_SETTLED, e, i) for i, e in enumerate(cat_uow.events(CATASTROPHIC_SETTLED))])
    await assist_uow.flush()
    return basic_uow, cat_uow, assist_uow


async def test_the_worked_examples_through_the_three_handlers() -> None:
    basic_uow, cat_uow, assist_uow = await run_chain(discharges())
    statements = {s.hospital_claim_id: s for s in assist_uow.events(STATEMENTS)}
    # demo-county.md, as written there
    assert {k: (s.hifp_pay, s.hifmi_pay, s.maf_pay, s.psn_pay) for k, s in statements.items()} == {
        "E1": (D("3840.00"), D("0.00"), D("0.00"), D("6660.00")),
        "E2": (D("2400.00"), D("1080.00"), D("0.00"), D("1520.00")),
        "E3": (D("19920.00"), D("16816.00"), D("9284.80"), D("3979.20")),
    }
    assert [s.claim_id for s in assist_uow.statements.rows] == [s.claim_id for s in statements.values()]
    assert all(s.settled_at == AT for s in statements.values())
    # the accumulators are the calculators' year states; the ledger keeps them before and after
    # basic paid 3,840 + 2,400; deductibles borne 400 (level 3) + 200 (level 2)
    assert basic_uow.ledger.years[(ORDINARY, 2026)].state == BasicYearState(paid=D("6240.00"),
                                                                            deductible_met=D("600.00"))
    assert basic_uow.ledger.years[(ORDINARY, 2026)].claims == 2
    e2 = next(r for r in cat_uow.ledger.rows if r.claim_id == "H2:E2")
    assert (e2.year_before["accumulation"], e2.year_after["accumulation"]) == (D("5760.00"), D("8160.00"))
    assert e2.paid == D("1080.00") and e2.outcome == "settled" and e2.profile_id == "demo-county"


async def test_a_redelivered_batch_changes_nothing_and_emits_nothing_new() -> None:
    uow = InMemorySettlementUnitOfWork(registry())
    layer = BasicLayer(PROFILE)
    handler = ClaimLayerHandler(layer, prepare=layer.prepare, clock=lambda: AT)
    batch = [inbound("claims.discharges", d, i) for i, d in enumerate(discharges())]
    await handler(uow, batch)
    await uow.flush()
    years, rows, events = dict(uow.ledger.years), list(uow.ledger.rows), dict(uow.outbox)
    await handler(uow, batch + batch)  # redelivered twice over
    await uow.flush()
    assert (uow.ledger.years, uow.ledger.rows, uow.outbox) == (years, rows, events)
    assert len(events) == 3


async def test_a_claim_sent_again_under_a_new_event_id_is_settled_once() -> None:
    uow = InMemorySettlementUnitOfWork(registry())
    layer = BasicLayer(PROFILE)
    handler = ClaimLayerHandler(layer, prepare=layer.prepare, clock=lambda: AT)
    d = discharges()[0]
    await handler(uow, [inbound("claims.discharges", d, 0), inbound("claims.discharges", d, 1)])
    await uow.flush()
    assert [e.claim.claim_id for e in uow.events(BASIC_SETTLED)] == [d.claim_id]


async def test_a_rejected_claim_passes_every_layer_and_changes_no_accumulator() -> None:
    stranger = make_identity_number("500242", date(1990, 1, 1), 99)
    basic_uow, cat_uow, assist_uow = await run_chain(
        [discharge("X1", "H3", stranger, date(2026, 3, 2), date(2026, 3, 3), [("A", "100.00")])])
    [basic_event] = basic_uow.events(BASIC_SETTLED)
    [statement] = assist_uow.events(STATEMENTS)
    assert isinstance(basic_event, BasicSettled) and basic_event.outcome == "rejected"
    assert isinstance(cat_uow.events(CATASTROPHIC_SETTLED)[0], CatastrophicSettled)
    assert isinstance(statement, SettlementStatement) and statement.rejection is not None
    assert (statement.rejection.reason_code, statement.psn_pay) == ("NOT_ENROLLED", D("100.00"))
    for uow in (basic_uow, cat_uow, assist_uow):  # the claim counts in its year, but moves no amount
        assert [row.state for row in uow.ledger.years.values()] == [uow.ledger.state_type()]
    assert [r.outcome for r in assist_uow.ledger.rows] == ["rejected"]
