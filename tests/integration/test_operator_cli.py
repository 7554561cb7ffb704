"""The operator CLI (`medsettle operator`) as a process, against the real broker and database:
trace a claim, replay a service's consumer groups, list and redrive dead letters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import DischargeRecorded
from contracts.topics import ALERTS, DISCHARGES, REFUSALS, STATEMENTS, TOPICS, dead_letter_topic
from runtime.app import ServiceSpec
from runtime.consumer import Subscription
from runtime.unit_of_work import Inbound, UnitOfWork
from services.audit.app import make_spec
from tests.integration.harness import Namespace, run_operator, running
from tests.integration.test_audit_service import (
    QUIET,
    bill_line,
    cause_of,
    claim_number,
    correct,
    corrected_then_reversed,
    discharge,
    discharge_envelope,
    fetch,
    net_of,
    pid,
    publish_events,
    refusal,
    request_envelope,
    settle,
    statement_in,
    wait_stored,
)

pytestmark = pytest.mark.integration


operator = run_operator


# ----------------------------------------------------------------- trace


async def test_trace_shows_the_discharge_each_layer_the_statement_and_the_alerts(ns: Namespace) -> None:
    day = date(2026, 3, 1)
    d = discharge("H001", claim_number("TR", "H001"), pid(5), day, day + timedelta(days=3),
                  lines=[bill_line("EXM-008", "280.00", day), bill_line("EXM-008", "280.00", day)])
    env = discharge_envelope(d)
    async with running(make_spec(QUIET), ns.settings("audit")):
        await ns.publish(DISCHARGES, [(d.person_id, env)])
        await publish_events(ns, settle(d, Decimal("280.00"), Decimal("0.00"), Decimal("0.00"), event=env))
        await wait_stored(ns, STATEMENTS, 1)
        await wait_stored(ns, ALERTS, 1)
        code, out = await operator(ns, "trace", d.claim_id)
    assert code == 0, out
    order = [out.index(name) for name in ("DischargeRecorded", "BasicSettled", "CatastrophicSettled",
                                          "SettlementStatement")]
    assert order == sorted(order)
    assert "duplicate_lines" in out and "AuditAlert" in out and "basic paid 280.00" in out
    assert "total 560.00 = basic 280.00" in out
    assert d.person_id not in out  # identity numbers are masked
    code, out = await operator(ns, "alerts", "--rule", "duplicate_lines")
    assert code == 0 and d.claim_id in out and "F003 L155" in out
    code, out = await operator(ns, "kpis", "--from", "2026-03-01", "--to", "2026-03-31")
    assert code == 0 and "住院实际补偿比" in out and "50.00%" in out  # 280 of 560
    assert (await operator(ns, "trace", "H001:NOPE"))[0] == 1


async def test_trace_shows_the_whole_chain_of_a_corrected_then_reversed_claim(ns: Namespace) -> None:
    day = date(2026, 3, 1)
    d = discharge("H001", claim_number("TC", "H001"), pid(6), day, day + timedelta(days=3))
    later = discharge("H001", claim_number("TD", "H001"), pid(6), day + timedelta(days=20), day + timedelta(days=22))
    events, fix = corrected_then_reversed(d)
    events += [(DISCHARGES, later.person_id, request_envelope(later)),
               *(other := settle(later, Decimal("400.00"), Decimal("0.00"), Decimal("0.00")))]
    events += settle(later, Decimal("410.00"), Decimal("0.00"), Decimal("0.00"), event=fix, revision=2,
                     net=net_of([statement_in(other)]),
                     cause=cause_of("correction", fix, "bed days billed twice"))  # the later claim, re-priced
    refused = request_envelope(correct(d, lines=[bill_line("DRG-001", "1.00", day)]), producer="hospital:H009")
    events += [(DISCHARGES, d.person_id, refused), refusal(refused, "WRONG_HOSPITAL")]  # not the filing hospital

    async with running(make_spec(QUIET), ns.settings("audit")):
        await publish_events(ns, events)
        await wait_stored(ns, STATEMENTS, 5)
        await wait_stored(ns, REFUSALS, 1)
        await wait_stored(ns, DISCHARGES, 5)
        await wait_stored(ns, ALERTS, 1)  # the reversal came long after the discharge
        code, out = await operator(ns, "trace", d.claim_id, columns=400)  # wide enough for a row a line
        looked, report = await operator(ns, "reconcile")
    # both claims net to the layers' current revisions: the reversed one to zero, the other to 410.00
    assert looked == 0 and "2 claim(s) checked, 0 in flight" in report, report
    basic = next(line for line in report.splitlines() if "basic" in line and "2026" in line)
    assert [c.strip() for c in basic.split("│")[3:6]] == ["410.00", "410.00", "0.00"], basic
    assert code == 0, out
    lines = out.splitlines()

    def row(*words: str) -> int:
        """The first line of the table with every word (its number, to compare the order)."""
        return next(i for i, line in enumerate(lines) if all(w in line for w in words))

    chain_rows = [row("DischargeRecorded"), row("BasicSettled", "│ 1 "), row("SettlementStatement"),
                  row("DischargeCorrected", "CORRECTION (bed days billed twice)"),
                  row("BasicSettled", "│ 2 ", "correction: bed days billed twice"),
                  row("SettlementAdjusted", "│ 2 ", "ADJUSTMENT total -35.00: basic -20.00, critical illness -5.00"),
                  row("ReversalRequested", "REVERSAL REQUESTED: patient was not admitted"),
                  row("BasicSettled", "│ 3 ", "REVERSED"),
                  row("SettlementReversed", "│ 3 ", "reversal: patient was not admitted",
                      "REVERSAL total -945.00: basic -280.00, critical illness -95.00, assistance -50.00"),
                  row("DischargeCorrected", "hospital:H009"), row("REFUSED DischargeCorrected", "WRONG_HOSPITAL")]
    assert chain_rows == sorted(chain_rows), out
    # the other claim the correction re-priced, in a table of its own
    knock_on = row("other claims re-priced by the requests about", d.claim_id)
    assert knock_on > chain_rows[-1] and row(later.claim_id, "SettlementAdjusted", "basic +10.00") > knock_on, out
    assert row("AuditAlert", "late_reversal") > chain_rows[-3]
    assert d.person_id not in out  # identity numbers are masked


# ----------------------------------------------------------------- replay


async def committed(ns: Namespace, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**ns.kafka.options())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == ns.topic(topic)}


async def end_offsets(ns: Namespace, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**ns.kafka.options())
    await consumer.start()
    try:
        parts = [TopicPartition(ns.topic(topic), p) for p in range(next(t.partitions for t in TOPICS
                                                                          if t.name == topic))]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(parts)).items()}
    finally:
        await consumer.stop()


async def test_replay_refuses_while_active_then_resets_and_the_service_reprocesses_nothing_twice(ns: Namespace
                                                                                                ) -> None:
    day = date(2026, 3, 1)
    discharges = [discharge("H001", claim_number(f"RP{i}-", "H001"), pid(60 + i), day, day + timedelta(days=2),
                            lines=[bill_line("EXM-8", "10.00", day), bill_line("EXM-8", "10.00", day)])
                  for i in range(8)]
    group = f"{ns.prefix}medsettle.audit.{DISCHARGES}"
    async with running(make_spec(QUIET), ns.settings("audit")):
        await ns.publish(DISCHARGES, [(d.person_id, discharge_envelope(d)) for d in discharges])
        await wait_stored(ns, DISCHARGES, 8)
        await wait_stored(ns, ALERTS, 8)
        code, out = await operator(ns, "replay", "audit", "--to-earliest", "--topic", DISCHARGES)
        assert code == 3 and "refused" in out and "stop audit" in out
        # the group committed its offsets after the batch; give the last commit a moment
        deadline = time.monotonic() + 30
        while sum((await committed(ns, group, DISCHARGES)).values()) < 8:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    before = await committed(ns, group, DISCHARGES)
    stored_before = await fetch(ns, "SELECT count(*) AS n FROM event_store")

    code, out = await operator(ns, "replay", "audit", "--to-earliest", "--dry-run")
    assert code == 0, out
    assert "16 records would be reprocessed" in out  # 8 discharges + their 8 alerts (every audit input)
    assert await committed(ns, group, DISCHARGES) == before  # a dry run changes nothing
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code, out = await operator(ns, "replay", "audit", "--to-datetime", later, "--dry-run", "--topic", DISCHARGES)
    assert code == 0 and "0 records would be reprocessed" in out
    code, out = await operator(ns, "replay", "audit", "--to-offset", "1", "--dry-run", "--topic", DISCHARGES)
    assert code == 0 and f"{sum(max(o - 1, 0) for o in before.values())} records would be reprocessed" in out

    code, out = await operator(ns, "replay", "audit", "--to-earliest", "--topic", DISCHARGES)
    assert code == 0, out
    assert set((await committed(ns, group, DISCHARGES)).values()) == {0}

    async with running(make_spec(QUIET), ns.settings("audit")):
        ends = await end_offsets(ns, DISCHARGES)
        deadline = time.monotonic() + 60
        while await committed(ns, group, DISCHARGES) != ends:  # back at the end: everything consumed again
            assert time.monotonic() < deadline, "the audit did not reprocess the discharges"
            await asyncio.sleep(0.3)
    stored_after = await fetch(ns, "SELECT count(*) AS n FROM event_store")
    assert stored_after[0]["n"] == stored_before[0]["n"]  # reprocessed, nothing stored twice
    assert (await fetch(ns, "SELECT count(*) AS n FROM alert"))[0]["n"] == 8
    assert (await fetch(ns, "SELECT count(*) AS n FROM outbox"))[0]["n"] == 0  # published rows are deleted
    assert sum((await end_offsets(ns, ALERTS)).values()) == 8  # no alert emitted again


async def test_replay_of_one_partition_moves_only_it_exactly_to_the_offset(ns: Namespace) -> None:
    group = f"{ns.prefix}medsettle.settlement.{DISCHARGES}"
    partitions = next(t.partitions for t in TOPICS if t.name == DISCHARGES)
    producer = AIOKafkaProducer(**ns.kafka.options())
    await producer.start()
    try:
        for p in range(partitions):
            for i in range(5):  # a poison record could be any of them: the operator names it by offset
                await producer.send_and_wait(ns.topic(DISCHARGES), f"record {i}".encode(), partition=p)
    finally:
        await producer.stop()
    code, out = await operator(ns, "replay", "settlement", "--to-offset", "2")
    assert code == 0, out
    before = await committed(ns, group, DISCHARGES)
    assert before == dict.fromkeys(range(partitions), 2)

    code, out = await operator(ns, "replay", "settlement", "--partition", "4", "--to-offset", "3", "--dry-run")
    assert code == 0 and "on partition 4 only (dry run)" in out and "0 records would be reprocessed" in out, out
    assert await committed(ns, group, DISCHARGES) == before  # a dry run changes nothing

    for args, says in (
        (("settlement", "--partition", "4", "--to-earliest"), "--partition needs --to-offset"),
        (("audit", "--partition", "4", "--to-offset", "3"), "name one with --topic"),
        (("settlement", "--partition", "9", "--to-offset", "3"), f"topic {ns.topic(DISCHARGES)} has no partition 9"),
        (("settlement", "--partition", "4", "--to-offset", "6"), "holds offsets 0 to 5: cannot move to 6"),
    ):
        code, out = await operator(ns, "replay", *args)
        assert code == 2 and says in out and len(out.strip().splitlines()) == 1, out
    code, out = await operator(ns, "replay", "audit", "--partition", "4", "--to-offset", "3", "--topic", DISCHARGES,
                               "--dry-run")
    assert code == 0 and f"{ns.prefix}medsettle.audit.{DISCHARGES}" in out, out

    member = AIOKafkaConsumer(ns.topic(DISCHARGES), **ns.kafka.options(), group_id=group,
                              enable_auto_commit=False)
    await member.start()
    try:
        deadline = time.monotonic() + 60
        while not member.assignment():  # the group is active once the member has its partitions
            assert time.monotonic() < deadline, "the consumer did not join its group"
            await member.getmany(timeout_ms=200)
        code, out = await operator(ns, "replay", "settlement", "--partition", "4", "--to-offset", "3")
        assert code == 3 and "refused" in out, out
    finally:
        await member.stop()
    assert await committed(ns, group, DISCHARGES) == before

    code, out = await operator(ns, "replay", "settlement", "--partition", "4", "--to-offset", "3")
    assert code == 0 and f"moved partition 4 of {group} to offset 3" in out, out
    assert await committed(ns, group, DISCHARGES) == {**before, 4: 3}  # past record 2 of partition 4, nothing else


# ----------------------------------------------------------------- dead letters


class Payer:
    """A stand-in for a layer service: pays each claim once; claims marked BUG fail until fixed."""

    def __init__(self) -> None:
        self.fixed = False

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound]) -> None:
        new = await uow.first_time(DISCHARGES, [(m.payload.claim_id, m.envelope.event_id) for m in batch])
        for m in batch:
            d: DischargeRecorded = m.payload
            if d.claim_id not in new:
                continue
            if "BUG" in d.hospital_claim_id and not self.fixed:
                raise ValueError("cannot price this claim yet")
            await uow.conn.execute("INSERT INTO payment (claim_id) VALUES ($1)", d.claim_id)


def payer_spec(tmp_path: Path, payer: Payer) -> ServiceSpec:
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / "0001_payment.sql").write_text("CREATE TABLE payment (claim_id text NOT NULL);")
    return ServiceSpec(name="payer", migrations=(migrations,),
                       subscriptions=lambda ctx: [Subscription(DISCHARGES, payer, (DischargeRecorded,))])


async def payments(ns: Namespace) -> list[str]:
    conn = await ns.connect("payer")
    try:
        return [r["claim_id"] for r in await conn.fetch("SELECT claim_id FROM payment ORDER BY claim_id")]
    finally:
        await conn.close()


async def wait_payments(ns: Namespace, expected: Sequence[str]) -> None:
    deadline = time.monotonic() + 60
    while sorted(await payments(ns)) != sorted(expected):
        assert time.monotonic() < deadline, f"payments {await payments(ns)} != {expected}"
        await asyncio.sleep(0.2)


def keyed(records: Sequence[Any], key: str) -> int:
    return sum(1 for r in records if r.key and r.key.decode() == key)


async def test_dead_letters_are_listed_with_their_reason_and_redriven_exactly_once(ns: Namespace,
                                                                                    tmp_path: Path) -> None:
    day = date(2026, 3, 1)
    good, bug1, bug2 = (discharge("H001", f"{name}1", pid(80 + i), day, day + timedelta(days=1))
                        for i, name in enumerate(("OK", "BUG", "BUGB")))
    payer = Payer()
    dlt = dead_letter_topic(DISCHARGES)
    async with running(payer_spec(tmp_path, payer), ns.settings("payer")):
        await ns.publish(DISCHARGES, [(d.person_id, discharge_envelope(d)) for d in (good, bug1, bug2)]
                         + [("junk-key", b"{not json")])
        letters = await ns.read(dlt, until=lambda rs: len(rs) >= 3)
        await wait_payments(ns, [good.claim_id])
        # a second service dead-lettering the same original record: a copy with the same dlt.original.*
        first_bug = next(r for r in letters if keyed([r], bug1.person_id))
        producer = AIOKafkaProducer(**ns.kafka.options())
        await producer.start()
        try:
            headers = [(k, b"audit" if k == "dlt.service" else v) for k, v in first_bug.headers]
            await producer.send_and_wait(ns.topic(dlt), first_bug.value, key=first_bug.key, headers=headers)
        finally:
            await producer.stop()

        code, out = await operator(ns, "dlt", "list", DISCHARGES)
        assert code == 0, out
        assert "4 dead letters" in out and "handler error after 3 attempts: ValueError: cannot price this claim yet" in out
        assert "not JSON" in out and out.count("pending") == 4 and "payer" in out
        assert bug1.person_id not in out  # keys (person ids) are masked

        payer.fixed = True  # the cause is fixed
        code, out = await operator(ns, "dlt", "redrive", DISCHARGES, "--offset", str(first_bug.offset))
        assert code == 0 and "1 redriven" in out, out
        await wait_payments(ns, [good.claim_id, bug1.claim_id])
        code, out = await operator(ns, "dlt", "redrive", DISCHARGES, "--offset", str(first_bug.offset))
        assert code == 0 and "0 redriven, 1 skipped" in out, out
        code, out = await operator(ns, "dlt", "list", DISCHARGES)
        assert (out.count("redriven"), out.count("duplicate"), out.count("pending")) == (1, 1, 2), out

    code, out = await operator(ns, "dlt", "redrive", DISCHARGES, "--all", "--dry-run")
    assert code == 0 and "2 would redrive, 2 skipped" in out, out  # bug2 and the junk; bug1 and its copy done
    code, out = await operator(ns, "dlt", "redrive", DISCHARGES, "--all")
    assert code == 0 and "2 redriven" in out, out
    code, out = await operator(ns, "dlt", "redrive", DISCHARGES, "--all")
    assert code == 0 and "0 redriven" in out, out
    code, out = await operator(ns, "dlt", "list", DISCHARGES)
    assert out.count("redriven") == 4 and "pending" not in out, out

    records = await ns.read(DISCHARGES, until=lambda rs: len(rs) >= 7)
    assert (keyed(records, good.person_id), keyed(records, bug1.person_id), keyed(records, bug2.person_id),
            keyed(records, "junk-key")) == (1, 2, 2, 2)  # each dead letter republished exactly once
    redriven = [r for r in records if any(k == "redrive.from" for k, _ in r.headers or ())]
    assert len(redriven) == 3
    async with running(payer_spec(tmp_path, payer), ns.settings("payer")):
        await wait_payments(ns, [good.claim_id, bug1.claim_id, bug2.claim_id])  # each paid once
        await ns.read(dlt, until=lambda rs: len(rs) >= 5)  # the junk is still junk: dead-lettered again
    assert sorted(await payments(ns)) == sorted([good.claim_id, bug1.claim_id, bug2.claim_id])
