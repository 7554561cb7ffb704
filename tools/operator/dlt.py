"""Dead letters (死信): list what consumers could not process, and redrive it once the cause is fixed.

A dead letter on `<topic>.dlt` carries the original key and bytes plus headers `dlt.reason`,
`dlt.field`, `dlt.original.topic/partition/offset` and `dlt.service` (runtime/deadletter.py).
Redrive republishes the original key and bytes (and the non-`dlt.` headers, plus `redrive.from`)
to the original topic.

What was redriven is tracked in the consumer group `<prefix>medsettle.operator.redrive` on the
dead-letter topic: its committed offset is a watermark below which every letter is done, and the
commit metadata lists the letters above it redriven one by one (`--offset`). A letter whose
original record (topic, partition, offset) was already redriven through another letter — two
services dead-lettering the same record — is not sent again. Publishing happens before the
commit: a crash in between may send a letter again on the next redrive, which the consumers
drop by natural key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from contracts.topics import DEAD_LETTER_TOPICS, DLT_SUFFIX, dead_letter_topic
from runtime.deadletter import (
    H_FIELD,
    H_LENGTH,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_SERVICE,
    H_SHA256,
    H_TOPIC,
    H_TRUNCATED,
)
from runtime.kafka_access import KafkaAccess
from tools.stack.principals import REDRIVE_GROUP

H_REDRIVE_FROM = "redrive.from"
_META_PREFIX = "redriven:"


@dataclass
class Letter:
    """One dead letter and whether it was redriven."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    status: str = "pending"

    @property
    def original(self) -> tuple[str, int, int] | None:
        try:
            return self.headers[H_TOPIC], int(self.headers[H_PARTITION]), int(self.headers[H_OFFSET])
        except (KeyError, ValueError):
            return None

    @property
    def reason(self) -> str:
        return self.headers.get(H_REASON, "")

    @property
    def field(self) -> str:
        return self.headers.get(H_FIELD, "")

    @property
    def service(self) -> str:
        return self.headers.get(H_SERVICE, "")

    @property
    def truncated(self) -> bool:
        """The letter keeps only a prefix of the original value (it would not have fit)."""
        return self.headers.get(H_TRUNCATED) == "true"

    def why_not_redriven(self) -> str:
        """Why a letter is skipped by redrive, in words an operator can act on."""
        if self.original is None:
            return "no original topic header"
        if self.truncated:
            topic, partition, offset = self.original
            return (f"truncated: the letter keeps {len(self.value or b'')} of the original's "
                    f"{self.headers.get(H_LENGTH, '?')} bytes (sha256 {self.headers.get(H_SHA256, '?')}), so it "
                    f"cannot be redriven as it is; the original is {topic} partition {partition} offset {offset} "
                    "while the topic retains it")
        return self.status


@dataclass
class Progress:
    """The redrive group's position on one dead-letter partition."""

    watermark: int = 0
    above: set[int] = field(default_factory=set)

    def done(self, offset: int) -> bool:
        return offset < self.watermark or offset in self.above

    def add(self, offset: int) -> None:
        if offset < self.watermark:
            return
        self.above.add(offset)
        while self.watermark in self.above:
            self.above.discard(self.watermark)
            self.watermark += 1

    def metadata(self) -> str:
        return _META_PREFIX + ",".join(str(o) for o in sorted(self.above)) if self.above else ""

    @classmethod
    def parse(cls, offset: int, metadata: str | None) -> Progress:
        above = set()
        if metadata and metadata.startswith(_META_PREFIX):
            above = {int(o) for o in metadata[len(_META_PREFIX):].split(",") if o.strip().isdigit()}
        return cls(max(offset, 0), {o for o in above if o >= offset})


def dlt_name(prefix: str, topic: str) -> str:
    """`claims.discharges` or `claims.discharges.dlt` → `<prefix>claims.discharges.dlt`
    (`hospital.<id>.requests` → `<prefix>hospital.requests.dlt`)."""
    base = topic.removeprefix(prefix)
    return prefix + (base if base.endswith(DLT_SUFFIX) else dead_letter_topic(base))


def all_dlt_names(prefix: str) -> list[str]:
    return [prefix + t.name for t in DEAD_LETTER_TOPICS]


async def read_all(kafka: KafkaAccess, topic: str, on_record: Callable[[int, int], None] | None = None
                    ) -> list[Letter]:
    consumer = AIOKafkaConsumer(**kafka.options(), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - metadata of a topic not seen yet
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        total = 0
        for tp in tps:
            total += end[tp] - await consumer.position(tp)
        letters: list[Letter] = []
        deadline = time.monotonic() + 60
        async def behind() -> bool:
            for tp in tps:
                if await consumer.position(tp) < end[tp]:
                    return True
            return False

        while await behind() and time.monotonic() < deadline:
            batch = await consumer.getmany(*tps, timeout_ms=500)
            for records in batch.values():
                for r in records:
                    if r.offset >= end[TopicPartition(r.topic, r.partition)]:
                        continue
                    headers = {k: v.decode("utf-8", "replace") for k, v in (r.headers or ())}
                    letters.append(Letter(r.topic, r.partition, r.offset, r.key, r.value, headers))
            if on_record is not None:
                on_record(len(letters), total)
        return sorted(letters, key=lambda x: (x.partition, x.offset))
    finally:
        await consumer.stop()


async def _progress(admin: AIOKafkaAdminClient, group: str, topic: str, partitions: Sequence[int]
                    ) -> dict[int, Progress]:
    tps = [TopicPartition(topic, p) for p in partitions]
    committed = await admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
    out = {}
    for tp in tps:
        om = committed.get(tp)
        out[tp.partition] = Progress.parse(om.offset, om.metadata) if om is not None and om.offset >= 0 else Progress()
    return out


def _mark(letters: list[Letter], progress: dict[int, Progress]) -> None:
    """Set each letter's status: redriven, duplicate (its original was redriven via another letter),
    truncated (only a prefix of the original was kept: not redrivable as it is), pending."""
    done_originals = {lt.original for lt in letters if progress[lt.partition].done(lt.offset)}
    for lt in letters:
        if progress[lt.partition].done(lt.offset):
            lt.status = "redriven"
        elif lt.original is not None and lt.original in done_originals:
            lt.status = "duplicate"
        elif lt.truncated:
            lt.status = "truncated"


async def list_letters(kafka: KafkaAccess, prefix: str, topic: str, on_record: Callable[[int, int], None] | None = None
                       ) -> list[Letter]:
    """Every letter on one dead-letter topic, with its redrive status."""
    name = dlt_name(prefix, topic)
    letters = await read_all(kafka, name, on_record)
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        progress = await _progress(admin, prefix + REDRIVE_GROUP, name, sorted({lt.partition for lt in letters}))
    finally:
        await admin.close()
    _mark(letters, progress)
    return letters


@dataclass
class RedriveResult:
    sent: list[Letter] = field(default_factory=list)
    skipped: list[Letter] = field(default_factory=list)


async def redrive(kafka: KafkaAccess, prefix: str, topic: str, *, offset: int | None = None, dry_run: bool = False,
                  on_sent: Callable[[Letter], None] | None = None) -> RedriveResult:
    """Republish one letter (`offset`) or every pending one (`offset=None`), each original once."""
    name = dlt_name(prefix, topic)
    group = prefix + REDRIVE_GROUP
    letters = await read_all(kafka, name)
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        partitions = sorted({lt.partition for lt in letters})
        progress = await _progress(admin, group, name, partitions)
    finally:
        await admin.close()
    _mark(letters, progress)
    if offset is not None:
        chosen = [lt for lt in letters if lt.offset == offset]
        if not chosen:
            raise ValueError(f"{name} has no dead letter at offset {offset}")
    else:
        chosen = letters
    result = RedriveResult()
    seen = {lt.original for lt in letters if lt.status == "redriven"}
    todo: list[Letter] = []
    for lt in chosen:
        if lt.status != "pending" or lt.original is None or lt.original in seen:
            result.skipped.append(lt)
        else:
            seen.add(lt.original)
            todo.append(lt)
    if dry_run:
        result.sent = todo
        return result
    if todo:
        producer = AIOKafkaProducer(**kafka.options(), enable_idempotence=True)
        await producer.start()
        try:
            for lt in todo:
                original = lt.original
                assert original is not None
                headers = [(k, v.encode()) for k, v in lt.headers.items() if not k.startswith("dlt.")]
                headers.append((H_REDRIVE_FROM, f"{lt.topic}:{lt.partition}:{lt.offset}".encode()))
                await producer.send_and_wait(original[0], lt.value, key=lt.key, headers=headers)
                result.sent.append(lt)
                if on_sent is not None:
                    on_sent(lt)
        finally:
            await producer.stop()
    # record what is done: the letters sent, and the duplicates of what was sent (never to send again)
    for lt in result.sent + [s for s in result.skipped if s.original is not None and s.status != "truncated"]:
        progress[lt.partition].add(lt.offset)
    if partitions:
        consumer = AIOKafkaConsumer(**kafka.options(), group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = {TopicPartition(name, p): OffsetAndMetadata(progress[p].watermark, progress[p].metadata())
                   for p in partitions}
            consumer.assign(list(tps))
            await consumer.commit({tp: (om.offset, om.metadata) for tp, om in tps.items()})
        finally:
            await consumer.stop()
    return result
