"""The local Kafka 4.1 broker (KRaft combined mode) as a plain JVM process, and topic admin."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import signal
import string
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.topics import (
    ALL_TOPICS,
    HOSPITAL_TOPIC_CONFIG,
    HOSPITAL_TOPIC_PARTITIONS,
    hospital_requests_topic,
    hospital_statements_topic,
)
from runtime.kafka_access import KafkaAccess
from tools.stack import logpipe
from tools.stack.common import (
    DEFAULT_BROKER_PORT,
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_INTERNAL_PORT,
    HOST,
    Echo,
    Paths,
    StackError,
    pick_ports,
    port_is_free,
    process_alive,
    process_cmdline,
    reap,
    require_binary,
    tail,
    wait_gone,
)
from tools.stack.secrets import StackSecrets, mutual_tls_context

JVM_HEAP = ["-Xms256m", "-Xmx512m"]
POM_STAMP = ".pom.sha256"


# --------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class TopicPlan:
    """A registry topic as created on a broker: its name carries the namespace's prefix."""

    name: str
    partitions: int
    config: dict[str, str]


def topic_plan(prefix: str = "") -> list[TopicPlan]:
    """Every topic of the registry `contracts.topics.ALL_TOPICS` (each topic and its dead-letter
    topic), each name prefixed with `prefix` (isolated test namespaces; empty in production)."""
    return [TopicPlan(prefix + t.name, t.partitions, {"cleanup.policy": t.cleanup_policy, **t.config})
            for t in ALL_TOPICS]


def hospital_topic_plan(hospital_ids: list[str], prefix: str = "") -> list[TopicPlan]:
    """Each hospital's requests and statements topics (`contracts.topics`, "hospitals' topics")."""
    config = {"cleanup.policy": "delete", **HOSPITAL_TOPIC_CONFIG}
    return [TopicPlan(prefix + name(h), HOSPITAL_TOPIC_PARTITIONS, config)
            for h in hospital_ids for name in (hospital_requests_topic, hospital_statements_topic)]


async def ensure_topics(kafka: KafkaAccess, timeout: float = 60.0, prefix: str = "",
                        plans: list[TopicPlan] | None = None) -> dict[str, str]:
    """Create every registry topic (or every one of `plans`) that is missing. Returns {topic:
    "created"|"exists"|warning}."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    plans = topic_plan(prefix) if plans is None else plans
    admin = AIOKafkaAdminClient(**kafka.options(), request_timeout_ms=int(timeout * 1000))
    result: dict[str, str] = {}
    await admin.start()
    try:
        existing = {t["topic"]: t for t in await admin.describe_topics()}
        missing = [p for p in plans if p.name not in existing]
        for p in plans:
            if p.name in existing:
                have = len(existing[p.name]["partitions"])
                result[p.name] = "exists" if have == p.partitions else (
                    f"exists with {have} partitions (registry says {p.partitions}; left as is)"
                )
        if missing:
            resp = await admin.create_topics(
                [NewTopic(p.name, p.partitions, 1, topic_configs=p.config) for p in missing],
                timeout_ms=int(timeout * 1000),
            )
            for entry in resp.topic_errors:
                name, code = entry[0], entry[1]
                message = entry[2] if len(entry) > 2 else ""
                if code == 0:
                    result[name] = "created"
                elif code == 36:  # TOPIC_ALREADY_EXISTS (a concurrent creator won)
                    result[name] = "exists"
                else:
                    raise StackError(f"creating topic {name} failed: error code {code} {message or ''}".strip())
    finally:
        await admin.close()
    return {p.name: result.get(p.name, "?") for p in plans}


async def broker_answers(options: dict[str, Any], timeout: float = 5.0) -> bool:
    """True when the broker answers a metadata request and reports a controller (`options`: an
    aiokafka client's, `KafkaAccess.options()` or the stack's mutual-TLS ones)."""
    from aiokafka.admin import AIOKafkaAdminClient

    # a plain TCP probe first, so aiokafka does not log "Unable connect" on every try
    hosts = [h.strip() for h in options["bootstrap_servers"].split(",") if h.strip()]
    for h in hosts:
        if await _tcp_open(h, min(timeout, 2.0)):
            break
    else:
        return False
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
    except Exception:  # noqa: BLE001 - any failure means "not (yet) answering"
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def _tcp_open(hostport: str, timeout: float) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host.strip("[]") or "localhost", int(port))
    except (OSError, ValueError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


# --------------------------------------------------------------------------- jars


def _pom_digest(p: Paths) -> str:
    return hashlib.sha256(p.pom.read_bytes()).hexdigest()


def jars_ready(p: Paths) -> bool:
    stamp = p.kafka_libs / POM_STAMP
    return stamp.is_file() and stamp.read_text().strip() == _pom_digest(p) and any(p.kafka_libs.glob("kafka_2.13-*.jar"))


def ensure_jars(p: Paths, echo: Echo = print) -> None:
    """Download the broker jars with Maven into .local/kafka/libs (again whenever the pom changes)."""
    if jars_ready(p):
        return
    mvn = require_binary("mvn")
    echo(f"downloading Kafka jars with Maven into {p.kafka_libs} (first run only) ...")
    if p.kafka_libs.exists():
        shutil.rmtree(p.kafka_libs)
    p.kafka_libs.mkdir(parents=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(p.pom), "dependency:copy-dependencies",
        f"-DoutputDirectory={p.kafka_libs}", "-DincludeScope=runtime",
    ]
    res = subprocess.run(cmd, cwd=p.root, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(
            "Maven could not download the Kafka jars (is Maven Central reachable?):\n"
            + (res.stdout + res.stderr)[-4000:]
        )
    (p.kafka_libs / POM_STAMP).write_text(_pom_digest(p) + "\n")


def _classpath(p: Paths) -> str:
    return str(p.kafka_libs) + "/*"


# --------------------------------------------------------------------------- process


def random_cluster_id() -> str:
    """Same shape as `kafka-storage.sh random-uuid`: URL-safe base64 of 16 random bytes, no padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def render_server_properties(template: str, *, listeners: str, advertised_listeners: str, controller_address: str,
                             data_dir: str, secrets_dir: str) -> str:
    """`infra/kafka/server.properties.template` filled in (the local stack's, and docker-compose's
    through `medsettle stack secrets --compose`)."""
    return string.Template(template).substitute(
        listeners=listeners, advertised_listeners=advertised_listeners, controller_address=controller_address,
        data_dir=data_dir, secrets_dir=secrets_dir)


def listeners(host: str, ports: Ports) -> str:
    return (f"CLIENT://{host}:{ports.broker},INTERNAL://{host}:{ports.internal},"
            f"CONTROLLER://{host}:{ports.controller}")


def render_properties(p: Paths, ports: Ports) -> None:
    addresses = listeners(HOST, ports)
    text = render_server_properties(p.server_template.read_text(), listeners=addresses, advertised_listeners=addresses,
                                    controller_address=f"{HOST}:{ports.controller}", data_dir=str(p.kafka_data),
                                    secrets_dir=str(StackSecrets(p.local).root))
    p.kafka.mkdir(parents=True, exist_ok=True)
    p.kafka_properties.write_text(text)


def format_storage(p: Paths, java: str, cluster_id: str) -> None:
    if (p.kafka_data / "meta.properties").is_file():
        return
    p.kafka_data.mkdir(parents=True, exist_ok=True)
    cmd = [
        java, *JVM_HEAP, f"-Dlog4j2.configurationFile={p.log4j2_config}", f"-Dkafka.logs.dir={p.kafka_logs}",
        "-cp", _classpath(p), "kafka.tools.StorageTool",
        "format", "--standalone", "-t", cluster_id, "-c", str(p.kafka_properties),
    ]
    res = subprocess.run(cmd, cwd=p.root, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{(res.stdout + res.stderr)[-4000:]}")


def broker_pids(p: Paths) -> list[int]:
    """PIDs of brokers started from THIS checkout (matched by our server.properties path)."""
    props = str(p.kafka_properties)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        cmd = process_cmdline(int(entry.name))
        if "kafka.Kafka" in cmd and props in cmd and process_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


@dataclass(frozen=True)
class Ports:
    broker: int
    """CLIENT: TLS + SCRAM, the bootstrap address."""
    controller: int
    internal: int
    """INTERNAL: mutual TLS, the broker's own."""


def choose_ports(state: dict[str, Any]) -> Ports:
    """The ports used last time if free (a restarted broker keeps its address: its clients
    reconnect), else the default ports if free, else the next free three."""
    k = state.get("kafka") or {}
    last = (k.get("broker_port"), k.get("controller_port"), k.get("internal_port"))
    for ports in (last, (DEFAULT_BROKER_PORT, DEFAULT_CONTROLLER_PORT, DEFAULT_INTERNAL_PORT)):
        if all(ports) and all(port_is_free(int(str(x))) for x in ports):
            return Ports(*(int(str(x)) for x in ports))
    b, c, i = pick_ports([DEFAULT_BROKER_PORT], count=3)
    return Ports(b, c, i)


def launch(p: Paths, state: dict[str, Any], java: str) -> dict[str, Any]:
    """Format storage if needed and spawn the broker; returns the kafka part of the state."""
    k = dict(state.get("kafka") or {})
    ports = choose_ports(state)
    cluster_id = k.get("cluster_id") if (p.kafka_data / "meta.properties").is_file() else None
    cluster_id = cluster_id or random_cluster_id()
    p.kafka_logs.mkdir(parents=True, exist_ok=True)
    render_properties(p, ports)
    format_storage(p, java, cluster_id)
    cmd = [
        java, *JVM_HEAP, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={p.log4j2_config}", f"-Dkafka.logs.dir={p.kafka_logs}",
        "-cp", _classpath(p), "kafka.Kafka", str(p.kafka_properties),
    ]
    with logpipe.output_to(p.kafka_stdout) as out:  # log4j2 rotates the broker's own files
        proc = subprocess.Popen(
            cmd, cwd=p.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    k.update(
        host=HOST,
        broker_port=ports.broker,
        controller_port=ports.controller,
        internal_port=ports.internal,
        bootstrap_servers=f"{HOST}:{ports.broker}",
        internal_servers=f"{HOST}:{ports.internal}",
        cluster_id=cluster_id,
        pid=proc.pid,
        server_properties=str(p.kafka_properties),
        log=str(p.kafka_server_log),
        started_at=time.time(),
    )
    return k


async def wait_ready(p: Paths, k: dict[str, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pid = int(k["pid"])
    while time.monotonic() < deadline:
        reap(pid)
        if not process_alive(pid):
            raise StackError(
                f"the Kafka broker exited during start-up; see {p.kafka_server_log} and {p.kafka_stdout}\n"
                + tail(p.kafka_server_log, 25) + "\n" + tail(p.kafka_stdout, 10)
            )
        if await broker_answers(internal_options(p, k), timeout=3.0):
            return
        await asyncio.sleep(0.5)
    raise StackError(
        f"the Kafka broker did not answer on {k['bootstrap_servers']} within {timeout:.0f}s; "
        f"see {p.kafka_server_log}\n" + tail(p.kafka_server_log, 25)
    )


def internal_options(p: Paths, k: dict[str, Any]) -> dict[str, Any]:
    """aiokafka options of the broker's own identity on its INTERNAL listener (mutual TLS): how the
    stack checks that the broker is up and sets the SCRAM credentials before any user exists."""
    return {"bootstrap_servers": k["internal_servers"], "security_protocol": "SSL",
            "ssl_context": mutual_tls_context(StackSecrets(p.local))}


def stop(p: Paths, timeout: float = 30.0, echo: Echo = print) -> bool:
    """SIGTERM this checkout's broker(s), SIGKILL after `timeout`. True if one was running."""
    pids = broker_pids(p)
    for pid in pids:
        echo(f"stopping Kafka broker (pid {pid}) ...")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in pids:
        if not wait_gone(pid, timeout):
            echo(f"Kafka broker (pid {pid}) did not stop within {timeout:.0f}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 10)
    return bool(pids)


# --------------------------------------------------------------------------- inspection (status)


async def inspect(kafka: KafkaAccess, timeout: float = 10.0, *, everything: bool = False) -> dict[str, Any]:
    """Topics with partitions, offsets and message counts; consumer groups with lag.

    Only the registry's topics and the platform's groups (`medsettle.*`) unless `everything`:
    isolated test namespaces (prefixed topics) are left out."""
    registry = {p.name for p in topic_plan()}
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka.options(), request_timeout_ms=int(timeout * 1000))
    consumer = AIOKafkaConsumer(**kafka.options(), enable_auto_commit=False, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    await consumer.start()
    try:
        described = await admin.describe_topics()
        topics: dict[str, list[int]] = {
            t["topic"]: sorted(pp["partition"] for pp in t["partitions"])
            for t in described
            if not t["topic"].startswith("__") and (everything or t["topic"] in registry)
        }
        tps = [TopicPartition(t, i) for t, parts in topics.items() for i in parts]
        end = await consumer.end_offsets(tps) if tps else {}
        begin = await consumer.beginning_offsets(tps) if tps else {}
        topic_rows = []
        for name in sorted(topics):
            parts = topics[name]
            e = sum(end.get(TopicPartition(name, i), 0) for i in parts)
            b = sum(begin.get(TopicPartition(name, i), 0) for i in parts)
            topic_rows.append({"topic": name, "partitions": len(parts), "end_offset": e, "messages": e - b})
        group_rows = []
        groups = sorted({g[0] for g in await admin.list_consumer_groups()
                         if everything or g[0].startswith("medsettle.")})
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            per_topic: dict[str, dict[str, int]] = {}
            for tp, om in offsets.items():
                if om.offset < 0:
                    continue
                row = per_topic.setdefault(tp.topic, {"committed": 0, "end": 0, "lag": 0})
                e = end.get(tp)
                if e is None:
                    e = (await consumer.end_offsets([tp])).get(tp, om.offset)
                row["committed"] += om.offset
                row["end"] += e
                row["lag"] += max(e - om.offset, 0)
            if not per_topic:
                group_rows.append({"group": group, "topic": "-", "committed": 0, "end": 0, "lag": 0})
            for topic in sorted(per_topic):
                group_rows.append({"group": group, "topic": topic, **per_topic[topic]})
        return {"topics": topic_rows, "groups": group_rows}
    finally:
        await consumer.stop()
        await admin.close()
