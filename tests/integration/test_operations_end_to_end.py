"""Operator tooling against the real settlement chain: a replay through the CLI reprocesses a
service's input and pays nothing again; a dead letter, once its cause is fixed, is redriven and
settled exactly once."""

from __future__ import annotations

import pytest

from contracts import (
    DischargeRecorded,
    SettlementStatement,
    decode_envelope,
    encode,
    make_envelope,
)
from contracts.topics import (
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    STATEMENTS,
    dead_letter_topic,
)
from tests.integration.harness import payloads, run_operator, wait_drained
from tests.integration.platform import platform, register, snapshot
from tools.generate import generate_discharges, generate_population

pytestmark = pytest.mark.integration

PROVIDERS, PERSONS = generate_population(persons=300, providers=20, seed=3, year=2026)
STREAM = generate_discharges(400, seed=3, year=2026, providers=PROVIDERS, persons=PERSONS)
INPUTS = [("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED), ("assistance", CATASTROPHIC_SETTLED)]


async def test_replay_through_the_cli_leaves_every_ledger_unchanged(ns) -> None:
    async with platform(ns):
        await register(ns, PERSONS, PROVIDERS)
        await ns.publish(DISCHARGES, [(d.person_id, d) for d in STREAM])
        await ns.read(STATEMENTS, until=lambda rs: len(rs) >= len(STREAM))
        await wait_drained(ns, INPUTS)
        code, out = await run_operator(ns, "replay", "settlement", "--to-earliest")
        assert code == 3, out  # refused while the service consumes
        assert "active" in out
    before = await snapshot(ns)
    statements_before = len(await ns.read(STATEMENTS, until=lambda rs: len(rs) >= len(STREAM)))

    code, out = await run_operator(ns, "replay", "settlement", "--to-earliest", "--dry-run")
    assert code == 0 and str(len(STREAM)) in out, out
    for service, _ in INPUTS:
        code, out = await run_operator(ns, "replay", service, "--to-earliest")
        assert code == 0, out
    async with platform(ns):
        await wait_drained(ns, INPUTS)
    assert await snapshot(ns) == before
    after = await ns.read(STATEMENTS, until=lambda rs: len(rs) >= statements_before, timeout=20)
    assert len(after) == statements_before, "the replay published no statement"


async def test_dead_letter_redriven_after_the_fix_is_settled_once(ns, monkeypatch) -> None:
    d = STREAM[0]
    # a hospital already sends the next version of the discharge contract, which the platform does not know yet
    next_version = DischargeRecorded.SCHEMA_VERSION + 1
    newer = make_envelope(d, correlation_id=d.claim_id, producer="hospital").model_copy(
        update={"schema_version": next_version})
    async with platform(ns):
        await register(ns, PERSONS, PROVIDERS)
        await ns.publish(DISCHARGES, [(d.person_id, encode(newer)), (STREAM[1].person_id, STREAM[1])])
        await ns.read(STATEMENTS, until=lambda rs: len(rs) >= 1)
        await wait_drained(ns, INPUTS)
    code, out = await run_operator(ns, "dlt", "list", DISCHARGES)
    assert code == 0 and "newer than this service knows" in out, out

    monkeypatch.setattr(DischargeRecorded, "SCHEMA_VERSION", next_version)  # the platform is upgraded
    async with platform(ns):
        code, out = await run_operator(ns, "dlt", "redrive", DISCHARGES, "--all")
        assert code == 0, out
        await ns.read(STATEMENTS, until=lambda rs: len(rs) >= 2)
        code, out = await run_operator(ns, "dlt", "redrive", DISCHARGES, "--all")  # nothing left to send
        assert code in (0, 1), out
        await wait_drained(ns, INPUTS)
        records = await ns.read(STATEMENTS, until=lambda rs: len(rs) >= 2)
    mine = [s for s in payloads(records, SettlementStatement) if s.claim_id == d.claim_id]
    assert len(mine) == 1 and mine[0].outcome == "settled"
    assert len({decode_envelope(r.value).event_id for r in records}) == len(records) == 2
    dead = await ns.read(dead_letter_topic(DISCHARGES), until=lambda rs: len(rs) >= 1)
    assert len(dead) == 1, "the redriven record did not fail again"
