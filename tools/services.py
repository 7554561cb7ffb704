"""Run the platform's services as local processes (for the demo, the README and the tests).

    python -m tools.services start [NAME ...]   # default: every service; idempotent
    python -m tools.services stop [NAME ...]
    python -m tools.services status

Each service runs as `python -m services.<name>` with the local stack's connection settings,
logs (JSON, personal data masked) to `.local/logs/<name>.log`, and its pid in `.local/run/<name>.pid`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tools.connection import database_url, kafka_bootstrap

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("enrollment", "settlement", "catastrophic", "assistance", "audit")
RUN_DIR = ROOT / ".local" / "run"
LOG_DIR = ROOT / ".local" / "logs"


def available() -> list[str]:
    return [s for s in SERVICES if (ROOT / "services" / s / "__main__.py").exists()]


def _pid_file(name: str) -> Path:
    return RUN_DIR / f"{name}.pid"


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


def start(name: str, env: dict[str, str] | None = None) -> int:
    """Start a service unless it runs; returns its pid."""
    if (pid := pid_of(name)) is not None:
        return pid
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap(), "DATABASE_URL": database_url(),
                **(env or {})}
    with (LOG_DIR / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=full_env,
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    _pid_file(name).write_text(str(proc.pid))
    return proc.pid


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
