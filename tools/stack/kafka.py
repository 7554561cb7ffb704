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
    read_state,
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
        # three brokers or more: every topic replicated 3 times (min.insync.replicas 2 is the brokers' default)
        rf, _ = replication(len((await admin.describe_cluster()).get("brokers") or []))
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
                [NewTopic(p.name, p.partitions, rf, topic_configs=p.config) for p in missing],
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


def _hosts(servers: str | list[str]) -> list[str]:
    """An aiokafka `bootstrap_servers` (a list, or `host:port,host:port`) as its hosts."""
    items = servers.split(",") if isinstance(servers, str) else servers
    return [h.strip() for h in items if h.strip()]


async def broker_answers(options: dict[str, Any], timeout: float = 5.0) -> bool:
    """True when the broker answers a metadata request and reports a controller (`options`: an
    aiokafka client's, `KafkaAccess.options()` or the stack's mutual-TLS ones)."""
    from aiokafka.admin import AIOKafkaAdminClient

    # a plain TCP probe first, so aiokafka does not log "Unable connect" on every try
    hosts = _hosts(options["bootstrap_servers"])
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
                             data_dir: str, secrets_dir: str, node_id: int = 1, voters: str = "",
                             replication_factor: int = 1, min_isr: int = 1) -> str:
    """`infra/kafka/server.properties.template` filled in (the local stack's, and docker-compose's
    through `medsettle stack secrets --compose`). Without `voters` the node is a standalone dynamic
    quorum at `controller_address`; with `voters` (`1@host:port,2@…`) a static quorum of those."""
    quorum = (f"controller.quorum.voters={voters}" if voters
              else f"controller.quorum.bootstrap.servers={controller_address}")
    return string.Template(template).substitute(
        listeners=listeners, advertised_listeners=advertised_listeners, quorum=quorum, node_id=node_id,
        data_dir=data_dir, secrets_dir=secrets_dir, replication_factor=replication_factor, min_isr=min_isr)


def listeners(host: str, ports: Ports) -> str:
    return (f"CLIENT://{host}:{ports.broker},INTERNAL://{host}:{ports.internal},"
            f"CONTROLLER://{host}:{ports.controller}")


BROKER_COUNTS = (1, 3)
"""How many brokers the local stack runs: one (the default), or three (`--brokers 3`,
`MEDSETTLE_KAFKA_BROKERS=3`): replication factor 3, min.insync.replicas 2."""


@dataclass(frozen=True)
class Node:
    """One KRaft node (broker + controller) of the local cluster: its files."""

    node_id: int
    properties: Path
    data: Path
    logs: Path

    @property
    def stdout(self) -> Path:
        return self.logs / "kafka.out"

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"


def nodes(p: Paths, brokers: int) -> list[Node]:
    """One broker: `.local/kafka/{server.properties,data,logs}` as ever; three: each node in
    `.local/kafka/node<N>/` with its own properties, data directory and logs."""
    if brokers == 1:
        return [Node(1, p.kafka_properties, p.kafka_data, p.kafka_logs)]
    return [Node(n, p.kafka / f"node{n}" / "server.properties", p.kafka / f"node{n}" / "data",
                 p.kafka / f"node{n}" / "logs") for n in range(1, brokers + 1)]


def replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) of a cluster of `brokers`."""
    return (3, 2) if brokers >= 3 else (1, 1)


def formatted_brokers(p: Paths) -> int | None:
    """How many nodes the existing data was formatted for (None: no data yet)."""
    if (p.kafka / "node1" / "data" / "meta.properties").is_file():
        return len([d for d in p.kafka.glob("node*") if (d / "data" / "meta.properties").is_file()]) or None
    if (p.kafka_data / "meta.properties").is_file():
        return 1
    return None


def render_properties(p: Paths, node: Node, ports: list[Ports]) -> None:
    mine = ports[node.node_id - 1]
    addresses = listeners(HOST, mine)
    brokers = len(ports)
    rf, isr = replication(brokers)
    voters = "" if brokers == 1 else ",".join(f"{i + 1}@{HOST}:{pp.controller}" for i, pp in enumerate(ports))
    text = render_server_properties(p.server_template.read_text(), listeners=addresses, advertised_listeners=addresses,
                                    controller_address=f"{HOST}:{mine.controller}", data_dir=str(node.data),
                                    secrets_dir=str(StackSecrets(p.local).root), node_id=node.node_id,
                                    voters=voters, replication_factor=rf, min_isr=isr)
    node.properties.parent.mkdir(parents=True, exist_ok=True)
    node.properties.write_text(text)


def format_storage(p: Paths, node: Node, java: str, cluster_id: str, brokers: int) -> None:
    if (node.data / "meta.properties").is_file():
        return
    node.data.mkdir(parents=True, exist_ok=True)
    # one node: --standalone (a dynamic quorum of itself); three: the static voters of the properties
    standalone = ["--standalone"] if brokers == 1 else []
    cmd = [
        java, *JVM_HEAP, f"-Dlog4j2.configurationFile={p.log4j2_config}", f"-Dkafka.logs.dir={node.logs}",
        "-cp", _classpath(p), "kafka.tools.StorageTool",
        "format", *standalone, "-t", cluster_id, "-c", str(node.properties),
    ]
    res = subprocess.run(cmd, cwd=p.root, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{(res.stdout + res.stderr)[-4000:]}")


def broker_pids(p: Paths) -> list[int]:
    """PIDs of brokers started from THIS checkout (matched by a server.properties path under our
    `.local/kafka/`: the single broker's or a node's of three), in node order."""
    found: list[tuple[str, int]] = []
    base = str(p.kafka) + "/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        cmd = process_cmdline(int(entry.name))
        if "kafka.Kafka" not in cmd or not process_alive(int(entry.name)):
            continue
        for arg in cmd:
            if arg.startswith(base) and arg.endswith("server.properties"):
                found.append((arg, int(entry.name)))
                break
    return [pid for _, pid in sorted(found)]


def node_pid(p: Paths, node: Node) -> int | None:
    """The running process of `node`, if any."""
    props = str(node.properties)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmd = process_cmdline(int(entry.name))
            if "kafka.Kafka" in cmd and props in cmd and process_alive(int(entry.name)):
                return int(entry.name)
    return None


@dataclass(frozen=True)
class Ports:
    broker: int
    """CLIENT: TLS + SCRAM, the bootstrap address."""
    controller: int
    internal: int
    """INTERNAL: mutual TLS, the broker's own."""


def choose_ports(state: dict[str, Any], brokers: int = 1) -> list[Ports]:
    """Each node's ports: those used last time if free (a restarted broker keeps its address: its
    clients reconnect), else the default ports if free (one broker), else the next free block."""
    k = state.get("kafka") or {}
    if brokers == 1:
        last = (k.get("broker_port"), k.get("controller_port"), k.get("internal_port"))
        for ports in (last, (DEFAULT_BROKER_PORT, DEFAULT_CONTROLLER_PORT, DEFAULT_INTERNAL_PORT)):
            if all(ports) and all(port_is_free(int(str(x))) for x in ports):
                return [Ports(*(int(str(x)) for x in ports))]
        b, c, i = pick_ports([DEFAULT_BROKER_PORT], count=3)
        return [Ports(b, c, i)]
    previous = k.get("nodes") or []
    if len(previous) == brokers:
        last_ports = [Ports(int(n["broker_port"]), int(n["controller_port"]), int(n["internal_port"]))
                      for n in previous]
        if all(port_is_free(x) for pp in last_ports for x in (pp.broker, pp.controller, pp.internal)):
            return last_ports
    block = pick_ports([DEFAULT_BROKER_PORT + 100], count=3 * brokers)
    return [Ports(*block[3 * i:3 * i + 3]) for i in range(brokers)]


def spawn_node(p: Paths, node: Node, java: str) -> int:
    """Start one node's JVM from its rendered properties; returns its pid."""
    node.logs.mkdir(parents=True, exist_ok=True)
    cmd = [
        java, *JVM_HEAP, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={p.log4j2_config}", f"-Dkafka.logs.dir={node.logs}",
        "-cp", _classpath(p), "kafka.Kafka", str(node.properties),
    ]
    with logpipe.output_to(node.stdout) as out:  # log4j2 rotates the broker's own files
        proc = subprocess.Popen(
            cmd, cwd=p.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def launch(p: Paths, state: dict[str, Any], java: str, brokers: int = 1) -> dict[str, Any]:
    """Format storage if needed and spawn the broker(s); returns the kafka part of the state."""
    k = dict(state.get("kafka") or {})
    have = formatted_brokers(p)
    if have is not None and have != brokers:
        raise StackError(f"the local Kafka data was made for {have} broker(s), not {brokers}: "
                         f"./medsettle stack reset first (it wipes the data), or start with --brokers {have}")
    ports = choose_ports(state, brokers)
    cluster_id = k.get("cluster_id") if have is not None else None
    cluster_id = cluster_id or random_cluster_id()
    members = nodes(p, brokers)
    for node in members:
        render_properties(p, node, ports)
        format_storage(p, node, java, cluster_id, brokers)
    pids = [spawn_node(p, node, java) for node in members]
    first = ports[0]
    k.update(
        host=HOST,
        brokers=brokers,
        broker_port=first.broker,
        controller_port=first.controller,
        internal_port=first.internal,
        bootstrap_servers=",".join(f"{HOST}:{pp.broker}" for pp in ports),
        internal_servers=",".join(f"{HOST}:{pp.internal}" for pp in ports),
        cluster_id=cluster_id,
        pid=pids[0],
        server_properties=str(members[0].properties),
        log=str(members[0].server_log),
        started_at=time.time(),
    )
    if brokers == 1:
        k.pop("nodes", None)
    else:
        k["nodes"] = [{"node_id": n.node_id, "pid": pid, "broker_port": pp.broker, "controller_port": pp.controller,
                       "internal_port": pp.internal, "server_properties": str(n.properties), "data": str(n.data),
                       "log": str(n.server_log)} for n, pid, pp in zip(members, pids, ports, strict=True)]
    return k


def restart_node(p: Paths, node_id: int, java: str | None = None) -> int:
    """Start node `node_id` of a three-broker stack again from its rendered properties (after it
    died or was killed: a benchmark's broker failure); returns its pid."""
    k = dict(read_state(p).get("kafka") or {})
    members = nodes(p, int(k.get("brokers") or 1))
    node = members[node_id - 1]
    running = node_pid(p, node)
    if running:
        return running
    return spawn_node(p, node, java or require_binary("java"))


async def wait_ready(p: Paths, k: dict[str, Any], timeout: float) -> None:
    """Until every node's process is alive and the cluster reports all its brokers."""
    deadline = time.monotonic() + timeout
    members = nodes(p, int(k.get("brokers") or 1))
    pids = [int(n["pid"]) for n in k["nodes"]] if k.get("nodes") else [int(k["pid"])]
    while time.monotonic() < deadline:
        for pid, node in zip(pids, members, strict=True):
            reap(pid)
            if not process_alive(pid):
                raise StackError(
                    f"Kafka node {node.node_id} exited during start-up; see {node.server_log} and {node.stdout}\n"
                    + tail(node.server_log, 25) + "\n" + tail(node.stdout, 10)
                )
        if await cluster_brokers(internal_options(p, k), timeout=3.0) >= len(members):
            return
        await asyncio.sleep(0.5)
    raise StackError(
        f"the Kafka broker(s) did not answer on {k['bootstrap_servers']} within {timeout:.0f}s; "
        f"see {members[0].server_log}\n" + tail(members[0].server_log, 25)
    )


async def cluster_brokers(options: dict[str, Any], timeout: float = 5.0) -> int:
    """How many brokers the cluster reports (0: it does not answer)."""
    from aiokafka.admin import AIOKafkaAdminClient

    hosts = _hosts(options["bootstrap_servers"])
    for h in hosts:
        if await _tcp_open(h, min(timeout, 2.0)):
            break
    else:
        return 0
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            cluster = await admin.describe_cluster()
            return len(cluster.get("brokers") or [])
    except Exception:  # noqa: BLE001 - any failure means "not (yet) answering"
        return 0
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


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
