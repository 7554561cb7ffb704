"""Fixtures of the integration tests: a namespace (topic prefix + fresh databases) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runtime.kafka_access import KafkaAccess
from tests.integration.harness import Namespace, new_namespace


@pytest.fixture
async def ns(kafka_admin: KafkaAccess, database_url: str) -> AsyncIterator[Namespace]:
    """A fresh namespace on the real broker and database, removed after the test."""
    namespace = await new_namespace(kafka_admin, database_url)
    yield namespace
    await namespace.drop_databases()
