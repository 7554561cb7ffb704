"""Hostile input against the whole platform, as real processes on the local stack.

    .venv/bin/python bench/hostile.py --fuzz 10000 [--seed 1] [--valid 200] [--details]

In a namespace of its own (topic prefix, fresh databases) it starts the five services as OS
processes, enrolls a small population and its hospitals, publishes every case of the hostile
catalogue on every consumed topic (`tests/hostile/catalogue.py`) and N fuzzed records
(`tests/hostile/fuzz.py`) with a raw producer, with the valid discharges published in the middle
through the hospital CLI, waits until no consumer group lags (or nothing moves any more), and
prints ONE summary line: valid discharges with exactly one statement, hostile records
dead-lettered / rejected / accepted / unaccounted, consumer groups with lag, service processes
that exited or were restarted, and log growth during the run and after input stopped.

It exits 1 if an acceptance point fails (every valid discharge exactly one statement, nothing
unaccounted or dead-lettered twice, every catalogue case as specified, no lag, no process exit,
bounded log growth); `--details` prints why on stderr. Progress goes to stderr. Kafka and
PostgreSQL: `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` if set, else the local stack (started if
needed, as `bench/pipeline.py` does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hostile.scenario import Options, run  # noqa: E402
from tools import stack  # noqa: E402
from tools.stack.connection import local_access  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fuzz", type=int, default=10_000, help="fuzzed records (default 10,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--valid", type=int, default=200, help="valid discharges published in the middle")
    ap.add_argument("--stall", type=float, default=90.0, help="seconds without progress before giving up waiting")
    ap.add_argument("--cases", default=None, metavar="REGEX",
                    help="only the catalogue cases whose <topic>/<name> matches (default: all)")
    ap.add_argument("--details", action="store_true", help="print why it failed on stderr")
    args = ap.parse_args()
    bootstrap, server = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if not bootstrap or not server:
        settings = stack.start()
        bootstrap, server = settings["KAFKA_BOOTSTRAP_SERVERS"], settings["DATABASE_URL"]
        os.environ["PGPASSFILE"] = settings["PGPASSFILE"]  # the admin's password file (a path), for the namespace
    t0 = time.monotonic()
    report = asyncio.run(run(local_access("admin", bootstrap), server, Options(fuzz=args.fuzz, seed=args.seed, valid=args.valid,
                                                        stall_s=args.stall, cases=args.cases)))
    if args.details:
        for line in report.details():
            print(line, file=sys.stderr)
    print(f"{report.summary()} ({time.monotonic() - t0:.0f}s)")
    return 1 if report.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
