"""Publish events from a JSONL file: hospitals' discharges and operators' enrollment commands.

    python -m tools.publish discharges FILE.jsonl --hospital-producer   # one DischargeRecorded payload a line
    python -m tools.publish commands FILE.jsonl                         # {"event_type": ..., "payload": {...}} a line

With `TOPIC_PREFIX` set (or `--prefix`), every topic carries the prefix, as for the services.

Every line is validated against the contracts before anything is sent; a bad line is reported
with its line number and the field, and nothing is published unless `--skip-invalid` is given.
Messages are keyed as the topic registry says (person id for claims and person commands,
provider id for provider commands).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from contracts import (
    EVENT_TYPES,
    Contract,
    DischargeRecorded,
    Envelope,
    RegisterProvider,
    derived_event_id,
    encode,
    make_envelope,
)
from contracts.enrollment import ENROLLMENT_COMMANDS
from contracts.topics import DISCHARGES
from contracts.topics import ENROLLMENT_COMMANDS as COMMANDS_TOPIC
from tools.connection import kafka_bootstrap

console = Console(stderr=True)


@dataclass(frozen=True)
class Prepared:
    topic: str
    key: str
    envelope: Envelope[Any]


@dataclass(frozen=True)
class LineError:
    line: int
    reason: str


def _first_error(exc: ValidationError) -> str:
    e = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in e["loc"]) or "line"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {e['msg']}{more}"


def content_event_id(model: Contract) -> uuid.UUID:
    """An event id derived from the content, so publishing the same file twice is deduplicated
    by every consumer (an operator re-running a load never applies a command twice)."""
    return derived_event_id(type(model).__name__, model.model_dump_json())


def prepare_discharge(obj: Any) -> Prepared:
    d = DischargeRecorded.model_validate(obj)
    return Prepared(DISCHARGES, d.person_id, make_envelope(d, correlation_id=d.claim_id, producer=f"hospital:{d.hospital_id}",
                                                           event_id=content_event_id(d)))


def prepare_command(obj: Any) -> Prepared:
    if not isinstance(obj, dict) or "event_type" not in obj or "payload" not in obj:
        raise ValueError('expected {"event_type": ..., "payload": {...}}')
    model = EVENT_TYPES.get(obj["event_type"])
    if model not in ENROLLMENT_COMMANDS:
        raise ValueError(f"event_type {obj['event_type']!r} is not an enrollment command")
    cmd = model.model_validate(obj["payload"])
    key = cmd.provider_id if isinstance(cmd, RegisterProvider) else cmd.person_id  # type: ignore[attr-defined]
    return Prepared(COMMANDS_TOPIC, key, make_envelope(cmd, correlation_id=key, producer="operator",
                                                       event_id=content_event_id(cmd)))


def read_lines(path: Path, kind: str) -> tuple[list[Prepared], list[LineError]]:
    prepare = prepare_discharge if kind == "discharges" else prepare_command
    good: list[Prepared] = []
    bad: list[LineError] = []
    with path.open(encoding="utf-8") as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                good.append(prepare(json.loads(text)))
            except json.JSONDecodeError as exc:
                bad.append(LineError(n, f"not JSON: {exc.msg} at column {exc.colno}"))
            except ValidationError as exc:
                bad.append(LineError(n, _first_error(exc)))
            except ValueError as exc:
                bad.append(LineError(n, str(exc)))
    return good, bad


async def publish(messages: Iterable[Prepared], bootstrap: str, progress: bool = True, prefix: str = "") -> int:
    msgs = list(messages)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=10,
                                max_batch_size=1 << 20, client_id="medsettle-publish")
    await producer.start()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, disable=not progress) as bar:
            task = bar.add_task("publishing", total=len(msgs))
            for chunk in _chunks(msgs, 2000):
                futures = [await producer.send(prefix + m.topic, encode(m.envelope), key=m.key.encode(),
                                               headers=[("event_type", m.envelope.event_type.encode())])
                           for m in chunk]
                await asyncio.gather(*futures)
                bar.advance(task, len(chunk))
    finally:
        await producer.stop()
    return len(msgs)


def _chunks(items: list[Prepared], size: int) -> Iterator[list[Prepared]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.publish", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["discharges", "commands"])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default: env or the local stack)")
    ap.add_argument("--prefix", default=os.environ.get("TOPIC_PREFIX", ""),
                    help="topic prefix (default: env TOPIC_PREFIX), as the services are run with")
    ap.add_argument("--skip-invalid", action="store_true", help="publish the valid lines even if some are bad")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    good: list[Prepared] = []
    bad_total = 0
    for path in args.files:
        g, bad = read_lines(path, args.kind)
        good += g
        for e in bad[:50]:
            console.print(f"[red]{path}:{e.line}[/red] {e.reason}")
        if len(bad) > 50:
            console.print(f"... and {len(bad) - 50} more bad lines in {path}")
        bad_total += len(bad)
    if bad_total and not args.skip_invalid:
        console.print(f"[red]{bad_total} invalid line(s); nothing published[/red] (fix them or use --skip-invalid)")
        return 1
    n = asyncio.run(publish(good, args.bootstrap or kafka_bootstrap(), progress=not args.no_progress,
                            prefix=args.prefix))
    console.print(f"published {n} {args.kind}" + (f", skipped {bad_total} invalid" if bad_total else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
