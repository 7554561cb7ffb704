"""Who may do what on the broker: the principals and their ACLs, derived from the topic registry.

The broker denies everything that no ACL allows (`allow.everyone.if.no.acl.found=false`); its super
users are its own mutual-TLS identity (`User:kafka-broker`) and `User:admin` (operators, the stack's
tooling, the tests' harness). Every other principal holds exactly what `contracts.topics` says it
needs, and nothing is written by hand:

* a service (`enrollment`, `settlement`, `catastrophic`, `assistance`, `audit`, `intake`) may READ
  each topic that lists it in `readers` (its subscriptions and registry projections), WRITE each
  topic whose `producer` it is and the `.dlt` of each topic it dead-letters (`dead_lettered_by`),
  and READ its own consumer groups (prefixed `medsettle.<service>.`). READ and WRITE imply
  DESCRIBE; WRITE on a topic lets an idempotent producer start (KIP-679), so no cluster right is
  given to anyone;
* a hospital (`hospital-<id>`, `hospital_acls`) may WRITE `hospital.<id>.requests`, READ
  `hospital.<id>.statements` and READ its own groups (prefixed `hospital.<id>.`); intake may READ
  that requests topic and WRITE that statements topic. Nothing else: no registry or claim topic,
  no create or delete, no other group.

In a test namespace (`TOPIC_PREFIX`, e.g. `t1a2b3c4.`) every name carries the prefix, so the
services of an integration test run as their own principals with the same rights, confined to the
namespace (`tests/integration/harness.py` grants them with the namespace and revokes them after).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from contracts.topics import (
    HOSPITAL_ID_PATTERN,
    INTAKE,
    TOPICS,
    TopicSpec,
    dead_letter_topic,
    hospital_group_prefix,
    hospital_topics,
)
from runtime.settings import SERVICES
from tools.stack.kafka_admin import Acl, KafkaAdmin
from tools.stack.secrets import BROKER_CN

ADMIN = "admin"
SERVICE_PRINCIPALS: tuple[str, ...] = (*SERVICES, INTAKE)
STACK_PRINCIPALS: tuple[str, ...] = (ADMIN, *SERVICE_PRINCIPALS)
"""The SCRAM users the stack creates (passwords in `.local/secrets/kafka/`)."""
SUPER_USERS: tuple[str, ...] = (f"User:{BROKER_CN}", f"User:{ADMIN}")


def user(name: str) -> str:
    return f"User:{name}"


def hospital_user(hospital_id: str) -> str:
    """The SCRAM user of a hospital: `hospital-<id>`."""
    return f"hospital-{hospital_id}"


def check_hospital_id(hospital_id: str) -> str:
    if not re.match(HOSPITAL_ID_PATTERN, hospital_id):
        raise ValueError(f"{hospital_id!r} cannot be a hospital principal: letters, digits, '_' and '-' only "
                         "(at most 40, no dots: a hospital's topics and groups are named hospital.<id>.…)")
    return hospital_id


def _principal(party: str) -> str:
    """`settlement` → `User:settlement`; `hospital:H001` (a producer or reader in the registry) →
    `User:hospital-H001`."""
    if party.startswith("hospital:"):
        return user(hospital_user(party.split(":", 1)[1]))
    return user(party)


def topic_acls(topics: Iterable[TopicSpec], prefix: str = "") -> set[Acl]:
    """READ for each reader, WRITE for the producer and for the dead-letter owner's `.dlt`."""
    acls: set[Acl] = set()
    for t in topics:
        for reader in t.readers:
            acls.add(Acl(_principal(reader), "topic", prefix + t.name, "literal", "read"))
        if t.producer is not None:
            acls.add(Acl(_principal(t.producer), "topic", prefix + t.name, "literal", "write"))
        if t.dead_lettered_by is not None:
            acls.add(Acl(_principal(t.dead_lettered_by), "topic", prefix + dead_letter_topic(t.name), "literal",
                         "write"))
    return acls


def service_group_prefix(service: str, prefix: str = "") -> str:
    """A service's consumer groups are `<prefix>medsettle.<service>.<input topic>`."""
    return f"{prefix}medsettle.{service}."


def service_acls(prefix: str = "") -> set[Acl]:
    """The services' rights in one namespace (`prefix`; empty: the platform's own topics)."""
    acls = {a for a in topic_acls(TOPICS, prefix) if a.principal in {user(s) for s in SERVICE_PRINCIPALS}}
    for service in SERVICE_PRINCIPALS:
        acls.add(Acl(user(service), "group", service_group_prefix(service, prefix), "prefixed", "read"))
    return acls


def hospital_acls(hospital_id: str, prefix: str = "") -> set[Acl]:
    """A hospital's rights, and intake's on that hospital's two topics."""
    check_hospital_id(hospital_id)
    acls = topic_acls(hospital_topics(hospital_id), prefix)
    acls.add(Acl(user(hospital_user(hospital_id)), "group", prefix + hospital_group_prefix(hospital_id), "prefixed",
                 "read"))
    return acls


async def grant(admin: KafkaAdmin, acls: set[Acl]) -> None:
    """Create the rules (creating one that exists changes nothing) and wait until the broker applies them."""
    await admin.create_acls(acls)
    await admin.wait_acls(acls)


async def revoke_namespace(admin: KafkaAdmin, prefix: str) -> int:
    """Remove every rule on a resource of the namespace `prefix` (its services' and hospitals')."""
    if not prefix:
        raise ValueError("revoke_namespace needs a namespace prefix")
    mine = {a for a in await admin.acls() if a.name.startswith(prefix)}
    return await admin.delete_acls(mine)
