"""Who may do what on the broker: the principals and their ACLs, derived from the topic registry.

The broker denies everything that no ACL allows (`allow.everyone.if.no.acl.found=false`); its super
users are its own mutual-TLS identity (`User:kafka-broker`) and `User:admin` (operators, the stack's
tooling, the tests' harness). Every other principal holds exactly what `contracts.topics` says it
needs, and nothing is written by hand:

* a service (`enrollment`, `settlement`, `catastrophic`, `assistance`, `audit`, `intake`, `gateway`) may READ
  each topic that lists it in `readers` (its subscriptions and registry projections), WRITE each
  topic that lists it in `producers` (intake for `HOSPITAL_PRODUCER`: it writes what hospitals send)
  and the `.dlt` of each topic it dead-letters (`dead_lettered_by`), and READ its own consumer
  groups (prefixed `medsettle.<service>.`). READ and WRITE imply DESCRIBE; WRITE on a topic lets an
  idempotent producer start (KIP-679), so no cluster right is given to anyone (the gateway writes no
  topic: it publishes as the signed-in hospital, and its own clients are not idempotent producers);
* intake also may READ, WRITE and CREATE the hospitals' topics (prefixed `hospital.`): it
  subscribes to every `hospital.<id>.requests` by pattern, writes every `hospital.<id>.statements`
  (creating one a hospital never had) and its dead letters;
* the operator console (`console`, `console_acls`; services/console/) may READ the dead-letter
  topics, WRITE the platform's inputs from outside that their letters are redriven to
  (`enrollment.commands`, `claims.discharges`: `redrivable`), READ the redrive group
  `medsettle.operator.redrive` and DESCRIBE the registry's topics and the services' groups
  (consumer-group lag). It may not read a claim topic, write a service's output, nor touch a
  hospital's topics (those letters are redriven with `operator dlt redrive`, as admin);
* a hospital (`hospital-<id>`, `hospital_acls`) may WRITE `hospital.<id>.requests`, READ
  `hospital.<id>.statements` and READ its own groups (prefixed `hospital.<id>.`). Nothing else: no
  registry or claim topic, no create or delete, no other group.

In a test namespace (`TOPIC_PREFIX`, e.g. `t1a2b3c4.`) every name carries the prefix, so the
services of an integration test run as their own principals with the same rights, confined to the
namespace (`tests/integration/harness.py` grants them with the namespace and revokes them after).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from contracts.topics import (
    HOSPITAL_ID_PATTERN,
    HOSPITAL_PRODUCER,
    HOSPITAL_TOPIC_PREFIX,
    INTAKE,
    TOPICS,
    TopicSpec,
    dead_letter_topic,
    hospital_group_prefix,
    hospital_requests_topic,
    hospital_statements_topic,
)
from runtime.settings import SERVICES
from tools.stack.kafka_admin import Acl, KafkaAdmin
from tools.stack.secrets import BROKER_CN

ADMIN = "admin"
CONSOLE = "console"
"""The operator console's principal (dead letters, redrive, lag)."""
SERVICE_PRINCIPALS: tuple[str, ...] = SERVICES  # intake among them
STACK_PRINCIPALS: tuple[str, ...] = (ADMIN, *SERVICE_PRINCIPALS, CONSOLE)
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


def writer(producer: str) -> str | None:
    """The principal that writes what names `producer` (`TopicSpec.producers`): the service itself,
    intake for a hospital (it moves their requests), none but admin for `operator`."""
    if producer == HOSPITAL_PRODUCER:
        return user(INTAKE)
    return user(producer) if producer in SERVICE_PRINCIPALS else None


def topic_acls(topics: Iterable[TopicSpec], prefix: str = "") -> set[Acl]:
    """READ for each reader, WRITE for each producing service and for the dead-letter owner's `.dlt`."""
    acls: set[Acl] = set()
    for t in topics:
        for reader in t.readers:
            acls.add(Acl(user(reader), "topic", prefix + t.name, "literal", "read"))
        for producer in t.producers:
            if (who := writer(producer)) is not None:
                acls.add(Acl(who, "topic", prefix + t.name, "literal", "write"))
        if t.dead_lettered_by is not None:
            acls.add(Acl(user(t.dead_lettered_by), "topic", prefix + dead_letter_topic(t.name), "literal", "write"))
    return acls


def service_group_prefix(service: str, prefix: str = "") -> str:
    """A service's consumer groups are `<prefix>medsettle.<service>.<input topic>`."""
    return f"{prefix}medsettle.{service}."


def service_acls(prefix: str = "") -> set[Acl]:
    """The services' rights in one namespace (`prefix`; empty: the platform's own topics)."""
    acls = topic_acls(TOPICS, prefix)
    for service in SERVICE_PRINCIPALS:
        acls.add(Acl(user(service), "group", service_group_prefix(service, prefix), "prefixed", "read"))
    for operation in ("read", "write", "create"):  # the hospitals' topics
        acls.add(Acl(user(INTAKE), "topic", prefix + HOSPITAL_TOPIC_PREFIX, "prefixed", operation))
    return acls


OPERATOR = "operator"
"""`TopicSpec.producers` of what operators send (enrollment commands)."""
REDRIVE_GROUP = "medsettle.operator.redrive"
"""The consumer group whose commits record what was redriven (tools/operator/dlt.py)."""


def redrivable(topic: str) -> bool:
    """May the console redrive the dead letters of `topic` (unprefixed)? Those of the platform's inputs
    from outside (what operators and hospitals send: `enrollment.commands`, `claims.discharges`), so
    the console never writes a service's output (a statement, a layer's result, a registry snapshot).
    The letters of the other topics, and of a hospital's own requests topic, are redriven with
    `operator dlt redrive`, as admin."""
    return any(t.name == topic and t.dead_lettered_by is not None
               and any(p in (HOSPITAL_PRODUCER, OPERATOR) for p in t.producers) for t in TOPICS)


def console_acls(prefix: str = "", name: str = CONSOLE) -> set[Acl]:
    """The operator console's rights in one namespace (`name`: its principal, `console`; a test's own)."""
    who = user(name)
    acls = {Acl(who, "group", prefix + REDRIVE_GROUP, "literal", "read"),
            Acl(who, "group", prefix + "medsettle.", "prefixed", "describe")}
    for t in TOPICS:
        acls.add(Acl(who, "topic", prefix + t.name, "literal", "describe"))
        acls.add(Acl(who, "topic", prefix + dead_letter_topic(t.name), "literal", "read"))
        if redrivable(t.name):
            acls.add(Acl(who, "topic", prefix + t.name, "literal", "write"))
    return acls


def hospital_acls(hospital_id: str, prefix: str = "") -> set[Acl]:
    """A hospital's rights: its requests (write), its statements (read), its own groups."""
    who = user(hospital_user(check_hospital_id(hospital_id)))
    return {Acl(who, "topic", prefix + hospital_requests_topic(hospital_id), "literal", "write"),
            Acl(who, "topic", prefix + hospital_statements_topic(hospital_id), "literal", "read"),
            Acl(who, "group", prefix + hospital_group_prefix(hospital_id), "prefixed", "read")}


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
