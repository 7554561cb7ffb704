"""The one producer a service publishes with (its outbox and its dead letters): idempotent, and
started again when it cannot go on.

An idempotent producer numbers its batches per partition. After a broker restart it can be told
its sequence is out of order (or its producer id unknown, or its epoch fenced) — errors that
the producer never recovers from on its own: every later send fails the same way. `Publisher`
closes such a producer and starts a new one (a new producer id) before the caller's back-off
retries, so a service rides out a broker restart without being restarted itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    IllegalStateError,
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)

from runtime.logging import get_logger

log = get_logger("runtime.publisher")

FATAL_TO_PRODUCER: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced, ProducerClosed,
    IllegalStateError,
)
"""What a producer never recovers from: it is replaced by a new one."""


class Publisher:
    def __init__(self, options: Mapping[str, Any], client_id: str, *, idempotent: bool = True) -> None:
        self.options = dict(options)
        self.client_id = client_id
        self.idempotent = idempotent
        """False for a service that writes no topic as itself (the gateway): an idempotent producer
        needs WRITE on some topic to start (KIP-679)."""
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._producer is None:
                self._producer = await self._new()

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def _new(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(client_id=self.client_id, enable_idempotence=self.idempotent, linger_ms=5,
                                    max_batch_size=1 << 20, **self.options)
        await producer.start()
        return producer

    async def ping(self) -> None:
        """Raises unless the broker answers a metadata request (readiness)."""
        await self.start()
        producer = self._producer
        assert producer is not None
        await producer.client.fetch_all_metadata()

    async def send_all(self, records: list[tuple[str, bytes, bytes | None, Mapping[str, str]]]) -> None:
        """Send (topic, value, key, headers) records in order and wait for every acknowledgement."""
        await self.start()
        producer = self._producer
        assert producer is not None
        try:
            futures = [await producer.send(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
                       for topic, value, key, headers in records]
            await asyncio.gather(*futures)
        except FATAL_TO_PRODUCER as exc:
            await self._replace(producer, exc)
            raise

    async def _replace(self, broken: AIOKafkaProducer, exc: BaseException) -> None:
        async with self._lock:
            if id(self._producer) != id(broken):
                return  # another send replaced it already
            log.warning("the producer cannot go on; starting a new one", error=f"{type(exc).__name__}: {exc}")
            self._producer = None
            try:
                await broken.stop()
            except Exception as stop_error:  # noqa: BLE001 - a broken producer may fail to stop; it is dropped
                log.info("the old producer did not stop cleanly", error=type(stop_error).__name__)
