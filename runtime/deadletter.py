"""Dead letters: a record a consumer cannot process goes to `<topic>.dlt` with the original bytes,
key and headers, plus headers naming where it came from and why. Operators list and redrive them.

A dead letter always fits the producer's request limit: a value, key or header set that would
not is cut to a bounded prefix, and the letter says so (`dlt.truncated`, with the original's
length and SHA-256), so the operator can still find the original on its topic while it is
retained. A truncated letter cannot be redriven as it is (`tools/operator/dlt.py` says why).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from contracts.limits import printable
from contracts.topics import dead_letter_topic
from runtime.publisher import Publisher

H_REASON = "dlt.reason"
H_FIELD = "dlt.field"
H_TOPIC = "dlt.original.topic"
H_PARTITION = "dlt.original.partition"
H_OFFSET = "dlt.original.offset"
H_SERVICE = "dlt.service"
H_TRUNCATED = "dlt.truncated"
H_LENGTH = "dlt.original.length"
H_SHA256 = "dlt.original.sha256"
H_EVENT_TYPE = "event_type"

MAX_LETTER_BYTES = 768 * 1024
"""A letter's value, key and headers together stay under this (the producer's limit is 1 MiB)."""
TRUNCATED_VALUE_BYTES = 64 * 1024
"""What a letter keeps of a value that would not fit."""
MAX_KEY_BYTES = 1024
MAX_COPIED_HEADERS_BYTES = 16 * 1024


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    reason: str
    field: str | None = None
    claim_id: str | None = None
    """the claim the record is about, when its envelope decoded (for the log line, never sent)"""


@dataclass(frozen=True)
class Outgoing:
    """A dead letter as it is published: bounded value, key and headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]


def _copied_headers(letter: DeadLetter) -> dict[str, str]:
    """The original's own headers (not `dlt.*`), as long as they stay small."""
    out: dict[str, str] = {}
    size = 0
    for k, v in letter.headers:
        name = printable(k, 100)
        if name.startswith("dlt.") or not name:
            continue
        text = printable((v or b"").decode("utf-8", "replace"), 2000)
        size += len(name) + len(text.encode())
        if size > MAX_COPIED_HEADERS_BYTES:
            out["dlt.headers.dropped"] = "true"
            break
        out[name] = text
    return out


def outgoing(letter: DeadLetter, service: str) -> Outgoing:
    """The letter to publish for `letter`, within `MAX_LETTER_BYTES`."""
    value = letter.value or b""
    key = letter.key
    headers = _copied_headers(letter)
    headers.update({H_REASON: printable(letter.reason, 2000), H_TOPIC: letter.topic,
                    H_PARTITION: str(letter.partition), H_OFFSET: str(letter.offset), H_SERVICE: service})
    if letter.field:
        headers[H_FIELD] = printable(letter.field, 200)
    truncated = False
    if key is not None and len(key) > MAX_KEY_BYTES:
        key, truncated = key[:MAX_KEY_BYTES], True
        headers["dlt.original.key_length"] = str(len(letter.key or b""))
    header_bytes = sum(len(k) + len(v.encode()) for k, v in headers.items())
    if len(value) + len(key or b"") + header_bytes > MAX_LETTER_BYTES:
        value, truncated = value[:TRUNCATED_VALUE_BYTES], True
    if truncated:
        original = letter.value or b""
        headers.update({H_TRUNCATED: "true", H_LENGTH: str(len(original)),
                        H_SHA256: hashlib.sha256(original).hexdigest()})
    return Outgoing(dead_letter_topic(letter.topic), key, value, headers)


def dlt_headers(letter: DeadLetter, service: str) -> dict[str, str]:
    return outgoing(letter, service).headers


async def send_dead_letters(publisher: Publisher, letters: list[DeadLetter], service: str) -> None:
    """Publish the letters and wait for the broker's acknowledgement of each."""
    out = [outgoing(letter, service) for letter in letters]
    await publisher.send_all([(o.topic, o.value, o.key, o.headers) for o in out])
