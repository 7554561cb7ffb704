"""The hospitals' statements topics, created when a hospital is first answered.

A hospital's requests topic is created with its credentials (`medsettle operator
hospital-credentials`); its statements topic may be needed earlier (a claim sent by an operator on
its behalf), so the intake creates it on first use: with automatic topic creation off, publishing
to a missing topic would stall the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts.topics import HOSPITAL_TOPIC_CONFIG, HOSPITAL_TOPIC_PARTITIONS

TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


class HospitalTopics:
    """Makes sure topics exist, remembering the ones it has seen."""

    def __init__(self, kafka_options: dict[str, Any], replication_factor: int = 1) -> None:
        self._options = kafka_options
        self._replication = replication_factor
        self._known: set[str] = set()

    async def ensure(self, names: Iterable[str]) -> None:
        missing = sorted(set(names) - self._known)
        if not missing:
            return
        admin = AIOKafkaAdminClient(**self._options, request_timeout_ms=30_000)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            todo = [n for n in missing if n not in existing]
            if todo:
                config = {"cleanup.policy": "delete", **HOSPITAL_TOPIC_CONFIG}
                response = await admin.create_topics(
                    [NewTopic(n, HOSPITAL_TOPIC_PARTITIONS, self._replication, topic_configs=config) for n in todo],
                    timeout_ms=30_000)
                for name, code, *rest in response.topic_errors:
                    if code not in (0, TOPIC_ALREADY_EXISTS):
                        raise RuntimeError(f"creating topic {name} failed: error {code} {rest[0] if rest else ''}")
        finally:
            await admin.close()
        self._known.update(missing)
