"""py-spy on a benchmark's service processes: where their samples went while the load passed.

    spy = start_profile("settlement", {"settlement": proc})
    ...
    stop_profile(spy)   # prints the share of samples per library (or file of ours)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_profile(service: str, procs: dict[str, subprocess.Popen[bytes]]) -> tuple[subprocess.Popen[bytes], Path]:
    """py-spy (`PY_SPY`, else the one in this virtualenv, else on PATH) sampling `service` while the discharges pass (collapsed stacks)."""
    beside = Path(sys.executable).with_name("py-spy")
    spy = os.environ.get("PY_SPY") or (str(beside) if beside.exists() else shutil.which("py-spy"))
    if spy is None:
        sys.exit("--profile needs py-spy (in the dev extra: tools/bootstrap.sh; or PY_SPY=/path/to/py-spy)")
    out = Path(f"/tmp/bench-{service}.pyspy.txt")
    return subprocess.Popen([spy, "record", "--pid", str(procs[service].pid), "--rate", "50", "--nonblocking",
                             "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


def place(path: str) -> str:
    """A frame's file as a library (`asyncpg`, `stdlib:json`) or a path of this project."""
    if "site-packages/" in path:
        return path.split("site-packages/")[-1].split("/")[0]
    if "/lib/python3" in path:
        return "stdlib:" + path.split("/lib/python3")[-1].split("/", 1)[-1].split("/")[0].removesuffix(".py")
    return path.removeprefix(str(ROOT) + "/")


def stop_profile(spy: tuple[subprocess.Popen[bytes], Path], top: int = 15) -> None:
    """Stop py-spy and print where the service's samples went: by the module of the frame they were
    in (self), and the share of samples under a few functions (inclusive)."""
    proc, out = spy
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    stacks = [(line.rsplit(" ", 1)[0].split(";"), int(line.rsplit(" ", 1)[1]))
              for line in out.read_text().splitlines() if line.strip()]
    total = sum(n for _, n in stacks) or 1
    by_self: dict[str, int] = {}
    for frames, n in stacks:
        where = place(frames[-1].split("(")[-1].split(":")[0].rstrip(")"))  # the innermost frame's
        by_self[where] = by_self.get(where, 0) + n
    print(f"py-spy, {total:,} samples of {out.name.split('.')[0].removeprefix('bench-')} while the discharges passed: "
          "the innermost frame's library (or file of ours)")
    for where, n in sorted(by_self.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {n / total:6.1%}  {where}")
