"""Corrections on the pure level: the three layer handlers in memory (the services' own code),
checked against a clean run computed independently with the one-stop calculators.

The invariant: after any sequence of discharges, reversals and corrections, every claim's net
amounts (the sum of its statements) equal a clean run of the surviving claims, with their latest
content, in their original order — to the fen, in every layer; a reversed claim nets to zero."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import DischargeRecorded, SettlementAdjusted, SettlementReversed, SettlementStatement
from contracts.identity import make_identity_number
from policy import load_profile
from policy.repricing import Entry, refold
from tests.corrections import InMemoryChain, clean_run, corrected, hospital, net_amounts, person, reversal, zero
from tests.integration.platform import discharge

D = Decimal
PROFILE = load_profile("demo-county")
ORDINARY = make_identity_number("500242", date(1960, 3, 1), 11)
DIBAO = make_identity_number("500242", date(1958, 7, 9), 12)
LEVELS = {"H1": 1, "H2": 2, "H3": 3}
CATEGORIES = {ORDINARY: ("ordinary",), DIBAO: ("dibao",)}


def chain() -> InMemoryChain:
    return InMemoryChain(PROFILE, [person(ORDINARY), person(DIBAO, "dibao")],
                         [hospital(h, level) for h, level in LEVELS.items()])


def worked_examples() -> list[DischargeRecorded]:
    return [
        discharge("E1", "H3", ORDINARY, date(2026, 3, 2), date(2026, 3, 10),
                  [("A", "8000.00"), ("B", "2000.00"), ("SELF", "500.00")]),
        discharge("E2", "H2", ORDINARY, date(2026, 6, 1), date(2026, 6, 5), [("A", "5000.00")]),
        discharge("E3", "H3", DIBAO, date(2026, 4, 1), date(2026, 4, 20), [("A", "50000.00")]),
    ]


# ------------------------------------------------------------------ the fold


def test_refold_prices_from_the_change_on_and_revises_only_what_changes() -> None:
    entries = [Entry(c, p, "current", 1, "{}", {"paid": 10 * p}, p - 1, p) for c, p in (("a", 1), ("b", 2), ("c", 3))]

    def price(entry: Entry[dict[str, int], int], state: int, earlier: object) -> tuple[dict[str, int], int]:
        return {"paid": 10 * (state + 1)}, state + 1

    entries[1].status = "reversed"
    revisions, final = refold(entries, 2, 0, price, lambda a, b: a == b, {"b": "reversal of b"})
    assert [(r.entry.claim_id, r.entry.revision, r.cause, r.reversed) for r in revisions] == [
        ("b", 2, "reversal of b", True), ("c", 2, "reversal of b", False)]
    assert entries[2].result == {"paid": 20} and final == 2 and entries[0].revision == 1


# ------------------------------------------------------------ worked examples


async def test_reversing_each_worked_example_negates_it_and_sending_it_again_restores_it() -> None:
    examples = worked_examples()
    for example in examples:
        platform = chain()
        await platform.send(examples)
        original = net_amounts(platform.statements())
        await platform.send([reversal(example)])
        reversals = [s for s in platform.statements() if isinstance(s, SettlementReversed)]
        assert [s.claim_id for s in reversals] == [example.claim_id]
        assert {a: getattr(reversals[0], a) for a in original[example.claim_id]} == {
            a: -v for a, v in original[example.claim_id].items()}
        nets = net_amounts(platform.statements())
        assert nets[example.claim_id] == zero()
        survivors = [d for d in examples if d is not example]
        assert {c: nets[c] for c in (d.claim_id for d in survivors)} == clean_run(survivors, PROFILE, LEVELS,
                                                                                     CATEGORIES)
        await platform.send([example.model_copy()])  # the same claim again, a new event
        assert net_amounts(platform.statements()) == original


async def test_reversing_the_first_stay_adjusts_the_second_with_the_cause() -> None:
    e1, e2, _ = worked_examples()
    platform = chain()
    await platform.send([e1, e2])
    await platform.send([reversal(e1, "wrong patient")])
    [adjusted] = [s for s in platform.statements() if isinstance(s, SettlementAdjusted)]
    assert adjusted.claim_id == e2.claim_id
    assert (adjusted.cause.kind, adjusted.cause.claim_id, adjusted.cause.reason) == ("reversal", e1.claim_id,
                                                                                      "wrong patient")
    # alone, E2's 5,000 at level 2 pays 2,400 basic and accumulates 2,400 < 6,000: no critical illness
    assert (adjusted.hifmi_pay, adjusted.psn_pay) == (D("-1080.00"), D("1080.00"))


async def test_refusals_name_their_reason() -> None:
    e1, e2, _ = worked_examples()
    platform = chain()
    await platform.send([e1])
    other = e1.model_copy(update={"lines": e2.lines, "total_amount": e2.total_amount,
                                  "admission_date": e2.admission_date, "discharge_date": e2.discharge_date})
    await platform.send([reversal(e2)])                                   # never settled
    await platform.send([other])                                         # other content, not a correction
    await platform.send([reversal(e1)], producer="hospital:H2")          # not the filing hospital
    await platform.send([corrected(e1.model_copy(update={"discharge_date": date(2027, 1, 2)}))])  # another year
    await platform.send([reversal(e1)])
    await platform.send([reversal(e1)])                                   # already reversed
    assert [r.reason_code for r in platform.refusals()] == [
        "UNKNOWN_CLAIM", "CONTENT_MISMATCH", "WRONG_HOSPITAL", "YEAR_CHANGED", "ALREADY_REVERSED"]
    assert net_amounts(platform.statements())[e1.claim_id] == zero()


async def test_the_same_stay_billed_again_is_paid_once_and_the_refusals_name_the_first_claim() -> None:
    first = discharge("D0", "H2", ORDINARY, date(2026, 5, 1), date(2026, 5, 6), [("A", "3000.00")])
    copies = [first.model_copy(update={"hospital_claim_id": f"D{i}"}) for i in range(1, 71)]
    platform = chain()
    await platform.send([first, *copies[:35]])
    await platform.send(copies[35:])
    statements = [s for s in platform.statements() if isinstance(s, SettlementStatement)]
    paid = [s for s in statements if s.outcome == "settled"]
    refused = [s for s in statements if s.outcome == "rejected"]
    assert [s.claim_id for s in paid] == [first.claim_id] and len(refused) == 70
    assert {s.rejection.related_claim_id for s in refused if s.rejection} == {first.claim_id}
    # reversing the first lets the second settle (a clean run without the first)
    await platform.send([reversal(first)])
    nets = net_amounts(platform.statements())
    assert nets[copies[0].claim_id] == clean_run([copies[0]], PROFILE, LEVELS, CATEGORIES)[copies[0].claim_id]
    assert all(nets[c.claim_id]["fund_pay_sumamt"] == 0 for c in copies[1:])


async def test_five_stays_with_the_second_reversed_and_the_fourth_corrected() -> None:
    stays = [discharge(f"F{i}", "H3" if i % 2 else "H2", DIBAO, date(2026, 2 * i, 1), date(2026, 2 * i, 9),
                       [("A", f"{9000 + 3000 * i}.00"), ("B", "1500.00"), ("C", "300.00")]) for i in range(1, 6)]
    fourth = discharge("F4", "H2", DIBAO, date(2026, 8, 1), date(2026, 8, 12), [("A", "31000.00"), ("SELF", "900.00")])
    platform = chain()
    await platform.send(stays)
    await platform.send([reversal(stays[1])])
    await platform.send([corrected(fourth)])
    nets = net_amounts(platform.statements())
    survivors = [stays[0], stays[2], fourth, stays[4]]
    assert {d.claim_id: nets[d.claim_id] for d in survivors} == clean_run(survivors, PROFILE, LEVELS, CATEGORIES)
    assert nets[stays[1].claim_id] == zero()


# ------------------------------------------------------------ property


_AMOUNTS = st.sampled_from(["800.00", "2500.00", "6000.00", "12000.00", "30000.00", "60000.00", "150000.00"])
_OPS = st.lists(st.tuples(st.sampled_from(["new", "new", "reverse", "correct", "again"]), st.integers(0, 5),
                          _AMOUNTS, st.sampled_from(["H1", "H2", "H3"])), min_size=1, max_size=9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_OPS, pid=st.sampled_from([ORDINARY, DIBAO]), batched=st.booleans())
@pytest.mark.asyncio
async def test_any_sequence_of_requests_nets_to_a_clean_run(ops: list[tuple[str, int, str, str]], pid: str,
                                                            batched: bool) -> None:
    platform = chain()
    latest: dict[str, DischargeRecorded] = {}   # claim id -> latest content
    order: list[str] = []                       # first arrival
    alive: dict[str, bool] = {}
    pending = []
    for n, (op, pick, amount, hid) in enumerate(ops):
        known = [c for c in order if alive[c]] if op in ("reverse", "correct") else [c for c in order if not alive[c]]
        if op == "new" or not known:
            day = date(2026, 1, 1) + timedelta(days=20 * n)
            d = discharge(f"P{n}", hid, pid, day, day + timedelta(days=3), [("A", amount), ("C", "100.00")])
            latest[d.claim_id], alive[d.claim_id] = d, True
            order.append(d.claim_id)
            request = d
        else:
            claim = known[pick % len(known)]
            d = latest[claim]
            if op == "reverse":
                request, alive[claim] = reversal(d), False
            elif op == "correct":
                new = d.model_copy(update={"lines": discharge("x", hid, pid, d.admission_date, d.discharge_date,
                                                              [("A", amount), ("B", "50.00")]).lines,
                                           "total_amount": D(amount) + D("50.00")})
                request, latest[claim] = corrected(new), new
            else:
                request, alive[claim] = d.model_copy(), True
        if batched:
            pending.append(request)
        else:
            await platform.send([request])
    if batched:
        await platform.send(pending)
    nets = net_amounts(platform.statements())
    survivors = [latest[c] for c in order if alive[c]]
    assert {c: nets[c] for c in (d.claim_id for d in survivors)} == clean_run(survivors, PROFILE, LEVELS, CATEGORIES)
    assert all(nets.get(c, zero()) == zero() for c in order if not alive[c])
    for net in nets.values():  # no current amount is negative
        assert all(v >= 0 for v in net.values())
    for layer in (platform.basic, platform.catastrophic, platform.assistance):  # caps never exceeded
        for row in layer.ledger.years.values():
            assert all(v >= 0 for v in vars(row.state).values())
    assert sum(n["hifp_pay"] for n in nets.values()) <= PROFILE.basic_for("resident").annual_cap
