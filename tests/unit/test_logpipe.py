"""The rotating writer that bounds the output of PostgreSQL, Kafka's stdout and the services' raw
stderr: more input than the cap leaves at most the configured bytes, identity numbers masked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtime.logging import rotating_handler
from tools.stack.logpipe import copy

ROOT = Path(__file__).resolve().parents[2]


def _sizes(log: Path) -> dict[str, int]:
    return {f.name: f.stat().st_size for f in sorted(log.parent.glob(log.name + "*"))}


def test_copy_keeps_at_most_the_configured_files_and_bytes(tmp_path: Path) -> None:
    log = tmp_path / "postgres.log"
    lines = [f"2026-03-01 ERROR:  statement {i} of 11010519491231002X failed\n".encode() for i in range(1000)]
    assert copy(lines, rotating_handler(log, max_bytes=2048, backups=3)) == 1000  # ~60 KB in
    sizes = _sizes(log)
    assert list(sizes) == ["postgres.log", "postgres.log.1", "postgres.log.2", "postgres.log.3"]
    assert max(sizes.values()) <= 2048 and sum(sizes.values()) <= 4 * 2048
    text = log.read_text()
    assert text.endswith("statement 999 of 110105********002X failed\n")
    assert "11010519491231002X" not in text


def test_the_command_copies_its_input_until_the_writer_closes(tmp_path: Path) -> None:
    log = tmp_path / "kafka.out"
    data = b"".join(f"line {i}\n".encode() for i in range(500)) + b"no newline at the end"
    done = subprocess.run([sys.executable, "-m", "tools.stack.logpipe", str(log), "--max-bytes", "1024",
                           "--backups", "1"], input=data, cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    sizes = _sizes(log)
    assert list(sizes) == ["kafka.out", "kafka.out.1"] and max(sizes.values()) <= 1024
    assert log.read_text().endswith("line 499\nno newline at the end\n")
