"""The local development stack: one Kafka 4.1 broker (KRaft) and one PostgreSQL 15 cluster.

    ./medsettle stack start    # idempotent; first run downloads the Kafka jars with Maven
    ./medsettle stack status   # broker, topics (partitions, offsets), groups (lag), databases
    ./medsettle stack stop     # pg_ctl stop -m fast; SIGTERM the broker (SIGKILL after 30 s)
    ./medsettle stack reset    # stop, then wipe .local/kafka/data and .local/pg (refused while in use)
    ./medsettle stack reset --stop-services   # stop the services of tools.stack.services first
    ./medsettle stack env      # `export KAFKA_BOOTSTRAP_SERVERS=... DATABASE_URL=... PGPASSFILE=...`
    ./medsettle stack topics   # only create the registry topics on $KAFKA_BOOTSTRAP_SERVERS

(`python -m tools.stack ...` is the same command group.) This package is the stack and what the
tools need around it: `common` (paths, state file, ports, processes), `kafka` (the broker, topics),
`pg` (the cluster, its roles and databases), `pg_secrets` (the generated PostgreSQL passwords),
`logpipe` (the rotating writer of their output), `services` (the platform's services as
processes), `connection` (where clients find the stack), `lag` (consumer groups: lag and active
members).

Everything lives in the git-ignored `.local/`: `kafka/libs` (jars), `kafka/data`, `kafka/logs`
(`server.log`: the broker's log), `pg/data`, `pg/log/postgres.log`, `secrets/` (0700: the
generated passwords, one 0600 file per principal, see `tools.stack.pg_secrets`), and the state file
`stack.json` with the chosen ports that clients read (`connection_settings()`). Both listen on
127.0.0.1 only; ports default to 19092 (broker) / 19093 (controller) / 15432 (PostgreSQL) and
move to the next free ones when those are taken. `MEDSETTLE_LOCAL=/some/dir` keeps a separate
stack's files there instead (a throwaway stack; the jars are downloaded again for it).

Logs are bounded: the broker's log4j2 files roll (`infra/kafka/log4j2.properties`), and its stdout
(`kafka/logs/kafka.out`) and PostgreSQL's log go through the rotating writer `tools.stack.logpipe`
(`LOG_MAX_BYTES` per file, `LOG_BACKUPS` older files: 3 × 20 MiB by default).

`reset` refuses (exit 3, nothing wiped) while anything still uses the stack: a service started by
`tools.stack.services` that is running, or a consumer group on the broker with active members whose name
is `medsettle.…` or `<prefix>medsettle.…` (a service run some other way, a test, a benchmark).
It names them; `--stop-services` stops the `tools.stack.services` ones first, then resets.

The broker takes TLS + SASL/SCRAM clients only: at start the stack generates its secrets
(`secrets`: a CA, the broker's certificate, a password per principal, in `.local/secrets/`), sets
the principals' credentials and grants their ACLs (`principals`, derived from the topic registry;
`kafka_admin` speaks the requests). `namespaces` gives a test namespace its topics and ACLs.

Connection settings of every service (and of the test fixtures):

* `KAFKA_BOOTSTRAP_SERVERS` - e.g. `127.0.0.1:19092`; who a client is: `KAFKA_USERNAME`,
  `KAFKA_PASSWORD` (or `KAFKA_PASSWORD_FILE`), `KAFKA_CA_FILE` (`runtime.kafka_access`).
* `DATABASE_URL` - a PostgreSQL **server** URL without a database and without a password, as the
  role of whoever uses it: `postgresql://medsettle_admin@127.0.0.1:15432` for the stack owner
  (tools, tests), `postgresql://medsettle_enrollment@127.0.0.1:15432` for the enrollment service.
  Each service appends its own database `medsettle_<service>` (`database_dsn(DATABASE_URL,
  "medsettle_enrollment")`).
* `PGPASSFILE` - the password file (libpq's format): the stack owner's
  `.local/secrets/postgres/pgpass`, a service's `.local/secrets/postgres/medsettle_<service>.pgpass`.
  `stack env` prints its path, never a password.

Topics come from `contracts.topics.TOPICS` (plus every `<topic>.dlt`); the databases are
`medsettle_enrollment`, `medsettle_settlement`, `medsettle_catastrophic`, `medsettle_assistance`,
`medsettle_audit`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from runtime.kafka_access import KafkaAccess
from tools.stack import kafka, pg, services
from tools.stack.common import (
    HOST,
    PG_LOGIN_ROLES,
    Echo,
    Paths,
    StackError,
    paths,
    pg_bin_dir,
    read_state,
    require_binary,
    run_sync,
    stack_lock,
    write_state,
)
from tools.stack.connection import START_HINT, database_url, kafka_access, local_access, passfile
from tools.stack.pg import database_dsn
from tools.stack.pg_secrets import PgSecrets
from tools.stack.principals import STACK_PRINCIPALS
from tools.stack.secrets import StackSecrets

__all__ = [
    "ResetBlockers",
    "ResetRefused",
    "StackError",
    "connection_settings",
    "create_databases",
    "create_topics",
    "database_dsn",
    "is_platform_group",
    "is_running",
    "reset",
    "reset_blockers",
    "start",
    "status",
    "stop",
]

START_TIMEOUT = 120.0


def _echo_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _prerequisites(p: Paths, want_kafka: bool, want_pg: bool) -> str | None:
    """Fail fast, before touching anything, naming the Debian package to install."""
    java = require_binary("java") if want_kafka else None
    if want_kafka and not kafka.jars_ready(p):
        require_binary("mvn")
    if want_pg:
        pg_bin_dir()
    return java


def _kafka_state_from_properties(p: Paths) -> dict[str, Any]:
    """Reconstruct ports from the rendered server.properties (state file lost, broker running)."""
    out: dict[str, Any] = {}
    try:
        for line in p.kafka_properties.read_text().splitlines():
            if line.startswith("listeners="):
                for listener in line.split("=", 1)[1].split(","):
                    name, _, addr = listener.partition("://")
                    port = int(addr.rsplit(":", 1)[1])
                    if name == "CLIENT":
                        out["broker_port"] = port
                        out["bootstrap_servers"] = f"{HOST}:{port}"
                    elif name == "INTERNAL":
                        out["internal_port"] = port
                        out["internal_servers"] = f"{HOST}:{port}"
                    elif name == "CONTROLLER":
                        out["controller_port"] = port
    except (OSError, ValueError, IndexError):
        pass
    return out


def broker_count(brokers: int | None = None) -> int:
    """How many Kafka brokers to run: `brokers`, else $MEDSETTLE_KAFKA_BROKERS, else what the
    existing data was made for, else 1 (`kafka.BROKER_COUNTS`)."""
    p = paths()
    if brokers is None:
        env = os.environ.get("MEDSETTLE_KAFKA_BROKERS", "").strip()
        brokers = int(env) if env.isdigit() else (kafka.formatted_brokers(p) or 1)
    if brokers not in kafka.BROKER_COUNTS:
        raise StackError(f"the local stack runs 1 or 3 Kafka brokers, not {brokers}")
    return brokers


def start(
    *, kafka_enabled: bool = True, postgres_enabled: bool = True, timeout: float = START_TIMEOUT,
    echo: Echo = _echo_stderr, brokers: int | None = None,
) -> dict[str, str]:
    """Start what is not running (a running stack is left as is), create topics and databases.
    `brokers`: 1 or 3 Kafka brokers (`broker_count`).

    Returns `connection_settings()`. Raises StackError with a clear message on any problem."""
    p = paths()
    count = broker_count(brokers)
    java = _prerequisites(p, kafka_enabled, postgres_enabled)
    with stack_lock(p):
        state = read_state(p)
        launched = False
        if kafka_enabled:
            made = StackSecrets(p.local).ensure(STACK_PRINCIPALS)
            if made:
                echo(f"generated in {p.secrets}: {', '.join(made)}")
            running = kafka.broker_pids(p)
            k_prev = dict(state.get("kafka") or {})
            multi = int(k_prev.get("brokers") or 1) > 1
            if running and not multi and "internal_servers" not in _kafka_state_from_properties(p):
                echo("the running Kafka broker predates authentication: restarting it with TLS, SCRAM and ACLs")
                kafka.stop(p, echo=echo)
                running = []
            if running and int(k_prev.get("brokers") or 1) != count:
                raise StackError(f"{len(running)} Kafka broker(s) of this stack are running, not {count}: "
                                 "./medsettle stack stop first (then reset to change the broker count)")
            if running and len(running) < count:  # a node died (or was killed): start it again
                assert java is not None
                for node in kafka.nodes(p, count):
                    if kafka.node_pid(p, node) is None:
                        pid = kafka.restart_node(p, node.node_id, java)
                        k_prev["nodes"][node.node_id - 1]["pid"] = pid
                        echo(f"restarted Kafka node {node.node_id} (pid {pid})")
                state["kafka"] = k_prev
            elif running:
                k = k_prev
                if not multi:
                    k.update(_kafka_state_from_properties(p))
                k["pid"] = running[0]
                state["kafka"] = k
                echo(f"Kafka broker{'s' if multi else ''} already running on {k.get('bootstrap_servers')}")
            else:
                kafka.ensure_jars(p, echo=echo)
                assert java is not None  # checked by _prerequisites when Kafka is wanted
                state["kafka"] = kafka.launch(p, state, java, count)
                launched = True
                what = "Kafka broker" if count == 1 else f"{count} Kafka brokers (KRaft, 3 voters)"
                echo(f"starting {what} on {state['kafka']['bootstrap_servers']} "
                     f"(log: {state['kafka']['log']}) ...")
            write_state(state, p)
        if postgres_enabled:
            state["postgres"] = pg.start(p, state, echo=echo)
            write_state(state, p)
            secrets = PgSecrets.of(p)
            created = run_sync(lambda: pg.provision(state["postgres"]["url"], secrets.passwords(PG_LOGIN_ROLES),
                                                    passfile=secrets.passfile()))
            fresh = [n for n, s in created.items() if s == "created"]
            if fresh:
                echo(f"created databases: {', '.join(fresh)}")
        if kafka_enabled:
            k = state["kafka"]
            t0 = time.monotonic()
            run_sync(lambda: kafka.wait_ready(p, k, timeout))
            if launched:
                echo(f"Kafka broker answered after {time.monotonic() - t0:.1f}s")
            admin = run_sync(lambda: _secure(p, k))
            topics = run_sync(lambda: kafka.ensure_topics(admin))
            fresh = [n for n, s in topics.items() if s == "created"]
            if fresh:
                echo(f"created {len(fresh)} topics")
            for name, s in topics.items():
                if s not in ("created", "exists"):
                    echo(f"warning: topic {name}: {s}")
        write_state(state, p)
    settings = {}
    if kafka_enabled:
        settings["KAFKA_BOOTSTRAP_SERVERS"] = state["kafka"]["bootstrap_servers"]
    if postgres_enabled:
        settings.update(DATABASE_URL=state["postgres"]["url"], PGPASSFILE=state["postgres"]["passfile"])
    return settings


async def _secure(p: Paths, k: dict[str, Any]) -> KafkaAccess:
    """`secure` for the local stack; returns the admin's access."""
    return await secure(StackSecrets(p.local), k["bootstrap_servers"], kafka.internal_options(p, k))


async def secure(secrets: StackSecrets, bootstrap: str, internal: dict[str, Any]) -> KafkaAccess:
    """Set the SCRAM credentials of admin, the services and intake from the secrets' password files
    (as the broker itself, over mutual TLS on its INTERNAL listener, `internal`: no user exists
    before), then, as admin, the services' ACLs (`tools.stack.principals`). Idempotent; returns the
    admin's access."""
    from tools.stack import principals
    from tools.stack.kafka_admin import KafkaAdmin

    passwords = {name: secrets.password(name).get_secret_value() for name in STACK_PRINCIPALS}
    admin = secrets.access(bootstrap, principals.ADMIN)
    async with KafkaAdmin(**internal) as as_broker:
        await as_broker.set_passwords(passwords)
        await as_broker.wait_user(admin)
    async with KafkaAdmin(admin) as as_admin:
        await principals.grant(as_admin, principals.service_acls() | principals.console_acls())
    return admin


def stop(*, kafka_enabled: bool = True, postgres_enabled: bool = True, echo: Echo = _echo_stderr) -> dict[str, bool]:
    """Stop this checkout's PostgreSQL (fast) and Kafka broker. Returns what was running.

    Only processes started from this checkout are touched (matched by their config/data paths)."""
    p = paths()
    was_pg = was_kafka = False
    with stack_lock(p):
        state = read_state(p)
        if postgres_enabled and _pg_available():
            was_pg = pg.stop(p, state, echo=echo)
        if kafka_enabled:
            was_kafka = kafka.stop(p, echo=echo)
            k = state.get("kafka")
            if k:
                k.pop("pid", None)
                write_state(state, p)
    return {"kafka": was_kafka, "postgres": was_pg}


GROUPS_SETTLE_TIMEOUT = 30.0
"""How long a reset with --stop-services waits for the stopped services' consumer groups to empty."""


class ResetRefused(StackError):
    """Something still uses the stack; nothing was wiped."""


def is_platform_group(group: str) -> bool:
    """A consumer group of the platform: `medsettle.…`, or `<prefix>medsettle.…` in a namespace."""
    return "medsettle." in group


@dataclass(frozen=True)
class ResetBlockers:
    """What a reset would pull the data from under."""

    services: dict[str, int] = field(default_factory=dict)
    """Services started by tools.stack.services that are running: name -> pid."""
    groups: dict[str, int] = field(default_factory=dict)
    """Platform consumer groups with active members on the stack's broker: group -> members."""

    def __bool__(self) -> bool:
        return bool(self.services or self.groups)

    def describe(self) -> str:
        found = []
        if self.services:
            found.append("services running: " + ", ".join(f"{n} (pid {pid})" for n, pid in self.services.items()))
        if self.groups:
            found.append("consumer groups with active members: "
                         + ", ".join(f"{g} ({m} active)" for g, m in self.groups.items()))
        return "; ".join(found)

    def advice(self) -> str:
        if self.services:
            return "Stop them first (./medsettle services stop), or reset with --stop-services"
        return "Stop those consumers first (a service run by hand, a test, a benchmark)"


def reset_blockers(p: Paths | None = None) -> ResetBlockers:
    """The running tools.stack.services services and the active platform groups on this stack's broker
    (none if the broker is not running: then nothing can be consuming from it)."""
    p = p or paths()
    groups: dict[str, int] = {}
    bootstrap = (read_state(p).get("kafka") or {}).get("bootstrap_servers")
    if bootstrap and kafka.broker_pids(p):
        try:
            from tools.stack.lag import active_groups

            admin = local_access("admin", bootstrap)
            groups = run_sync(lambda: asyncio.wait_for(active_groups(admin, is_platform_group), 30.0))
        except Exception as exc:
            raise ResetRefused(f"cannot list the consumer groups on {bootstrap} ({exc!r}); stop the stack first "
                               "(./medsettle stack stop): a stopped broker has no consumers") from exc
    return ResetBlockers(services.running(), groups)


def _stop_services(running: dict[str, int], echo: Echo) -> ResetBlockers:
    """Stop the tools.stack.services services, then wait (a while) for their consumer groups to empty."""
    for name in running:
        services.stop(name)
        echo(f"stopped {name}")
    deadline = time.monotonic() + GROUPS_SETTLE_TIMEOUT
    while (blockers := reset_blockers()).groups and time.monotonic() < deadline:
        time.sleep(1.0)
    return blockers


def reset(*, stop_services: bool = False, echo: Echo = _echo_stderr) -> None:
    """Stop, then wipe .local/kafka/data, .local/kafka/logs and the PostgreSQL cluster (jars stay).

    Raises ResetRefused, wiping nothing, while a service or a platform consumer group is using the
    stack (`reset_blockers`); with `stop_services`, the tools.stack.services services are stopped first."""
    p = paths()
    blockers = reset_blockers(p)
    if blockers.services and stop_services:
        blockers = _stop_services(blockers.services, echo)
    if blockers:
        raise ResetRefused(f"refused, nothing wiped: {blockers.describe()}. {blockers.advice()}")
    stop(echo=echo)
    with stack_lock(p):
        state = read_state(p)
        # the hospitals' credentials the demo kept name users of the wiped broker: gone with it
        for d in (p.kafka_data, p.kafka_logs, p.kafka_properties, *p.kafka.glob("node*"),
                  StackSecrets(p.local).hospitals):
            if d.is_dir():
                shutil.rmtree(d)
            elif d.exists():
                d.unlink()
        removed = pg.wipe(p, state)
        state.pop("kafka", None)
        state.pop("postgres", None)
        write_state(state, p)
    echo(f"wiped {p.kafka_data}, {p.kafka_logs}, " + ", ".join(str(r) for r in removed or [p.pg_local]))


def _pg_available() -> bool:
    try:
        pg_bin_dir()
        return True
    except StackError:
        return False


def is_running() -> dict[str, bool]:
    p = paths()
    state = read_state(p)
    return {"kafka": bool(kafka.broker_pids(p)), "postgres": _pg_available() and pg.is_running(p, state)}


def connection_settings() -> dict[str, str]:
    """`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL` (server URL as the stack's admin, no database, no
    password) and `PGPASSFILE` (the path of the admin's password file) of the local stack, read from
    `.local/stack.json`. Raises StackError when the stack was never started."""
    state = read_state()
    k, d = state.get("kafka") or {}, state.get("postgres") or {}
    if not k.get("bootstrap_servers") or not d.get("url") or not d.get("passfile"):
        raise StackError(f"the local stack has not been started: {START_HINT}")
    return {"KAFKA_BOOTSTRAP_SERVERS": k["bootstrap_servers"], "DATABASE_URL": d["url"], "PGPASSFILE": d["passfile"]}


def create_topics(access: KafkaAccess | None = None, wait: float = 60.0, prefix: str = "") -> dict[str, str]:
    """Create the registry topics (idempotent) as `access` (an admin), else as the tools' admin
    (`connection.kafka_access()`: the environment's, else the local stack's); waits up to `wait`
    seconds for the broker to answer."""
    admin = access or kafka_access()

    async def go() -> dict[str, str]:
        deadline = time.monotonic() + wait
        while not await kafka.broker_answers(admin.options(), timeout=5.0):
            if time.monotonic() > deadline:
                raise StackError(f"no Kafka broker answers on {admin.bootstrap_servers} as {admin.username} "
                                 f"(waited {wait:.0f}s)")
            await asyncio.sleep(1.0)
        return await kafka.ensure_topics(admin, prefix=prefix)

    return run_sync(go)


def create_databases(server_url: str | None = None, secrets: PgSecrets | None = None) -> dict[str, str]:
    """The roles (passwords from `secrets`, else the local stack's) and the five service databases on
    the server of the admin URL `server_url` (else $DATABASE_URL, else the local stack); the admin's
    password from `passfile()`. Idempotent (`pg.provision`)."""
    server_url = server_url or database_url()
    secrets = secrets or PgSecrets.of(paths())
    passwords = secrets.passwords(PG_LOGIN_ROLES)  # the admin is whoever `server_url` names
    return run_sync(lambda: pg.provision(server_url, passwords, passfile=passfile()))


# --------------------------------------------------------------------------- status


def status(*, console: Any = None) -> dict[str, Any]:
    """Print (rich tables) and return the stack's state."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # CI logs: do not squeeze paths into 80 columns
            console = Console(width=max(console.width, 140))
    p = paths()
    state = read_state(p)
    up = is_running()
    k, d = state.get("kafka") or {}, state.get("postgres") or {}
    report: dict[str, Any] = {"running": up}

    overview = Table(title="medsettle local stack", show_lines=False)
    for col in ("component", "state", "address", "log / data"):
        overview.add_column(col, overflow="fold")
    kafka_addr = k.get("bootstrap_servers") or _kafka_state_from_properties(p).get("bootstrap_servers", "-")
    if k.get("nodes"):  # three brokers: one row per node (each a broker and a controller voter)
        for node, n in zip(kafka.nodes(p, len(k["nodes"])), k["nodes"], strict=True):
            alive = kafka.node_pid(p, node) is not None
            report.setdefault("brokers", {})[n["node_id"]] = alive
            overview.add_row(
                f"Kafka 4.1 (KRaft) node {n['node_id']}", "[green]up[/]" if alive else "[red]down[/]",
                f"{HOST}:{n['broker_port']}", n["log"],
            )
    else:
        overview.add_row(
            "Kafka 4.1 (KRaft)", "[green]up[/]" if up["kafka"] else "[red]down[/]", kafka_addr,
            k.get("log") or str(p.kafka_server_log),
        )
    overview.add_row(
        "PostgreSQL", "[green]up[/]" if up["postgres"] else "[red]down[/]", d.get("url", "-"),
        d.get("data_dir") or str(p.pg_local / "data"),
    )
    console.print(overview)

    if up["kafka"]:
        try:
            info = run_sync(lambda: kafka.inspect(local_access("admin", kafka_addr)))
        except Exception as exc:  # noqa: BLE001 - status must not crash on a half-up broker
            console.print(f"[yellow]broker does not answer yet: {exc!r}[/]")
        else:
            report.update(info)
            t = Table(title="topics")
            for col in ("topic", "partitions", "end offset", "messages"):
                t.add_column(col, justify="left" if col == "topic" else "right")
            for row in info["topics"]:
                t.add_row(row["topic"], str(row["partitions"]), str(row["end_offset"]), str(row["messages"]))
            console.print(t)
            g = Table(title="consumer groups")
            for col in ("group", "topic", "committed", "end", "lag"):
                g.add_column(col, justify="left" if col in ("group", "topic") else "right")
            for row in info["groups"]:
                g.add_row(row["group"], row["topic"], str(row["committed"]), str(row["end"]), str(row["lag"]))
            if not info["groups"]:
                g.add_row("(none)", "", "", "", "")
            console.print(g)

    if up["postgres"] and d.get("url"):
        try:
            info = run_sync(lambda: pg.inspect(d["url"], d.get("passfile")))
        except Exception as exc:  # noqa: BLE001
            console.print(f"[yellow]PostgreSQL does not answer: {exc!r}[/]")
        else:
            report.update(info)
            t = Table(title="databases")
            t.add_column("database")
            t.add_column("size", justify="right")
            for row in info["databases"]:
                t.add_row(row["database"], row["size"])
            console.print(t)
            if info["enrollment"]:
                e = Table(title="enrollment (medsettle_enrollment)")
                e.add_column("registered")
                e.add_column("count", justify="right")
                for table, label in (("person", "persons"), ("provider", "providers")):
                    if table in info["enrollment"]:
                        e.add_row(label, str(info["enrollment"][table]))
                console.print(e)
    return report
