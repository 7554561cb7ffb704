"""Corrections through the real services, broker and database: reversals, corrected claims and
duplicate bills, checked against a clean run computed independently with the pure one-stop
calculators; redelivery, SIGKILL and replay change no net amount."""

from __future__ import annotations

import asyncio
import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from contracts import (
    ClaimRequestRefused,
    Contract,
    DischargeRecorded,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
    decode_envelope,
    make_envelope,
)
from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES, REFUSALS, STATEMENTS
from policy import load_profile
from services.enrollment.app import SPEC as ENROLLMENT
from tests.corrections import clean_run, corrected, net_amounts, producer_of, reversal, zero
from tests.integration.harness import (
    Namespace,
    ServiceProcess,
    payloads,
    reset_group_to_earliest,
    running,
    wait_drained,
)
from tests.integration.platform import LAYERS, discharge, enroll, person_id, platform, provider, register, snapshot

pytestmark = pytest.mark.integration

PROFILE = load_profile("demo-county")
INPUTS = [("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED), ("assistance", CATASTROPHIC_SETTLED)]
HOSPITALS = {"H1": 1, "H2": 2, "H3": 3}
STATEMENT_TYPES = (SettlementStatement, SettlementAdjusted, SettlementReversed)


async def send(ns: Namespace, requests: list[Contract]) -> list[tuple[str, Any]]:
    """Publish hospital requests (each from the hospital it names), keyed by person id."""
    items = [(r.message_key(), make_envelope(r, correlation_id=r.message_key(), producer=producer_of(r)))
             for r in requests]
    await ns.publish(DISCHARGES, items)
    return items


async def settled_nets(ns: Namespace) -> dict[str, dict[str, Decimal]]:
    """Every claim's net after the platform has processed everything published (statements are
    counted once per event id, as a hospital would)."""
    await wait_drained(ns, INPUTS)
    records = await ns.read_for(STATEMENTS, seconds=1.5)
    distinct = {decode_envelope(r.value).event_id: r for r in records}
    return net_amounts(payloads(distinct.values(), *STATEMENT_TYPES))


async def test_worked_examples_reversed_and_sent_again(ns) -> None:
    ordinary, dibao = person_id(61), person_id(62)
    e1 = discharge("E1", "H3", ordinary, date(2026, 3, 2), date(2026, 3, 10),
                   [("A", "8000.00"), ("B", "2000.00"), ("SELF", "500.00")])
    e2 = discharge("E2", "H2", ordinary, date(2026, 6, 1), date(2026, 6, 5), [("A", "5000.00")])
    e3 = discharge("E3", "H3", dibao, date(2026, 4, 1), date(2026, 4, 20), [("A", "50000.00")])
    async with platform(ns):
        await register(ns, [enroll(ordinary), enroll(dibao, "dibao")], [provider("H3", 3), provider("H2", 2)])
        await send(ns, [e1, e2, e3])
        original = await settled_nets(ns)
        # demo-county.md's worked examples, as written there
        assert [original[c]["hifp_pay"] for c in (e1.claim_id, e2.claim_id, e3.claim_id)] == [
            Decimal("3840.00"), Decimal("2400.00"), Decimal("19920.00")]
        await send(ns, [reversal(e1), reversal(e2), reversal(e3)])
        reversed_nets = await settled_nets(ns)
        records = await ns.read_for(STATEMENTS, seconds=1)
        reversals = {s.claim_id: s for s in payloads(records, *STATEMENT_TYPES) if isinstance(s, SettlementReversed)}
        await send(ns, [e1.model_copy(), e2.model_copy(), e3.model_copy()])  # the same claims again
        again = await settled_nets(ns)
    for claim in (e1.claim_id, e2.claim_id, e3.claim_id):
        assert {a: getattr(reversals[claim], a) for a in original[claim]} == {
            a: -v for a, v in original[claim].items()}, claim
        assert reversed_nets[claim] == zero()
    assert again == original


async def test_five_stays_with_the_second_reversed_and_the_fourth_corrected(ns) -> None:
    pid = person_id(63)
    stays = [discharge(f"F{i}", "H3" if i % 2 else "H2", pid, date(2026, 2 * i, 1), date(2026, 2 * i, 9),
                       [("A", f"{9000 + 3000 * i}.00"), ("B", "1500.00"), ("C", "300.00")]) for i in range(1, 6)]
    fourth = discharge("F4", "H2", pid, date(2026, 8, 1), date(2026, 8, 12), [("A", "31000.00"), ("SELF", "900.00")])
    async with platform(ns):
        await register(ns, [enroll(pid, "dibao")], [provider("H3", 3), provider("H2", 2)])
        await send(ns, stays)
        await settled_nets(ns)
        await send(ns, [reversal(stays[1], "wrong patient")])
        await send(ns, [corrected(fourth, "re-coded")])
        nets = await settled_nets(ns)
        records = await ns.read_for(STATEMENTS, seconds=1)
        adjustments = [s for s in payloads(records, *STATEMENT_TYPES) if isinstance(s, SettlementAdjusted)]
    survivors = [stays[0], stays[2], fourth, stays[4]]
    assert {d.claim_id: nets[d.claim_id] for d in survivors} == clean_run(survivors, PROFILE, HOSPITALS,
                                                                            {pid: ("dibao",)})
    assert nets[stays[1].claim_id] == zero()
    assert {a.cause.kind for a in adjustments} == {"reversal", "correction"}
    assert all(a.cause.claim_id in (stays[1].claim_id, fourth.claim_id) for a in adjustments)


async def test_the_same_stay_under_71_claim_ids_is_paid_once(ns) -> None:
    pid = person_id(64)
    first = discharge("D0", "H2", pid, date(2026, 5, 1), date(2026, 5, 6), [("A", "3000.00")])
    copies = [first.model_copy(update={"hospital_claim_id": f"D{i}"}) for i in range(1, 71)]
    async with platform(ns):
        await register(ns, [enroll(pid)], [provider("H2", 2)])
        await send(ns, [first, *copies])
        await settled_nets(ns)
        statements = [s for s in payloads(await ns.read_for(STATEMENTS, seconds=1), *STATEMENT_TYPES)
                      if isinstance(s, SettlementStatement)]
    paid = [s for s in statements if s.outcome == "settled"]
    refused = [s for s in statements if s.outcome == "rejected"]
    assert [s.claim_id for s in paid] == [first.claim_id]
    assert len(refused) == 70 and all(s.rejection and s.rejection.related_claim_id == first.claim_id for s in refused)
    assert all(first.claim_id in (s.rejection.reason if s.rejection else "") for s in refused)


async def test_requests_that_cannot_be_honoured_are_refused_with_a_reason(ns) -> None:
    pid = person_id(65)
    d = discharge("R1", "H2", pid, date(2026, 5, 1), date(2026, 5, 6), [("A", "3000.00")])
    unknown = discharge("R9", "H2", pid, date(2026, 7, 1), date(2026, 7, 2), [("A", "100.00")])
    other = d.model_copy(update={"lines": unknown.lines, "total_amount": unknown.total_amount,
                                 "admission_date": unknown.admission_date, "discharge_date": unknown.discharge_date})
    async with platform(ns):
        await register(ns, [enroll(pid)], [provider("H2", 2), provider("H3", 3)])
        await send(ns, [d])
        await settled_nets(ns)
        await send(ns, [reversal(unknown), other])
        wrong = make_envelope(reversal(d), correlation_id=pid, producer="hospital:H3")  # not the filing hospital
        await ns.publish(DISCHARGES, [(pid, wrong)])
        await send(ns, [reversal(d), reversal(d)])
        nets = await settled_nets(ns)
        refusals = payloads(await ns.read(REFUSALS, until=lambda rs: len(rs) >= 4), ClaimRequestRefused)
    assert [r.reason_code for r in refusals] == ["UNKNOWN_CLAIM", "CONTENT_MISMATCH", "WRONG_HOSPITAL",
                                                  "ALREADY_REVERSED"]
    assert nets[d.claim_id] == zero()


# ------------------------------------------------------------ random sequences, crashes, replays


def random_requests(persons: list[str], seed: int) -> tuple[list[list[Contract]], list[DischargeRecorded]]:
    """Rounds of requests (one per person per round) and the surviving claims' latest content in
    their original order: each person-year gets discharges, reversals, corrections and claims sent
    again after their reversal."""
    rng = random.Random(seed)
    rounds: list[list[Contract]] = [[] for _ in range(6)]
    survivors: list[DischargeRecorded] = []
    for p, pid in enumerate(persons):
        latest: dict[str, DischargeRecorded] = {}
        alive: dict[str, bool] = {}
        order: list[str] = []
        for n in range(6):
            op = rng.choice(["new", "new", "reverse", "correct", "again"]) if order else "new"
            hid = rng.choice(list(HOSPITALS))
            amount = rng.choice(["800.00", "2500.00", "6000.00", "12000.00", "30000.00", "90000.00"])
            living = [c for c in order if alive[c]]
            dead = [c for c in order if not alive[c]]
            if op == "new" or (op in ("reverse", "correct") and not living) or (op == "again" and not dead):
                day = date(2026, 1, 2) + timedelta(days=30 * n + p % 7)
                d = discharge(f"S{p}-{n}", hid, pid, day, day + timedelta(days=4), [("A", amount), ("C", "120.00")])
                latest[d.claim_id], alive[d.claim_id] = d, True
                order.append(d.claim_id)
                rounds[n].append(d)
            elif op == "reverse":
                claim = rng.choice(living)
                rounds[n].append(reversal(latest[claim]))
                alive[claim] = False
            elif op == "correct":
                claim = rng.choice(living)
                old = latest[claim]
                lines = discharge("x", old.hospital_id, pid, old.admission_date, old.discharge_date,
                                  [("A", amount), ("B", "60.00")]).lines
                new = old.model_copy(update={"lines": lines, "total_amount": Decimal(amount) + Decimal("60.00")})
                latest[claim] = new
                rounds[n].append(corrected(new))
            else:
                claim = rng.choice(dead)
                rounds[n].append(latest[claim].model_copy())
                alive[claim] = True
        survivors += [latest[c] for c in order if alive[c]]
    return rounds, survivors


PERSONS_IN_STREAM = 240
DIBAO_EVERY = 3


def stream_persons() -> list[str]:
    return [person_id(100 + i) for i in range(PERSONS_IN_STREAM)]


def stream_registry(persons: list[str]) -> tuple[list[Any], list[Any], dict[str, tuple[str, ...]]]:
    categories = {pid: ("dibao",) if i % DIBAO_EVERY == 0 else ("ordinary",) for i, pid in enumerate(persons)}
    return ([enroll(pid, *categories[pid]) for pid in persons], [provider(h, level) for h, level in HOSPITALS.items()],
            categories)


async def test_random_sequences_net_to_a_clean_run_through_crashes_redelivery_and_replay(ns) -> None:
    persons = stream_persons()
    rounds, survivors = random_requests(persons, seed=29)
    enrolled, providers, categories = stream_registry(persons)
    layers = {spec.name: ServiceProcess(ns, spec.name) for spec in LAYERS}
    sent: list[tuple[str, Any]] = []
    try:
        async with running(ENROLLMENT, ns.settings("enrollment")):
            await register(ns, enrolled, providers)
            for p in layers.values():
                p.start()
            for n, requests in enumerate(rounds):
                sent += await send(ns, requests)
                victim = {1: "settlement", 3: "catastrophic", 4: "assistance"}.get(n)
                if victim is not None:  # SIGKILL a layer while the round is being priced, and start it again
                    await asyncio.sleep(0.3)
                    layers[victim].kill()
                    layers[victim].start()
                await wait_drained(ns, INPUTS)
            nets = await settled_nets(ns)
            before = await snapshot(ns)
            # every reversal and correction delivered again (the same events)
            again = [(k, e) for k, e in sent if e.event_type in ("ReversalRequested", "DischargeCorrected")]
            await ns.publish(DISCHARGES, again)
            await wait_drained(ns, INPUTS)
            # and the assistance layer replayed from the beginning
            layers["assistance"].stop()
            await reset_group_to_earliest(ns, "assistance", CATASTROPHIC_SETTLED)
            layers["assistance"].start()
            after_nets = await settled_nets(ns)
        after = await snapshot(ns)
    finally:
        for p in layers.values():
            p.stop()
    expected = clean_run(survivors, PROFILE, HOSPITALS, categories)
    assert len(expected) > PERSONS_IN_STREAM
    assert {c: nets[c] for c in expected} == expected
    assert all(v == zero() for c, v in nets.items() if c not in expected), "every reversed claim nets to zero"
    assert after_nets == nets and after == before, "redelivery and replay changed nothing"
