"""Smoke test of the real infrastructure: one message through Kafka, one database in PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from runtime.kafka_access import KafkaAccess
from tools.stack import database_dsn

pytestmark = pytest.mark.integration


async def test_message_round_trip_through_the_broker(kafka_admin: KafkaAccess) -> None:
    topic = f"smoke.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(**kafka_admin.options())
    await admin.start()
    try:
        assert "claims.discharges" in await admin.list_topics()  # the registry topics exist
        await admin.create_topics([NewTopic(topic, 1, 1)])
        producer = AIOKafkaProducer(**kafka_admin.options(), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b'{"hello": "kafka"}', key=b"person-1", headers=[("event_type", b"Smoke")])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(**kafka_admin.options(), enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            record = await asyncio.wait_for(consumer.getone(), timeout=30)
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"person-1", b'{"hello": "kafka"}')
        assert dict(record.headers)["event_type"] == b"Smoke"
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_create_use_and_drop_a_database(database_url: str, fresh_database) -> None:
    name = f"smoke_{uuid.uuid4().hex[:12]}"
    server = await asyncpg.connect(database_dsn(database_url, "postgres"))
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        db = await asyncpg.connect(database_dsn(database_url, name))
        try:
            assert await db.fetchval("SELECT current_database()") == name
        finally:
            await db.close()
        await server.execute(f'DROP DATABASE "{name}"')
        assert await server.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await server.close()

    fresh = await asyncpg.connect(fresh_database())  # the per-test database factory
    try:
        await fresh.execute("CREATE TABLE t (id int PRIMARY KEY)")
        assert await fresh.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await fresh.close()
