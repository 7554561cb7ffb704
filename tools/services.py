"""Run the platform's services as local processes (for the demo, the README and the tests).

    python -m tools.services start [NAME ...]   # default: every service; idempotent
    python -m tools.services stop [NAME ...]
    python -m tools.services status

Each service runs as `python -m services.<name>` with the local stack's connection settings and
its pid in `.local/run/<name>.pid`. It writes its own log, JSON with personal data masked, to
`.local/logs/<name>.log` (`LOG_FILE`), rotated: at most `LOG_BACKUPS` + 1 files of `LOG_MAX_BYTES`
(3 × 20 MiB by default). Its raw stdout/stderr (FastStream's access log; a failure before logging is
set up, an interpreter crash) go to `.local/logs/<name>.out`, rotated the same way by `tools.logpipe`.
With `MEDSETTLE_LOCAL` set, `.local` means that directory (see `tools.stack_common.paths`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.logging import LogSettings
from tools import logpipe
from tools.connection import database_url, kafka_bootstrap
from tools.stack_common import paths

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("enrollment", "settlement", "catastrophic", "assistance", "audit")


def available() -> list[str]:
    return [s for s in SERVICES if (ROOT / "services" / s / "__main__.py").exists()]


def _pid_file(name: str) -> Path:
    return paths().run / f"{name}.pid"


def pid_of(name: str) -> int | None:
    try:
        pid = int(_pid_file(name).read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    try:  # a zombie left by a killed child is not running
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return None
    except OSError:
        pass
    return pid


def spawn(name: str, env: dict[str, str], log: Path, detach: bool = True) -> subprocess.Popen[bytes]:
    """`python -m services.<name>` with `env` added, logging to `log` (rotated, `LOG_FILE`) and its raw
    stdout/stderr to `log` with the suffix `.out` (rotated by tools.logpipe). `detach`: in its own
    session, so it outlives the terminal that started it."""
    full_env = {**os.environ, **env, "LOG_FILE": str(log)}
    with logpipe.output_to(log.with_suffix(".out"), LogSettings.of(full_env)) as out:
        return subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=full_env,
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=detach)


def start(name: str, env: dict[str, str] | None = None) -> int:
    """Start a service unless it runs; returns its pid."""
    if (pid := pid_of(name)) is not None:
        return pid
    p = paths()
    p.run.mkdir(parents=True, exist_ok=True)
    proc = spawn(name, {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap(), "DATABASE_URL": database_url(), **(env or {})},
                 p.logs / f"{name}.log")
    _pid_file(name).write_text(str(proc.pid))
    return proc.pid


def running() -> dict[str, int]:
    """The services started here that are running, with their pids."""
    return {name: pid for name in SERVICES if (pid := pid_of(name)) is not None}


def stop(name: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> bool:
    """Stop a service (SIGTERM, then SIGKILL after `timeout`); returns whether it was running."""
    pid = pid_of(name)
    if pid is None:
        _pid_file(name).unlink(missing_ok=True)
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_of(name) is not None and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if pid_of(name) is not None:
        os.kill(pid, signal.SIGKILL)
        while pid_of(name) is not None:
            _reap(pid)
            time.sleep(0.05)
    _pid_file(name).unlink(missing_ok=True)
    return True


def kill(name: str) -> bool:
    """SIGKILL a service at once (crash tests)."""
    return stop(name, signal.SIGKILL, timeout=5.0)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.services", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["start", "stop", "status"])
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    names = args.names or available()
    for name in names:
        if args.command == "start":
            print(f"{name}: running, pid {start(name)} (log .local/logs/{name}.log)")
        elif args.command == "stop":
            print(f"{name}: {'stopped' if stop(name) else 'was not running'}")
        else:
            pid = pid_of(name)
            print(f"{name}: {'running, pid %d' % pid if pid else 'not running'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
