"""Operating the local stack: every process it starts logs to bounded, rotated files, and a reset
refuses while anything still uses the stack.

The reset refusal runs for real against the stack the tests use, guarded: the command is run only
after the decision function has seen the consumer group that must stop it. The path that does wipe
(`reset --stop-services`) runs against a throwaway stack directory (MEDSETTLE_LOCAL), never this one."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from contracts.topics import DISCHARGES
from tests.integration.harness import Namespace
from tools import stack
from tools.stack import services
from tools.stack.common import StackError, paths, process_cmdline, read_state
from tools.stack.pg import log_file

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def pipe_reader(pid: int, fd: int) -> list[str]:
    """The command line of the process that reads what `pid` writes on `fd` (a pipe)."""
    pipe = os.readlink(f"/proc/{pid}/fd/{fd}")
    assert pipe.startswith("pipe:"), f"fd {fd} of {pid} is {pipe}, not a pipe"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pid:
            try:
                if os.readlink(entry / "fd" / "0") == pipe:
                    return process_cmdline(int(entry.name))
            except OSError:
                continue
    raise AssertionError(f"nobody reads the pipe {pipe} of {pid}")


def local_stack_serves(kafka_bootstrap: str) -> bool:
    """Is the broker of the tests this checkout's local stack (the one `medsettle stack reset` acts on)?"""
    try:
        local = stack.connection_settings()
    except StackError:
        return False
    return "MEDSETTLE_LOCAL" not in os.environ and local["KAFKA_BOOTSTRAP_SERVERS"] == kafka_bootstrap


async def run_stack(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tools.stack", *args, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    return proc.returncode or 0, out.decode()


async def wait_for_line(log: Path, event: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        for line in (log.read_text().splitlines() if log.exists() else []):
            record = json.loads(line)
            if record.get("event") == event:
                return record
        assert time.monotonic() < deadline, f"no {event!r} in {log}"
        await asyncio.sleep(0.3)


# ------------------------------------------------------------------------- bounded logs


async def test_postgres_and_the_broker_log_through_the_rotating_writer(kafka_bootstrap: str, database_url: str
                                                                       ) -> None:
    if not local_stack_serves(kafka_bootstrap):
        pytest.skip("the tests do not run on this checkout's local stack")
    state = read_state()
    base = Path(state["postgres"]["base"])
    postmaster = int((base / "data" / "postmaster.pid").read_text().split()[0])
    writer = pipe_reader(postmaster, 2)
    assert writer[1:4] == ["-m", "tools.stack.logpipe", str(log_file(base))] and "--max-bytes" in writer

    marker = f"marker_{uuid.uuid4().hex}"
    conn = await asyncpg.connect(stack.database_dsn(database_url, "postgres"))
    try:
        with pytest.raises(asyncpg.InvalidTextRepresentationError):
            await conn.execute(f"SELECT '{marker}'::int")  # an ERROR whose message quotes the value
    finally:
        await conn.close()
    deadline = time.monotonic() + 30
    while not any(marker in f.read_text() for f in log_file(base).parent.glob("postgres.log*")):
        assert time.monotonic() < deadline, "the error did not reach postgres.log"
        await asyncio.sleep(0.2)

    broker = int(state["kafka"]["pid"])
    assert pipe_reader(broker, 1)[1:4] == ["-m", "tools.stack.logpipe", str(paths().kafka_stdout)]


# ------------------------------------------------------------------------- reset


async def test_reset_refuses_while_a_platform_consumer_group_is_active_and_wipes_nothing(
        ns: Namespace, kafka_bootstrap: str, fresh_database) -> None:
    if not local_stack_serves(kafka_bootstrap):
        pytest.skip("the tests do not run on this checkout's local stack")
    dsn = fresh_database("reset")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    finally:
        await conn.close()
    await ns.publish(DISCHARGES, [("k", b"still here")])
    group = f"{ns.prefix}medsettle.resetcheck.{DISCHARGES}"
    member = AIOKafkaConsumer(ns.topic(DISCHARGES), **ns.kafka.options(), group_id=group,
                              enable_auto_commit=False)
    await member.start()
    try:
        deadline = time.monotonic() + 60
        while not member.assignment():
            assert time.monotonic() < deadline, "the consumer did not join its group"
            await member.getmany(timeout_ms=200)
        blockers = await asyncio.to_thread(stack.reset_blockers)
        assert group in blockers.groups  # the guard: only now is the command run against this stack
        code, out = await run_stack("reset")
        assert code == 3 and "refused, nothing wiped" in out and f"{group} (1 active)" in out, out
    finally:
        await member.stop()
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT v FROM kept") == "still here"
    finally:
        await conn.close()
    records = await ns.read(DISCHARGES, until=lambda rs: len(rs) >= 1)
    assert [r.value for r in records] == [b"still here"]


async def test_a_service_logs_to_rotated_files_and_reset_stops_it_before_wiping(
        ns: Namespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "stack"
    monkeypatch.setenv("MEDSETTLE_LOCAL", str(local))
    assert paths().local == local.resolve()  # a throwaway stack: its reset can never reach the tests' own
    (local / "kafka" / "data").mkdir(parents=True)
    (local / "kafka" / "data" / "marker").write_text("data")
    pid = services.start("enrollment", {**ns.env("enrollment"), "LOG_MAX_BYTES": "65536", "LOG_BACKUPS": "1"})
    try:
        log = paths().logs / "enrollment.log"
        started = await wait_for_line(log, "started")
        assert started["service"] == "enrollment"
        environ = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
        assert (environ["LOG_FILE"], environ["LOG_MAX_BYTES"]) == (str(log), "65536")
        writer = pipe_reader(pid, 2)  # what never reaches its logger: bounded as well
        assert writer[1:] == ["-m", "tools.stack.logpipe", str(log.with_suffix(".out")), "--max-bytes", "65536",
                              "--backups", "1"]

        code, out = await run_stack("reset")
        assert code == 3 and f"enrollment (pid {pid})" in out and "--stop-services" in out, out
        assert services.pid_of("enrollment") == pid and (local / "kafka" / "data" / "marker").exists()

        code, out = await run_stack("reset", "--stop-services")
        assert code == 0 and "stopped enrollment" in out, out
        assert services.pid_of("enrollment") is None and not (local / "kafka" / "data").exists()
        assert json.loads(log.read_text().splitlines()[-1])["event"] == "stopped"  # a graceful stop, logged
    finally:
        services.stop("enrollment")
