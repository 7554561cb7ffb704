"""A rotating writer: copies its standard input, line by line, into a size-capped set of files.

    some-process 2>&1 | python -m tools.stack.logpipe FILE [--max-bytes N] [--backups N]

For the processes the local stack starts whose output cannot rotate itself: the PostgreSQL server
(its own collector cannot bound the total size, see `tools/stack/pg.py`), the Kafka broker's
stdout, and the raw stdout/stderr of the services (FastStream's access log, a failure before
logging was set up, an interpreter crash). The files are those of
`runtime.logging.rotating_handler` (`FILE`, `FILE.1` … `FILE.<backups>`, none over `--max-bytes`);
identity numbers are masked as in every other log. It exits when the writers close the pipe.

`output_to(path)` starts one and gives the pipe to hand to a child as its stdout and stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from runtime.logging import LogSettings, mask_identity_numbers, rotating_handler
from tools.stack.common import project_root

LINE_LIMIT = 64 * 1024
"""A longer line is written in pieces of this size."""


def copy(source: Iterable[bytes], handler: logging.Handler) -> int:
    """Write every line of `source` through `handler` (masked); returns the number of lines."""
    logger = logging.Logger("logpipe")  # noqa: LOG001 - private to this copy, not registered globally
    logger.addHandler(handler)
    count = 0
    for raw in source:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        logger.info("%s", mask_identity_numbers(line))
        count += 1
    handler.close()
    return count


def spawn(path: Path, options: LogSettings | None = None) -> subprocess.Popen[bytes]:
    """Start a writer for `path` (own session: it outlives whoever started it, ends at end of input)."""
    options = options or LogSettings()
    path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "tools.stack.logpipe", str(path), "--max-bytes", str(options.log_max_bytes),
         "--backups", str(options.log_backups)],
        cwd=project_root(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )


@contextlib.contextmanager
def output_to(path: Path, options: LogSettings | None = None) -> Iterator[IO[bytes]]:
    """The write end of a new writer's pipe into `path`; this process's copy is closed on exit, so
    the writer ends when the child (and whatever inherited the pipe from it) has ended."""
    writer = spawn(path, options)
    assert writer.stdin is not None
    try:
        yield writer.stdin
    finally:
        writer.stdin.close()


def main(argv: Sequence[str] | None = None) -> int:
    defaults = LogSettings()
    ap = argparse.ArgumentParser(prog="python -m tools.stack.logpipe", description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--max-bytes", type=int, default=defaults.log_max_bytes, help="per file (env LOG_MAX_BYTES)")
    ap.add_argument("--backups", type=int, default=defaults.log_backups, help="older files kept (env LOG_BACKUPS)")
    args = ap.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGHUP):  # a closed terminal must not cut the writers' output off
        signal.signal(sig, signal.SIG_IGN)
    handler = rotating_handler(args.file, args.max_bytes, args.backups)
    handler.setFormatter(logging.Formatter("%(message)s"))
    copy(iter(lambda: sys.stdin.buffer.readline(LINE_LIMIT), b""), handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
