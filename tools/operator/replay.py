"""Replay (重放) a service's input: reset its consumer groups `<prefix>medsettle.<service>.<topic>`
to the earliest offset, a point in time or an offset, so the service reprocesses what follows; or
move one partition of one group to an exact offset (skipping a poison record by hand: its offset
+ 1), leaving the group's other partitions where they are.

Every service dedupes its inputs by natural key, so a replay re-applies nothing and re-publishes
nothing; it exists to rebuild state or to recover from a bug. A group with active members is
never reset (the broker would let the running consumers overwrite the new offsets): stop the
service first. A dry run shows, per partition, the committed offset, the target and how many
records would be reprocessed.

Offsets are committed by a consumer that joins no group (manual assignment with the group's id),
which the broker accepts only while the group is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES, ENROLLMENT_COMMANDS, TOPICS
from runtime.kafka_access import KafkaAccess
from tools.stack.lag import describe_groups, is_active

SERVICE_INPUTS: dict[str, tuple[str, ...]] = {
    "enrollment": (ENROLLMENT_COMMANDS,),
    "settlement": (DISCHARGES,),
    "catastrophic": (BASIC_SETTLED,),
    "assistance": (CATASTROPHIC_SETTLED,),
    "audit": tuple(t.name for t in TOPICS),
}
"""The input topics of each service's consumer groups (registry projections use no group: they are
among the topics `contracts.topics` lists the service as a reader of, but not here)."""

class ReplayRefused(RuntimeError):
    """A group to reset has active members (the service is running)."""


@dataclass(frozen=True)
class Target:
    """Where to reset to: exactly one of earliest / a timestamp / an offset."""

    earliest: bool = False
    at: datetime | None = None
    offset: int | None = None

    def describe(self) -> str:
        if self.earliest:
            return "earliest"
        return f"time {self.at.isoformat()}" if self.at is not None else f"offset {self.offset}"


@dataclass
class PartitionPlan:
    topic: str
    partition: int
    committed: int | None
    target: int
    beginning: int
    end: int

    @property
    def current(self) -> int:
        """Where the group would resume now (no commit yet: the beginning, as the services start)."""
        return self.committed if self.committed is not None else self.beginning

    @property
    def reprocess(self) -> int:
        return max(self.current - self.target, 0)

    @property
    def skip(self) -> int:
        return max(self.target - self.current, 0)


@dataclass
class GroupPlan:
    group: str
    topic: str
    state: str
    members: int
    partitions: list[PartitionPlan] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return is_active(self.state, self.members)

    @property
    def reprocess(self) -> int:
        return sum(p.reprocess for p in self.partitions)


def group_id(prefix: str, service: str, topic: str) -> str:
    return f"{prefix}medsettle.{service}.{topic}"


def input_topics(service: str, topic: str | None) -> tuple[str, ...]:
    if service not in SERVICE_INPUTS:
        raise ValueError(f"unknown service {service!r} (one of {', '.join(SERVICE_INPUTS)})")
    topics = SERVICE_INPUTS[service]
    if topic is None:
        return topics
    if topic not in topics:
        raise ValueError(f"{service} does not consume {topic!r} (it consumes {', '.join(topics)})")
    return (topic,)


async def _targets(consumer: AIOKafkaConsumer, tps: list[TopicPartition], target: Target,
                   begin: dict[TopicPartition, int], end: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    if target.earliest:
        return dict(begin)
    if target.offset is not None:
        return {tp: min(max(target.offset, begin[tp]), end[tp]) for tp in tps}
    assert target.at is not None
    found = await consumer.offsets_for_times({tp: int(target.at.timestamp() * 1000) for tp in tps})
    return {tp: found[tp].offset if found.get(tp) is not None else end[tp] for tp in tps}


def _check_one_partition(service: str, topics: tuple[str, ...], target: Target) -> None:
    """A one-partition move names an exact offset in one group (the topic, where there are several)."""
    if target.offset is None:
        raise ValueError("--partition needs --to-offset: the exact offset to move that partition to")
    if len(topics) > 1:
        raise ValueError(f"{service} consumes several topics ({', '.join(topics)}): name one with --topic")


def _one_partition(full: str, parts: list[int], partition: int, offset: int, begin: dict[TopicPartition, int],
                   end: dict[TopicPartition, int]) -> None:
    """The partition exists and holds `offset` (its end: skip all it holds now)."""
    if partition not in parts:
        raise ValueError(f"topic {full} has no partition {partition} (it has {parts[0]} to {parts[-1]})")
    tp = TopicPartition(full, partition)
    if not begin[tp] <= offset <= end[tp]:
        raise ValueError(f"partition {partition} of {full} holds offsets {begin[tp]} to {end[tp]}: "
                         f"cannot move to {offset}")


async def plan_replay(kafka: KafkaAccess, prefix: str, service: str, target: Target, topic: str | None = None,
                      partition: int | None = None) -> list[GroupPlan]:
    """What a reset would do, group by group and partition by partition (changes nothing). With
    `partition`, only that partition of the one group (needs an offset target and a single topic)."""
    topics = input_topics(service, topic)
    if partition is not None:
        _check_one_partition(service, topics, target)
    admin = AIOKafkaAdminClient(**kafka.options())
    consumer = AIOKafkaConsumer(**kafka.options(), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([prefix + t for t in topics])}
        plans = []
        for name in topics:
            full = prefix + name
            parts = sorted(p["partition"] for p in described.get(full, {}).get("partitions", []))
            if not parts:
                raise ValueError(f"topic {full} does not exist")
            tps = [TopicPartition(full, p) for p in parts]
            group = group_id(prefix, service, name)
            state, members = (await describe_groups(admin, [group]))[group]
            begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
            if partition is not None:
                assert target.offset is not None
                _one_partition(full, parts, partition, target.offset, begin, end)
                tps = [TopicPartition(full, partition)]
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            targets = await _targets(consumer, tps, target, begin, end)
            plan = GroupPlan(group, name, state, members)
            for tp in tps:
                om = committed.get(tp)
                plan.partitions.append(PartitionPlan(name, tp.partition, om.offset if om and om.offset >= 0 else None,
                                                     targets[tp], begin[tp], end[tp]))
            plans.append(plan)
        return plans
    finally:
        await consumer.stop()
        await admin.close()


async def apply_replay(kafka: KafkaAccess, prefix: str, plans: Sequence[GroupPlan],
                       on_group: Callable[[GroupPlan], None] | None = None) -> None:
    """Commit the planned offsets, group by group (only the planned partitions: a group's others keep
    their committed offsets); refuses if any group is active (checked again now)."""
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        for plan in plans:
            state, members = (await describe_groups(admin, [plan.group]))[plan.group]
            if is_active(state, members):
                raise ReplayRefused(f"consumer group {plan.group} is active ({state}, {members} members): "
                                    "stop the service before replaying")
    finally:
        await admin.close()
    for plan in plans:
        consumer = AIOKafkaConsumer(**kafka.options(), group_id=plan.group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = {TopicPartition(prefix + p.topic, p.partition): p.target for p in plan.partitions}
            consumer.assign(list(tps))
            await consumer.commit(tps)
        finally:
            await consumer.stop()
        if on_group is not None:
            on_group(plan)
