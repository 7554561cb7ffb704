"""Consumer groups: how much of a topic a group has not processed (committed) yet, and whether a
group has active members (a running consumer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NotCoordinatorForGroupError,
)

from runtime.kafka_access import KafkaAccess


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - metadata of a topic not yet subscribed
        parts = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(parts or ())]


COORDINATOR_WAIT = 30.0
"""Seconds to wait for the group coordinator of a broker that has just started."""
COORDINATOR_NOT_READY = (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorForGroupError)
"""What a group coordinator answers while it is still coming up (a new broker creates its offsets
topic on first use)."""
ACTIVE_STATES = frozenset({"Stable", "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"})


def is_active(state: str, members: int) -> bool:
    """Has the group consumers now (the broker would let them overwrite offsets set from outside)?"""
    return members > 0 or state in ACTIVE_STATES


async def describe_groups(admin: AIOKafkaAdminClient, groups: Sequence[str]) -> dict[str, tuple[str, int]]:
    """(state, number of members) of each group; ("Dead", 0) for a group the broker does not know."""
    found = dict.fromkeys(groups, ("Dead", 0))
    deadline = time.monotonic() + COORDINATOR_WAIT
    for group in groups:  # one a request: aiokafka 0.14 cannot decode Kafka 4.1's answer about several
        while True:
            try:
                responses = await admin.describe_consumer_groups([group])
                break
            except COORDINATOR_NOT_READY:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        for response in responses:
            for entry in response.groups:
                error_code, name, state, members = entry[0], entry[1], entry[2], entry[5]
                if name == group:
                    found[name] = ((state or "Dead") if not error_code else f"error {error_code}", len(members))
    return found


async def active_groups(kafka: KafkaAccess, match: Callable[[str], bool]) -> dict[str, int]:
    """The consumer groups whose name `match`es that have active members: {group: members}."""
    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        names = sorted({g[0] for g in await admin.list_consumer_groups() if match(g[0])})
        described = await describe_groups(admin, names)
    finally:
        await admin.close()
    return {group: members for group, (state, members) in described.items() if is_active(state, members)}


async def group_lag(kafka: KafkaAccess, group: str, topic: str) -> int:
    """Messages of `topic` the group has not committed (all of them if it never committed)."""
    return (await lags(kafka, [(group, topic)]))[(group, topic)]


async def lags(kafka: KafkaAccess, groups: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """`group_lag` of several (group, topic) pairs through one pair of clients."""
    consumer = AIOKafkaConsumer(**kafka.options(), group_id=None)
    admin = AIOKafkaAdminClient(**kafka.options())
    await consumer.start()
    await admin.start()
    out: dict[tuple[str, str], int] = {}
    try:
        for group, topic in groups:
            parts = await partitions(consumer, topic)
            ends = await consumer.end_offsets(parts)
            committed = await admin.list_consumer_group_offsets(group, partitions=parts)
            out[(group, topic)] = sum(
                ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                for tp in parts)
        return out
    finally:
        await admin.close()
        await consumer.stop()


async def wait_drained(kafka: KafkaAccess, groups: Iterable[tuple[str, str]], timeout: float = 300.0) -> None:
    """Wait until every (group, topic) has committed everything published so far."""
    deadline = time.monotonic() + timeout
    for group, topic in groups:
        while True:
            try:
                lag: int | str = await group_lag(kafka, group, topic)
            except COORDINATOR_NOT_READY:
                lag = "an unknown number of"  # the group's coordinator is still coming up
            if lag == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} still has {lag} messages of {topic} to process")
            await asyncio.sleep(0.5)
