"""A 5,000-discharge stream through the real broker and database: duplicates, crashes and replays
never pay twice, never double-count an accumulator, and every discharge gets exactly one statement.

The reference is a clean run of the same stream in its own namespace; every other run must end
with the same ledgers, accumulators and statement amounts, to the fen.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest

from contracts import SettlementStatement, decode_envelope, make_envelope
from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES, STATEMENTS
from policy import load_profile
from policy.one_stop import OneStopClaim, OneStopYearState, settle_one_stop
from runtime.kafka_access import KafkaAccess
from runtime.watermark import prune_processed
from services.enrollment.app import SPEC as ENROLLMENT
from tests.integration.harness import (
    Namespace,
    ServiceProcess,
    group_lags,
    new_namespace,
    payloads,
    reset_group_to_earliest,
    running,
    wait_drained,
)
from tests.integration.platform import LAYERS, platform, register, snapshot
from tools.generate import generate_discharges, generate_population
from tools.stack.lag import active_groups

pytestmark = pytest.mark.integration

N = 5000
PROVIDERS, PERSONS = generate_population(persons=1500, providers=50, seed=11, year=2026)
STREAM = generate_discharges(N, seed=11, year=2026, providers=PROVIDERS, persons=PERSONS, ineligible_share=0.02)
INPUTS = [("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED), ("assistance", CATASTROPHIC_SETTLED)]


def layer_totals(statements: dict[tuple[str, int], tuple]) -> tuple[Decimal, ...]:
    return tuple(sum((s[i] for s in statements.values()), Decimal(0)) for i in range(3, 9))  # the amounts


async def statement_messages(ns: Namespace) -> list:
    return await ns.read(STATEMENTS, until=lambda rs: len({decode_envelope(r.value).event_id for r in rs}) >= N,
                         timeout=600)


@pytest.fixture(scope="module")
async def clean(kafka_admin: KafkaAccess, database_url: str):
    """The reference run: every discharge published once, services undisturbed."""
    ns = await new_namespace(kafka_admin, database_url)
    async with platform(ns):
        await register(ns, PERSONS, PROVIDERS)
        await ns.publish(DISCHARGES, [(d.person_id, d) for d in STREAM], producer_name="hospital")
        records = await statement_messages(ns)
        await wait_drained(ns, INPUTS)
    yield ns, await snapshot(ns), records
    await ns.drop_databases()


async def test_clean_run_gives_one_statement_per_discharge(clean) -> None:
    _, snap, records = clean
    statements = payloads(records, SettlementStatement)
    assert len(records) == N
    assert Counter(s.claim_id for s in statements) == Counter(d.claim_id for d in STREAM)
    rejected = Counter(s.rejection.reason_code for s in statements if s.outcome == "rejected")
    assert 0 < sum(rejected.values()) < N * 0.1  # the generator's ineligible share ends as rejections, not silence
    assert all(s.hifp_pay + s.hifmi_pay + s.maf_pay + s.psn_pay == s.total_cost for s in statements)
    assert layer_totals(snap["statements"])[0] == sum((d.total_amount for d in STREAM), Decimal(0))


async def test_services_agree_with_the_pure_one_stop_chain(clean) -> None:
    """Each settled statement equals the pure calculation of the same claims in the same order
    (policy.one_stop), so mapping events between the services loses nothing."""
    _, _, records = clean
    by_claim = {s.claim_id: s for s in payloads(records, SettlementStatement)}
    levels = {p.provider_id: p.level for p in PROVIDERS}
    people = {p.person_id: p for p in PERSONS}
    profile = load_profile("demo-county")
    years: dict[str, OneStopYearState] = {}
    checked = 0
    for d in STREAM:
        s = by_claim[d.claim_id]
        if s.outcome == "rejected":
            continue
        p = people[d.person_id]
        by_class: dict[str, Decimal] = {}
        for line in d.lines:
            by_class[line.catalogue_class] = by_class.get(line.catalogue_class, Decimal(0)) + line.amount
        result = settle_one_stop(OneStopClaim(
            claim_id=d.claim_id, scheme=p.scheme, hospital_level=levels[d.hospital_id], amounts_by_class=by_class,
            categories=frozenset(p.categories), disability_grade=p.disability_grade, care_location=d.care_location,
            referred=d.referred), profile, years.get(d.person_id, OneStopYearState()))
        years[d.person_id] = result.year_state_after
        assert (s.hifp_pay, s.hifmi_pay, s.maf_pay, s.psn_pay) == (
            result.basic_paid, result.catastrophic_paid, result.assistance_paid, result.patient_pays), d.claim_id
        checked += 1
    assert checked > N * 0.9


async def test_every_discharge_published_twice_settles_once(clean, kafka_admin: KafkaAccess, database_url: str) -> None:
    _, reference, _ = clean
    ns = await new_namespace(kafka_admin, database_url)
    try:
        async with platform(ns):
            await register(ns, PERSONS, PROVIDERS)
            twice = []
            for i, d in enumerate(STREAM):
                env = make_envelope(d, correlation_id=d.claim_id, producer="hospital")
                # even: the same event redelivered; odd: the hospital sends the claim again as a new event
                again = env if i % 2 == 0 else make_envelope(d, correlation_id=d.claim_id, producer="hospital")
                twice += [(d.person_id, env), (d.person_id, again)]
            await ns.publish(DISCHARGES, twice)
            records = await statement_messages(ns)
            await wait_drained(ns, INPUTS)
            await asyncio.sleep(1)
            records = await ns.read(STATEMENTS, until=lambda rs: len(rs) >= len(records))
        got = await snapshot(ns)
    finally:
        await ns.drop_databases()
    assert len(records) == N, "exactly one statement message per discharge"
    assert got == reference
    assert layer_totals(got["statements"]) == layer_totals(reference["statements"])


async def test_sigkill_of_each_layer_mid_stream(clean, kafka_admin: KafkaAccess, database_url: str) -> None:
    _, reference, _ = clean
    ns = await new_namespace(kafka_admin, database_url)
    layers = {spec.name: ServiceProcess(ns, spec.name) for spec in LAYERS}
    try:
        async with running(ENROLLMENT, ns.settings("enrollment")):
            await register(ns, PERSONS, PROVIDERS)
            for p in layers.values():
                p.start()
            publishing = asyncio.create_task(
                ns.publish(DISCHARGES, [(d.person_id, d) for d in STREAM], producer_name="hospital"))
            for name, at in (("settlement", 1000), ("catastrophic", 2000), ("assistance", 3000)):
                for _ in range(2400):
                    if await _ledger_rows(ns, name) >= at:
                        break
                    await asyncio.sleep(0.05)
                layers[name].kill()
                killed_at = await _ledger_rows(ns, name)
                assert killed_at < N, f"{name} finished before it could be killed mid-stream"
                layers[name].start()
            await publishing
            records = await statement_messages(ns)
            await wait_drained(ns, INPUTS)
        got = await snapshot(ns)
    finally:
        for p in layers.values():
            p.stop()
        await ns.drop_databases()
    ids = Counter(str(decode_envelope(r.value).event_id) for r in records)
    assert len(ids) == N, "one statement (one deterministic id) per discharge"
    assert Counter(s.claim_id for s in payloads(records, SettlementStatement)).keys() == {d.claim_id for d in STREAM}
    assert got == reference


async def test_two_instances_of_each_layer_through_rebalances_lose_and_duplicate_nothing(
        clean, kafka_admin: KafkaAccess, database_url: str) -> None:
    """Scale-out: two processes of each layer service in the same consumer groups share the partitions;
    mid-stream the second of each stops (its partitions move to the first: a rebalance with batches in
    flight) and later starts again (another rebalance). Exactly one statement per discharge, and
    ledgers, accumulators and statements equal to the clean run's.

    The stream goes out in two halves, the second only once the second instances have stopped, so the
    first instances always have work left after the rebalance however fast the first half settled."""
    clean_ns, reference, _ = clean
    final_rows = await _ledger_rows(clean_ns, "assistance")  # what the whole stream leaves in the last ledger
    ns = await new_namespace(kafka_admin, database_url)
    first = [ServiceProcess(ns, spec.name) for spec in LAYERS]
    second = [ServiceProcess(ns, spec.name, instance="b") for spec in LAYERS]
    groups = {f"{ns.settings(service).consumer_group}.{topic}" for service, topic in INPUTS}
    halves = STREAM[:N // 2], STREAM[N // 2:]

    async def members() -> dict[str, int]:
        return await active_groups(ns.kafka, lambda g: g in groups)

    async def until(rows: int) -> int:
        for _ in range(2400):
            if (done := await _ledger_rows(ns, "assistance")) >= rows:
                return done
            await asyncio.sleep(0.05)
        lags = await group_lags(ns, INPUTS)
        raise AssertionError(f"assistance did not reach {rows} ledger rows (of {final_rows}): "
                             f"{ {s: await _ledger_rows(ns, s) for s, _ in INPUTS} } ledger rows, lags {lags}")

    def publish(half: list) -> asyncio.Task:
        return asyncio.create_task(ns.publish(DISCHARGES, [(d.person_id, d) for d in half], producer_name="hospital"))

    try:
        async with running(ENROLLMENT, ns.settings("enrollment")):
            await register(ns, PERSONS, PROVIDERS)
            for p in (*first, *second):
                p.start()
            for _ in range(600):  # both instances of every layer have joined
                if dead := [p for p in (*first, *second) if not p.alive]:
                    raise AssertionError("a service ended while starting:\n" + "\n".join(p.tail() for p in dead))
                if (seen := await members()) and len(seen) == len(groups) and set(seen.values()) == {2}:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"not every layer's two instances joined: {seen}\n"
                                     + "\n".join(p.tail() for p in (*first, *second)))
            publishing = publish(halves[0])
            await until(N // 4)
            for p in second:
                p.stop()
            stopped_at = await _ledger_rows(ns, "assistance")
            await publishing  # a person's discharges stay in order: the second half only after the first
            publishing = publish(halves[1])
            assert stopped_at < final_rows, "the stream ended before the rebalance"
            await until(min(stopped_at + N // 4, final_rows))
            for p in second:
                p.start()
            await publishing
            records = await statement_messages(ns)
            await wait_drained(ns, INPUTS)
            await asyncio.sleep(1)
            records = await ns.read(STATEMENTS, until=lambda rs: len(rs) >= len(records))
        got = await snapshot(ns)
    finally:
        for p in (*first, *second):
            p.stop()
        await ns.drop_databases()
    ids = Counter(str(decode_envelope(r.value).event_id) for r in records)
    assert len(records) == len(ids) == N, "exactly one statement message per discharge"
    assert got == reference


async def _ledger_rows(ns: Namespace, service: str) -> int:
    try:
        conn = await ns.connect(service)
    except (OSError, asyncpg.PostgresError):  # the service has not created its database yet
        return 0
    try:
        return await conn.fetchval("SELECT count(*) FROM ledger")
    except asyncpg.PostgresError:  # nor migrated it
        return 0
    finally:
        await conn.close()


async def _replay_every_layer(ns: Namespace, stated: int) -> tuple[int, int]:
    """Reset every layer's consumer group to the earliest offset and let the layers run until drained;
    returns how many statement messages there were before and after."""
    before = len(await ns.read(STATEMENTS, until=lambda rs: len(rs) >= stated))
    for service, topic in INPUTS:
        await reset_group_to_earliest(ns, service, topic)
    async with platform(ns):
        await wait_drained(ns, INPUTS)
        await asyncio.sleep(1)
        after = await ns.read(STATEMENTS, until=lambda rs: len(rs) >= before, timeout=30)
    return before, len(after)


async def test_resetting_a_layers_consumer_group_pays_nothing_again(clean) -> None:
    ns, reference, records = clean
    before, after = await _replay_every_layer(ns, len(records))
    assert after == before, "a replay publishes no statement"
    assert await snapshot(ns) == reference


async def test_a_replay_after_pruning_pays_nothing_twice(clean) -> None:
    """The tables stay bounded: published outbox rows are deleted, and `processed_event` is pruned
    (here as if its retention had passed: everything). A replay of every layer's retained input from
    the beginning is then skipped by the input watermarks before any handler runs: nothing is recorded
    as processed again, no statement is published, the ledgers stay as they were."""
    ns, reference, records = clean
    for service, _ in INPUTS:
        conn = await ns.connect(service)
        try:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0, service
            assert await prune_processed(conn, timedelta(0)) >= N, service
            assert await conn.fetchval("SELECT count(*) FROM processed_event") == 0, service
        finally:
            await conn.close()
    before, after = await _replay_every_layer(ns, len(records))
    assert after == before, "a replay after pruning publishes no statement"
    assert await snapshot(ns) == reference
    for service, _ in INPUTS:
        conn = await ns.connect(service)
        try:  # the replayed records never reached a handler (it would have recorded them as processed)
            assert await conn.fetchval("SELECT count(*) FROM processed_event") == 0, service
        finally:
            await conn.close()
