"""Shared plumbing of the local stack: paths, the state file, ports, prerequisites, processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from runtime.settings import OPERATOR_ROLE, SERVICES, database_name, database_role

T = TypeVar("T")

HOST = "127.0.0.1"
DEFAULT_BROKER_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
DEFAULT_INTERNAL_PORT = 19094
DEFAULT_PG_PORT = 15432
PG_ADMIN = "medsettle_admin"
"""The local cluster's superuser (initdb's bootstrap user): the stack itself and the tests' fixtures only."""

SERVICE_DATABASES: tuple[str, ...] = tuple(database_name(s) for s in SERVICES)
"""`medsettle_enrollment` … `medsettle_audit` (the naming rule is `runtime.settings.database_name`)."""
SERVICE_ROLES: tuple[str, ...] = tuple(database_role(s) for s in SERVICES)
"""`medsettle_enrollment` … `medsettle_audit`: one login role per service (`runtime.settings.database_role`)."""
PG_LOGIN_ROLES: tuple[str, ...] = (*SERVICE_ROLES, OPERATOR_ROLE)
"""The least-privileged login roles `tools.stack.pg.provision` makes: the services' and the operator's."""
PG_ROLES: tuple[str, ...] = (PG_ADMIN, *PG_LOGIN_ROLES)
"""Every role of the local cluster with a generated password (tools.stack.pg_secrets)."""

Echo = Callable[[str], None]
"""Where a stack command reports its progress (`print`, or stderr)."""


class StackError(RuntimeError):
    """A problem the user has to act on; the message says what to do."""


def project_root() -> Path:
    """The repository root: $MEDSETTLE_ROOT, else the directory above tools/, else the cwd."""
    env = os.environ.get("MEDSETTLE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file():
        return here
    return Path.cwd().resolve()


@dataclass(frozen=True)
class Paths:
    """Where one stack keeps its files: the checkout's `.local/`, or `local_dir` ($MEDSETTLE_LOCAL)."""

    root: Path
    local_dir: Path | None = None

    @property
    def local(self) -> Path:
        return self.local_dir or self.root / ".local"

    @property
    def logs(self) -> Path:
        """The services' logs (`<name>.log`, `<name>.out`)."""
        return self.local / "logs"

    @property
    def run(self) -> Path:
        """The services' pid files."""
        return self.local / "run"

    @property
    def state_file(self) -> Path:
        return self.local / "stack.json"

    @property
    def lock_file(self) -> Path:
        return self.local / "stack.lock"

    # Kafka
    @property
    def pom(self) -> Path:
        return self.root / "infra" / "kafka" / "pom.xml"

    @property
    def server_template(self) -> Path:
        return self.root / "infra" / "kafka" / "server.properties.template"

    @property
    def log4j2_config(self) -> Path:
        return self.root / "infra" / "kafka" / "log4j2.properties"

    @property
    def secrets(self) -> Path:
        """The stack's secrets (CA, broker key, passwords): `tools.stack.secrets`."""
        return self.local / "secrets"

    @property
    def kafka(self) -> Path:
        return self.local / "kafka"

    @property
    def kafka_libs(self) -> Path:
        return self.kafka / "libs"

    @property
    def kafka_data(self) -> Path:
        return self.kafka / "data"

    @property
    def kafka_logs(self) -> Path:
        return self.kafka / "logs"

    @property
    def kafka_properties(self) -> Path:
        return self.kafka / "server.properties"

    @property
    def kafka_stdout(self) -> Path:
        return self.kafka_logs / "kafka.out"

    @property
    def kafka_server_log(self) -> Path:
        return self.kafka_logs / "server.log"

    # PostgreSQL
    @property
    def pg_conf_template(self) -> Path:
        return self.root / "infra" / "postgres" / "medsettle.conf.template"

    @property
    def pg_hba_template(self) -> Path:
        return self.root / "infra" / "postgres" / "pg_hba.conf"

    @property
    def pg_local(self) -> Path:
        return self.local / "pg"


def paths() -> Paths:
    """This checkout's stack; `MEDSETTLE_LOCAL=/some/dir` puts a separate stack's files (state, data,
    logs, pid files) there instead of `.local/`, e.g. a throwaway stack in a test."""
    local = os.environ.get("MEDSETTLE_LOCAL")
    return Paths(project_root(), Path(local).resolve() if local else None)


# --------------------------------------------------------------------------- state file


def read_state(p: Paths | None = None) -> dict[str, Any]:
    p = p or paths()
    try:
        state: dict[str, Any] = json.loads(p.state_file.read_text())
        return state
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        return {}


def write_state(state: dict[str, Any], p: Paths | None = None) -> None:
    p = p or paths()
    p.local.mkdir(parents=True, exist_ok=True)
    tmp = p.state_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, p.state_file)


@contextlib.contextmanager
def stack_lock(p: Paths | None = None) -> Iterator[None]:
    """Serialises start/stop/reset of one checkout's stack (e.g. CI plus a pytest session)."""
    p = p or paths()
    p.local.mkdir(parents=True, exist_ok=True)
    with open(p.lock_file, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- ports


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Kafka (Java) and PostgreSQL both listen with SO_REUSEADDR, so TIME_WAIT is no obstacle.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def pick_ports(preferred: list[int], count: int = 1, step: int = 10, attempts: int = 200) -> list[int]:
    """`count` consecutive free ports: the preferred block if free, else the next free block."""
    first = preferred[0]
    candidates = [first] + [first + step * i for i in range(1, attempts)]
    for base in candidates:
        block = list(range(base, base + count))
        if all(0 < p < 65536 and port_is_free(p) for p in block):
            return block
    # last resort: ephemeral ports from the kernel
    out: list[int] = []
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
            out.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return out


# --------------------------------------------------------------------------- prerequisites

INSTALL_HINT = {
    "java": "Java 17+ is missing: install the Debian package `openjdk-17-jre-headless` "
    "(apt-get install -y openjdk-17-jre-headless).",
    "mvn": "Maven is missing (needed once to download the Kafka jars): install the Debian package "
    "`maven` (apt-get install -y maven).",
    "postgres": "PostgreSQL 15 server binaries (initdb, pg_ctl, postgres) are missing: install the "
    "Debian package `postgresql-15` (apt-get install -y postgresql-15), or point "
    "MEDSETTLE_PG_BIN at a directory holding them.",
}


def require_binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise StackError(INSTALL_HINT[name])
    return found


def pg_bin_dir() -> Path:
    candidates: list[Path] = []
    env = os.environ.get("MEDSETTLE_PG_BIN")
    if env:
        candidates.append(Path(env))
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for c in candidates:
        if all((c / b).is_file() and os.access(c / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return c
    raise StackError(INSTALL_HINT["postgres"])


# --------------------------------------------------------------------------- users (PostgreSQL refuses root)


def is_root() -> bool:
    return os.geteuid() == 0


def pg_os_user() -> str | None:
    """The unprivileged account PostgreSQL runs as when we are root (None: run as ourselves)."""
    if not is_root():
        return None
    for name in (os.environ.get("MEDSETTLE_PG_OS_USER") or "", "postgres", "nobody"):
        if not name:
            continue
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise StackError("running as root, but there is no unprivileged user (postgres/nobody) to run PostgreSQL")


def as_user_cmd(cmd: list[str], user: str | None) -> list[str]:
    if user is None:
        return cmd
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", user, "--", *cmd]


def chown_to(path: Path, user: str | None, recursive: bool = False) -> None:
    if user is None:
        return
    pw = pwd.getpwnam(user)
    targets = [path]
    if recursive:
        targets += list(path.rglob("*"))
    for t in targets:
        os.lchown(t, pw.pw_uid, pw.pw_gid)


def user_can_write(path: Path, user: str | None) -> bool:
    """Can `user` reach and write `path` (every ancestor traversable)?"""
    if user is None:
        return os.access(path, os.W_OK | os.X_OK)
    res = subprocess.run(
        as_user_cmd(["test", "-w", str(path), "-a", "-x", str(path)], user),
        cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return res.returncode == 0


# --------------------------------------------------------------------------- processes


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def process_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("State:"):
            return "Z" not in line.split(":", 1)[1]
    return True


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far (Linux /proc), or None (the benchmarks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def process_group_cpu_seconds(name: str) -> float:
    """CPU time (user + system) of every running process whose command name is `name` (PostgreSQL's
    backends, `postgres`; the broker's JVM, `java`), so a benchmark can say what the servers used."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
        except OSError:
            continue
        total += cpu_seconds(int(entry.name)) or 0.0
    return total


def reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(pid)
        if not process_alive(pid):
            return True
        time.sleep(0.2)
    reap(pid)
    return not process_alive(pid)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------- asyncio from sync code


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coro(factory))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _as_coro(factory)).result()


async def _as_coro(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()
