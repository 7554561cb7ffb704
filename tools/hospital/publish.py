"""Publish events from JSONL files: hospitals' discharges, corrections and reversals, and operators'
enrollment commands.

    ./medsettle publish discharges FILE.jsonl ...   # one DischargeRecorded payload a line
    ./medsettle publish corrections FILE.jsonl ...  # one DischargeCorrected payload a line
    ./medsettle publish reversals FILE.jsonl ...    # one ReversalRequested payload a line
    ./medsettle publish commands FILE.jsonl ...     # {"event_type": ..., "payload": {...}} a line

Every line of every file is validated before anything is sent, exactly as a consumer will decode
it (the contract, the size of the record, the key); a bad line is reported with its file, line
number and field, and nothing is published unless `--skip-invalid` is given. Messages are keyed
as the contracts say (`Contract.message_key()`: the person id for claims and person commands, the
provider id for provider commands). A hospital's discharges, corrections and reversals go to its
own requests topic `hospital.<hospital_id>.requests`, the only claim topic a hospital may write
(the intake moves them to `claims.discharges` with the producer `hospital:<hospital_id>`, and
refuses a request for another hospital's provider id); with `--direct` an operator puts them on
`claims.discharges` itself (a back-fill). The claim id is the correlation id. Event ids are
derived from the content, so publishing the same file twice is deduplicated by every consumer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from contracts import (
    EVENT_TYPES,
    Contract,
    DischargeCorrected,
    DischargeRecorded,
    Envelope,
    ReversalRequested,
    decode,
    derived_event_id,
    encode,
    make_envelope,
)
from contracts.codec import check_size
from contracts.enrollment import ENROLLMENT_COMMAND_MODELS
from contracts.topics import DISCHARGES, hospital_requests_topic
from contracts.topics import ENROLLMENT_COMMANDS as COMMANDS_TOPIC
from runtime.kafka_access import KafkaAccess
from runtime.tracing import new_traceparent

Kind = Literal["discharges", "corrections", "reversals", "commands"]
SHOWN_ERRORS = 50
"""Bad lines reported per file (the count of the rest is given)."""

console = Console(stderr=True)


@dataclass(frozen=True)
class Prepared:
    topic: str
    key: str
    envelope: Envelope[Any]
    value: bytes
    """The encoded envelope, exactly as it is sent."""


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


def _prepared(topic: str, model: Contract, producer: str, correlation_id: str | None = None, *,
              validated: bool = False) -> Prepared:
    """The message for `model`, checked as its consumer will decode it (size limit included); the
    correlation id is the key unless given. `validated`: the model was just validated from JSON
    (the gateway's request body), so its canonical encoding decodes to it again (what
    `tests/contracts/test_extremes.py` shows for every contract at its extremes) and only the
    record's size is left to check."""
    key = model.message_key()
    envelope = make_envelope(model, correlation_id=correlation_id or key, producer=producer,
                             event_id=content_event_id(model))
    value = encode(envelope)
    if validated:
        check_size(value)
    else:
        decode(value, type(model))  # raises ContractError (a ValueError) for what a consumer would refuse
    return Prepared(topic, key, envelope, value)


def _claim_request(model: type[DischargeRecorded] | type[ReversalRequested]) -> Callable[[Any], Prepared]:
    """A hospital's request about a claim (discharge, correction, reversal): on the hospital's
    requests topic, keyed by person id, from `hospital:<hospital_id>`, correlated by claim id."""
    def prepare(obj: Any) -> Prepared:
        validated = type(obj) is model  # the gateway's body, validated from the request's JSON
        request = obj if validated else model.model_validate(obj)
        return _prepared(hospital_requests_topic(request.hospital_id), request, f"hospital:{request.hospital_id}",
                         correlation_id=request.claim_id, validated=validated)
    return prepare


def direct(message: Prepared) -> Prepared:
    """A hospital's request put on `claims.discharges` itself (an operator's back-fill, which needs
    the operator's rights), not on the hospital's requests topic."""
    if message.topic == COMMANDS_TOPIC:
        return message
    return Prepared(DISCHARGES, message.key, message.envelope, message.value)


prepare_discharge = _claim_request(DischargeRecorded)
prepare_correction = _claim_request(DischargeCorrected)
prepare_reversal = _claim_request(ReversalRequested)


def prepare_command(obj: Any) -> Prepared:
    if not isinstance(obj, dict) or not isinstance(obj.get("event_type"), str) or "payload" not in obj:
        raise ValueError('expected {"event_type": "<command>", "payload": {...}}')
    model = EVENT_TYPES.get(obj["event_type"])
    if model not in ENROLLMENT_COMMAND_MODELS:
        raise ValueError(f"event_type {obj['event_type']!r} is not an enrollment command")
    return _prepared(COMMANDS_TOPIC, model.model_validate(obj["payload"]), "operator")


PREPARE: dict[Kind, Callable[[Any], Prepared]] = {
    "discharges": prepare_discharge, "corrections": prepare_correction, "reversals": prepare_reversal,
    "commands": prepare_command}


def for_hospital(message: Prepared, hospital_id: str) -> Prepared:
    """What a hospital authenticated as itself sends: a discharge, correction or reversal, on its own
    requests topic (`hospital.<id>.requests`; the intake moves it on). A request naming another
    hospital is refused here already (the intake would refuse it too)."""
    if message.topic == COMMANDS_TOPIC:
        raise ValueError("a hospital publishes discharges, corrections and reversals only")
    payload = message.envelope.payload
    if payload.hospital_id != hospital_id:
        raise ValueError(f"hospital_id: {payload.hospital_id} is not the hospital of these credentials ({hospital_id})")
    return Prepared(hospital_requests_topic(hospital_id), message.key, message.envelope, message.value)


def read_lines(path: Path, kind: Kind, hospital: str | None = None) -> tuple[list[Prepared], list[LineError]]:
    """Every line of `path` prepared, or the reason it cannot be (blank lines are skipped); with
    `hospital`, as that hospital sends it (`for_hospital`)."""
    base = PREPARE[kind]

    def prepare(obj: Any) -> Prepared:
        return base(obj) if hospital is None else for_hospital(base(obj), hospital)
    good: list[Prepared] = []
    bad: list[LineError] = []
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
                if not text.strip():
                    continue
                good.append(prepare(json.loads(text)))
            except UnicodeDecodeError as exc:
                bad.append(LineError(n, f"not UTF-8: {exc.reason} at byte {exc.start}"))
            except json.JSONDecodeError as exc:
                bad.append(LineError(n, f"not JSON: {exc.msg} at column {exc.colno}"))
            except ValidationError as exc:
                bad.append(LineError(n, _first_error(exc)))
            except (ValueError, TypeError) as exc:
                bad.append(LineError(n, str(exc)))
    return good, bad


async def publish(messages: Sequence[Prepared], kafka: KafkaAccess, progress: bool = True, prefix: str = "") -> int:
    """Send every message (in order, idempotent producer) and wait for the broker's acknowledgements."""
    producer = AIOKafkaProducer(**kafka.options(), enable_idempotence=True, linger_ms=10,
                                max_batch_size=1 << 20, client_id="medsettle-publish")
    await producer.start()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, disable=not progress) as bar:
            task = bar.add_task("publishing", total=len(messages))
            for chunk in _chunks(messages, 2000):
                futures = [await producer.send(prefix + m.topic, m.value, key=m.key.encode(), headers=_headers(m))
                           for m in chunk]
                await asyncio.gather(*futures)
                bar.advance(task, len(chunk))
    finally:
        await producer.stop()
    return len(messages)


def _headers(m: Prepared) -> list[tuple[str, bytes]]:
    """`event_type`, and a `traceparent` that starts the request's trace (W3C Trace Context,
    `runtime.tracing`): every event it causes downstream carries the same trace id."""
    traceparent = new_traceparent("publish")
    return [("event_type", m.envelope.event_type.encode()),
            *((("traceparent", traceparent.encode()),) if traceparent else ())]


def _chunks(items: Sequence[Prepared], size: int) -> Iterator[Sequence[Prepared]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def resent(message: Prepared) -> Prepared:
    """The same request as a new event (a fresh event id): what a hospital sends to settle a
    reversed claim again, or to reverse a claim again after that — the content-derived id would
    make the platform take it for the earlier request delivered twice."""
    envelope = message.envelope.model_copy(update={"event_id": uuid.uuid4()})
    return Prepared(message.topic, message.key, envelope, encode(envelope))


def publish_files(kind: Kind, files: Sequence[Path], kafka: Callable[[], KafkaAccess], *, prefix: str = "",
                  skip_invalid: bool = False, progress: bool = True, resend: bool = False,
                  to_discharges: bool = False, hospital: str | None = None) -> int:
    """`./medsettle publish KIND FILE...`: validate every line of every file, then (and only if all
    are valid, or `skip_invalid`) publish the valid ones to the broker `kafka()` names (asked only
    then). `hospital`: as that hospital, with its credentials (`for_hospital`). `resend`: as new
    events (see `resent`); `to_discharges`: hospitals' requests straight to `claims.discharges` (see
    `direct`; operators only). Returns the exit code: 0 published, 1 bad lines and nothing published."""
    good: list[Prepared] = []
    bad_total = 0
    for path in files:
        g, bad = read_lines(path, kind, hospital)
        good += g
        for e in bad[:SHOWN_ERRORS]:
            console.print(f"[red]{escape(str(path))}:{e.line}[/red] {escape(e.reason)}")
        if len(bad) > SHOWN_ERRORS:
            console.print(f"... and {len(bad) - SHOWN_ERRORS} more bad lines in {escape(str(path))}")
        bad_total += len(bad)
    if bad_total and not skip_invalid:
        console.print(f"[red]{bad_total} invalid line(s); nothing published[/red] (fix them or use --skip-invalid)")
        return 1
    if resend:
        good = [resent(m) for m in good]
    if to_discharges:
        good = [direct(m) for m in good]
    n = asyncio.run(publish(good, kafka(), progress=progress, prefix=prefix))
    console.print(f"published {n} {kind}" + (f", skipped {bad_total} invalid" if bad_total else ""))
    return 0
