"""Consumer-group lag: how much of a topic a service has not processed (committed) yet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - metadata of a topic not yet subscribed
        parts = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(parts or ())]


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages of `topic` the group has not committed (all of them if it never committed)."""
    return (await lags(bootstrap, [(group, topic)]))[(group, topic)]


async def lags(bootstrap: str, groups: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """`group_lag` of several (group, topic) pairs through one pair of clients."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
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


async def wait_drained(bootstrap: str, groups: Iterable[tuple[str, str]], timeout: float = 300.0) -> None:
    """Wait until every (group, topic) has committed everything published so far."""
    deadline = time.monotonic() + timeout
    for group, topic in groups:
        while (lag := await group_lag(bootstrap, group, topic)) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} still has {lag} messages of {topic} to process")
            await asyncio.sleep(0.5)
