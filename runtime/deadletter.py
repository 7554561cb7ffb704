"""Dead letters: a record a consumer cannot process goes to `<topic>.dlt` with the original bytes,
key and headers, plus headers naming where it came from and why. Operators list and redrive them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from contracts.topics import dead_letter_topic

H_REASON = "dlt.reason"
H_FIELD = "dlt.field"
H_TOPIC = "dlt.original.topic"
H_PARTITION = "dlt.original.partition"
H_OFFSET = "dlt.original.offset"
H_SERVICE = "dlt.service"
H_EVENT_TYPE = "event_type"


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


def dlt_headers(letter: DeadLetter, service: str) -> dict[str, str]:
    headers = {k: v.decode("utf-8", "replace") for k, v in letter.headers if not k.startswith("dlt.")}
    headers.update({H_REASON: letter.reason[:2000], H_TOPIC: letter.topic, H_PARTITION: str(letter.partition),
                    H_OFFSET: str(letter.offset), H_SERVICE: service})
    if letter.field:
        headers[H_FIELD] = letter.field
    return headers


async def send_dead_letters(broker: Any, letters: list[DeadLetter], service: str) -> None:
    futures = [
        await broker.publish(letter.value or b"", topic=dead_letter_topic(letter.topic), key=letter.key,
                             headers=dlt_headers(letter, service), no_confirm=True)
        for letter in letters
    ]
    await asyncio.gather(*futures)
