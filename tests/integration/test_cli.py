"""The command line (`medsettle`, `./medsettle`, `python -m tools`) as real processes against the
running stack: `--help` on every command changes nothing, unknown names are usage errors, errors are
one line, `status` says when the stack is down, and a publish with one bad line sends nothing.

The commands run in the test's namespace (TOPIC_PREFIX, AUDIT_DATABASE and the namespace's
databases) wherever they take one; the stack and services they would start or stop are the
checkout's (or MEDSETTLE_LOCAL's), compared before and after as well."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import DISCHARGES, ENROLLMENT_COMMANDS, dead_letter_topic, hospital_requests_topic
from runtime.db import open_pool
from runtime.kafka_access import KafkaAccess
from services.assistance.app import SPEC as ASSISTANCE
from services.audit.app import SPEC as AUDIT
from services.catastrophic.app import SPEC as CATASTROPHIC
from services.enrollment.app import SPEC as ENROLLMENT
from services.intake.app import SPEC as INTAKE
from services.settlement.app import SPEC as SETTLEMENT
from tests.integration.harness import Namespace, wait_drained
from tests.integration.harness import running as running_service
from tests.unit.test_publish_cli import command_line, correction_line, discharge_line, reversal_line
from tools import cli, stack
from tools.stack import services

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPECS = (ENROLLMENT, INTAKE, SETTLEMENT, CATASTROPHIC, ASSISTANCE, AUDIT)


def medsettle(*args: str, env: Mapping[str, str] | None = None, unset: Sequence[str] = ()) -> tuple[int, str, str]:
    """`medsettle ARGS` as a process (the console script's entry point): (exit code, stdout, stderr)."""
    import subprocess

    full = {**os.environ, "COLUMNS": "200", **(env or {})}
    for name in unset:
        full.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "tools", *args], cwd=ROOT, env=full, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def in_namespace(ns: Namespace) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": ns.bootstrap, "DATABASE_URL": ns.server_url, "TOPIC_PREFIX": ns.prefix,
            "AUDIT_DATABASE": ns.settings("audit").database}


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ what the commands could change


async def end_offsets(kafka: KafkaAccess, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """End offsets of every partition of `topics` (waiting for the metadata of topics just created)."""
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            described = await admin.describe_topics(list(topics)) if topics else []
            parts = [TopicPartition(t["topic"], p["partition"]) for t in described if not t["error_code"]
                     for p in t["partitions"]]
            if {tp.topic for tp in parts} == set(topics):
                break
            assert time.monotonic() < deadline, f"no metadata of {set(topics) - {tp.topic for tp in parts}}"
            await asyncio.sleep(0.3)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(**kafka.options(), enable_auto_commit=False)
    await consumer.start()
    try:
        return {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(parts)).items()} if parts else {}
    finally:
        await consumer.stop()


async def broker_state(ns: Namespace) -> dict[str, Any]:
    """The namespace's topics with their end offsets, its consumer groups with their committed offsets."""
    admin = AIOKafkaAdminClient(**ns.kafka.options())
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if t.startswith(ns.prefix))
        groups = sorted(g[0] for g in await admin.list_consumer_groups() if g[0].startswith(ns.prefix))
        committed = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            committed[group] = {(tp.topic, tp.partition): (om.offset, om.metadata) for tp, om in offsets.items()}
    finally:
        await admin.close()
    return {"topics": topics, "end offsets": await end_offsets(ns.kafka, topics), "groups": committed}


async def row_counts(ns: Namespace) -> dict[str, dict[str, int]]:
    """Rows of every table of every database of the namespace."""
    counts: dict[str, dict[str, int]] = {}
    for service in sorted(ns.databases):
        conn = await ns.connect(service)
        try:
            tables = [r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
            counts[service] = {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}
        finally:
            await conn.close()
    return counts


async def everything(ns: Namespace) -> dict[str, Any]:
    return {**await broker_state(ns), "rows": await row_counts(ns),
            "stack": await asyncio.to_thread(stack.is_running), "services": services.running()}


async def furnish(ns: Namespace) -> None:
    """Give the namespace something a command could change: migrated databases of every service,
    discharges, a dead letter, a consumer group with committed offsets."""
    for spec in SPECS:
        settings = ns.settings(spec.name)
        pool = await open_pool(settings.database_url, settings.database, *spec.migrations, size=1)
        await pool.close()
    records = [(d["person_id"], json.dumps(d).encode()) for d in (discharge_line(hospital_claim_id=f"C{i}")
                                                                  for i in range(3))]
    await ns.publish(DISCHARGES, records)
    producer = AIOKafkaProducer(**ns.kafka.options())
    await producer.start()
    try:
        await producer.send_and_wait(ns.topic(dead_letter_topic(DISCHARGES)), b"{oops", key=b"k", headers=[
            ("dlt.reason", b"not JSON"), ("dlt.original.topic", ns.topic(DISCHARGES).encode()),
            ("dlt.original.partition", b"0"), ("dlt.original.offset", b"0"), ("dlt.service", b"settlement")])
    finally:
        await producer.stop()
    group = AIOKafkaConsumer(**ns.kafka.options(), group_id=f"{ns.prefix}medsettle.settlement.{DISCHARGES}",
                             enable_auto_commit=False)
    await group.start()
    try:
        parts = [TopicPartition(ns.topic(DISCHARGES), p) for p in range(6)]
        group.assign(parts)
        await group.commit(dict.fromkeys(parts, 1))
    finally:
        await group.stop()


# ------------------------------------------------------------------------------------- --help


async def test_help_on_every_command_prints_help_and_changes_nothing(ns: Namespace) -> None:
    tree = cli.commands()
    assert ("operator", "dlt", "redrive") in tree and ("stack", "reset") in tree and ("stop",) in tree
    assert len(tree) >= 30  # every command and group of the tree, whatever is added later
    await furnish(ns)
    before = await everything(ns)
    assert before["end offsets"] and before["groups"] and all(before["rows"].values())

    env = in_namespace(ns)
    for words in tree:
        code, out, err = await asyncio.to_thread(medsettle, *words, "--help", env=env)
        assert code == 0 and err == "", (words, code, err)
        assert out.startswith(" ".join(("Usage: medsettle", *words))) and "-h, --help" in out, (words, out)
    code, out, _ = await asyncio.to_thread(medsettle, "stack", "reset", "-h", env=env)
    assert code == 0 and "Refused (exit 3" in out and "Exit codes:" in out

    assert await everything(ns) == before


# ------------------------------------------------------------------------------ usage errors


@pytest.mark.parametrize("args, says", [
    (("nosuch",), "No such command 'nosuch'"),
    (("services", "start", "nosuch"), "'nosuch' is not one of 'enrollment'"),
    (("services", "stop", "settlement", "nosuch"), "'nosuch' is not one of"),
    (("services", "status", "nosuch"), "'nosuch' is not one of"),
    (("operator", "replay", "nosuch", "--to-earliest"), "'nosuch' is not one of"),
    (("operator", "dlt", "list", "claims.nosuch"), "'claims.nosuch' is not a topic of the registry"),
    (("stack", "start", "--nosuch"), "--nosuch"),
    (("operator", "replay", "audit"), "give exactly one of --to-earliest, --to-datetime, --to-offset"),
])
def test_an_unknown_name_is_a_usage_error_in_one_line(args: tuple[str, ...], says: str) -> None:
    running = services.running()
    code, out, err = medsettle(*args)
    assert code == 2 and out == "", (code, out, err)
    line = one_line_error(err)
    assert says in line and "--help" in line, line
    assert services.running() == running  # nothing started or stopped


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    for args in (("publish", "discharges", str(tmp_path / "bills.jsonl")),
                 ("publish", "commands", str(tmp_path / "none.jsonl")),
                 ("generate", "discharges", "--population", str(tmp_path / "nope"), "--out", str(tmp_path / "d"))):
        code, _, err = medsettle(*args)
        assert code == 2 and "does not exist" in one_line_error(err), (args, err)
    (tmp_path / "empty").mkdir()  # a population directory without its files
    code, _, err = medsettle("generate", "discharges", "--population", str(tmp_path / "empty"), "--out",
                             str(tmp_path / "d"))
    assert code == 1 and "providers.jsonl: No such file or directory" in one_line_error(err)


# ------------------------------------------------------------------------ a stack that is down


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stopped_stack(tmp_path: Path) -> dict[str, str]:
    """The environment of a throwaway stack directory whose stack is not running (it once ran: its
    state file names ports nobody listens on)."""
    local = tmp_path / "stopped"
    local.mkdir()
    (local / "stack.json").write_text(json.dumps({
        "kafka": {"bootstrap_servers": f"127.0.0.1:{free_port()}"},
        "postgres": {"url": f"postgresql://medsettle_admin@127.0.0.1:{free_port()}",
                     "passfile": str(local / "secrets" / "postgres" / "pgpass")}}))
    return {"MEDSETTLE_LOCAL": str(local)}


CONNECTION = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "PGPASSFILE", "TOPIC_PREFIX")


def test_status_is_not_zero_while_the_stack_is_down(stopped_stack: dict[str, str]) -> None:
    code, out, err = medsettle("status", env=stopped_stack, unset=CONNECTION)
    assert code == 1 and "not running" in out and "down" in out, (out, err)
    assert "./medsettle stack start" in one_line_error(err)
    assert medsettle("stack", "status", "--check", env=stopped_stack, unset=CONNECTION)[0] == 1
    code, out, _ = medsettle("services", "status", env=stopped_stack, unset=CONNECTION)
    assert code == 1 and out.count("not running") == len(services.PROCESSES)


def test_a_command_on_a_stopped_stack_says_so_in_one_line(stopped_stack: dict[str, str], tmp_path: Path) -> None:
    bills = tmp_path / "bills.jsonl"
    bills.write_text(json.dumps(discharge_line()) + "\n")
    for args in (("publish", "discharges", str(bills), "--no-progress"), ("services", "start"),
                 ("statements", "--exit-when-idle", "1"), ("operator", "trace", "H1:C1"),
                 ("operator", "dlt", "list"), ("operator", "replay", "audit", "--to-earliest", "--dry-run")):
        code, _, err = medsettle(*args, env=stopped_stack, unset=CONNECTION)
        line = one_line_error(err)
        assert code == 1 and "the local stack is not running" in line and "./medsettle stack start" in line, \
            (args, err)
    never = {"MEDSETTLE_LOCAL": str(tmp_path / "never")}
    code, _, err = medsettle("stack", "env", env=never, unset=CONNECTION)
    assert code == 1 and "has not been started" in one_line_error(err)


# -------------------------------------------------------------------- publish: all or nothing


def big_discharge() -> dict:
    """A discharge over the record limit (512 KiB), which every consumer would refuse."""
    lines = [{"item_code": f"X{i}", "item_name": "一" * 200, "catalogue_class": "A", "quantity": "1", "unit": "day",
              "unit_price": "1.00", "amount": "1.00", "service_date": "2026-03-02"} for i in range(2000)]
    return discharge_line(hospital_claim_id="BIG", lines=lines, total_amount="2000.00")


H1_REQUESTS = hospital_requests_topic("H1")


@pytest.mark.parametrize("kind, topic, good, bad", [
    ("discharges", H1_REQUESTS, lambda i: discharge_line(hospital_claim_id=f"C{i}"), "{oops"),
    ("discharges", H1_REQUESTS, lambda i: discharge_line(hospital_claim_id=f"C{i}"), json.dumps(big_discharge())),
    ("commands", ENROLLMENT_COMMANDS, lambda i: command_line(payload={**command_line()["payload"],
                                                                      "provider_id": f"H{i}"}),
     json.dumps(command_line(event_type="DischargeRecorded"))),
    ("corrections", H1_REQUESTS, lambda i: correction_line(hospital_claim_id=f"C{i}"), json.dumps(discharge_line())),
    ("reversals", H1_REQUESTS, lambda i: reversal_line(hospital_claim_id=f"C{i}"),
     json.dumps(reversal_line(reason=""))),
])
async def test_a_file_with_a_bad_line_in_the_middle_sends_nothing(ns: Namespace, tmp_path: Path, kind: str,
                                                                  topic: str, good: Any, bad: str) -> None:
    env = in_namespace(ns)
    await ns.hospital_topics("H1")
    before = await end_offsets(ns.kafka, [ns.topic(topic)])
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps(good(i)) + "\n" for i in range(5)))
    second.write_text("".join(json.dumps(good(i)) + "\n" for i in range(5, 10)) + bad + "\n"
                      + "".join(json.dumps(good(i)) + "\n" for i in range(10, 15)))
    code, _, err = await asyncio.to_thread(medsettle, "publish", kind, str(first), str(second), "--no-progress",
                                           env=env)
    assert code == 1 and f"{second}:6" in err and "nothing published" in err, err
    assert await end_offsets(ns.kafka, [ns.topic(topic)]) == before

    code, _, err = await asyncio.to_thread(medsettle, "publish", kind, str(first), "--no-progress", env=env)
    assert code == 0 and f"published 5 {kind}" in err, err  # the same command does publish a good file
    after = await end_offsets(ns.kafka, [ns.topic(topic)])
    assert sum(after.values()) - sum(before.values()) == 5


async def test_corrections_and_reversals_go_out_as_the_hospital_sends_them(ns: Namespace, tmp_path: Path) -> None:
    from contracts import decode

    corrections, reversals = tmp_path / "corrections.jsonl", tmp_path / "reversals.jsonl"
    corrections.write_text(json.dumps(correction_line()) + "\n")
    reversals.write_text(json.dumps(reversal_line(hospital_claim_id="C7")) + "\n")
    env = in_namespace(ns)
    await ns.hospital_topics("H1")
    for kind, path in (("corrections", corrections), ("reversals", reversals)):
        code, _, err = await asyncio.to_thread(medsettle, "publish", kind, str(path), "--no-progress", env=env)
        assert code == 0 and f"published 1 {kind}" in err, err
    records = await ns.read(H1_REQUESTS, until=lambda rs: len(rs) >= 2)  # the hospital's own topic
    sent = {decode(r.value).event_type: (r.key.decode(), decode(r.value)) for r in records}
    assert set(sent) == {"DischargeCorrected", "ReversalRequested"}
    for key, envelope in sent.values():
        assert key == "11010519491231002X" and envelope.producer == "hospital:H1"
    assert sent["ReversalRequested"][1].correlation_id == "H1:C7"
    assert sent["DischargeCorrected"][1].payload.correction_reason == "discharged a day earlier"


async def test_a_hospital_sees_its_statements_adjustments_reversals_and_refusals(ns: Namespace) -> None:
    from datetime import date, timedelta
    from decimal import Decimal

    from contracts.topics import REFUSALS, STATEMENTS
    from tests.integration.test_audit_service import (
        corrected_then_reversed,
        discharge,
        pid,
        refusal,
        request_envelope,
        reversal_of,
        settle,
    )

    day = date(2026, 3, 1)
    mine, kept, theirs = (discharge(h, n, pid(400 + i), day, day + timedelta(days=3)) for i, (h, n) in enumerate(
        (("H001", "ZY-ADJ"), ("H001", "ZY-KEPT"), ("H002", "ZY-OTHER"))))
    events = [*corrected_then_reversed(mine)[0], *settle(kept, Decimal("310.00"), Decimal("0.00"), Decimal("0.00")),
              *settle(theirs, Decimal("320.00"), Decimal("0.00"), Decimal("0.00")),
              refusal(request_envelope(reversal_of(kept)), "ALREADY_REVERSED"),
              refusal(request_envelope(reversal_of(theirs)), "UNKNOWN_CLAIM")]
    for topic in (STATEMENTS, REFUSALS):
        await ns.publish(topic, [(key, env) for t, key, env in events if t == topic])
    async with running_service(INTAKE, ns.settings("intake")):  # copies them to each hospital's statements topic
        await wait_drained(ns, [("intake", STATEMENTS), ("intake", REFUSALS)])

    code, out, err = await asyncio.to_thread(
        medsettle, "statements", "--hospital", "H001", "--from-beginning", "--exit-when-idle", "3", "--prefix",
        ns.prefix, "--bootstrap", ns.bootstrap, env={"COLUMNS": "250"})
    assert code == 0, err
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "ZY-" in line and "│" in line}
    assert "ZY-OTHER" not in out, out
    assert "4 statement(s), 1 refusal(s)" in out, out
    adjustment = next(line for line in out.splitlines() if "ADJUSTMENT" in line)
    cells = [c.strip() for c in adjustment.split("│")[1:-1]]
    assert cells[:5] == ["ZY-ADJ", mine.person_id[:6] + "********" + mine.person_id[-4:], "2026-03-04",
                         "ADJUSTMENT 补退", "2"]
    assert cells[5:10] == ["-35.00", "-20.00", "-5.00", "0.00", "-10.00"]  # signed differences
    assert cells[10] == "settled; correction: bed days billed twice"
    reversal = [c.strip() for c in next(line for line in out.splitlines() if "REVERSAL" in line).split("│")[1:-1]]
    assert reversal[3:11] == ["REVERSAL 冲正", "3", "-945.00", "-280.00", "-95.00", "-50.00", "-520.00",
                              "reversed; reversal: patient was not admitted"]
    first_row = [c.strip() for c in next(line for line in out.splitlines() if "│ statement" in line
                                         and "ZY-ADJ" in line).split("│")[1:-1]]
    assert first_row[5:11] == ["980.00", "300.00", "100.00", "50.00", "530.00", "settled"]
    assert "ZY-KEPT" in rows and "ALREADY_REVERSED" in rows["ZY-KEPT"] and "ReversalRequested" in out
    assert mine.person_id not in out  # masked
