"""Namespaces on one broker: every topic and consumer group of a run carries a prefix (`TOPIC_PREFIX`,
e.g. `t1a2b3c4.`), so integration tests and benchmarks run side by side with the platform. A
namespace has the registry's topics and its services' ACLs (`principals.service_acls(prefix)`), so
its services run as their own principals with exactly their rights there; closing it deletes its
topics, its ACLs and the users made for it (a test's hospitals)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from runtime.kafka_access import KafkaAccess
from tools.stack import principals
from tools.stack.kafka import ensure_topics
from tools.stack.kafka_admin import KafkaAdmin


async def open_namespace(admin: KafkaAccess, prefix: str) -> float:
    """Create the namespace's topics and grant its services' ACLs; returns the seconds the ACLs took."""
    await ensure_topics(admin, prefix=prefix)
    t0 = time.monotonic()
    if admin.secured:
        async with KafkaAdmin(admin) as as_admin:
            await principals.grant(as_admin, principals.service_acls(prefix))
    return time.monotonic() - t0


async def close_namespace(admin: KafkaAccess, prefix: str, users: Iterable[str] = ()) -> None:
    """Delete the namespace's topics, every ACL on its resources and `users`."""
    if not prefix:
        raise ValueError("close_namespace needs a namespace prefix")
    async with KafkaAdmin(admin) as as_admin:
        mine = [t for t in await as_admin.client.list_topics() if t.startswith(prefix)]
        if mine:
            await as_admin.client.delete_topics(mine)
        if admin.secured:
            await principals.revoke_namespace(as_admin, prefix)
            await as_admin.delete_users(users)
