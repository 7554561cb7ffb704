"""Hospitals as principals: `./medsettle operator hospital-credentials HOSPITAL_ID`.

Issuing credentials creates (or, issued again, rotates) the SCRAM user `hospital-<id>` with a new
generated password, the hospital's topics `hospital.<id>.requests` and `hospital.<id>.statements`,
and the ACLs of `tools.stack.principals.hospital_acls`: the hospital writes its requests, reads its
statements and its own groups (intake's rights on every hospital's topics are the stack's). The password is returned once, to be shown once: the broker keeps only its SCRAM
hash, and nothing here writes it anywhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from pydantic import SecretStr

from runtime.kafka_access import KafkaAccess
from tools.hospital.credentials import HospitalCredentials
from tools.stack import principals
from tools.stack.kafka import ensure_topics, hospital_topic_plan
from tools.stack.kafka_admin import KafkaAdmin


async def issue_many(admin: KafkaAccess, hospital_ids: Sequence[str], prefix: str = "") -> list[HospitalCredentials]:
    """Create or rotate the credentials of each hospital (as `admin`), with their topics and rights;
    returns them with their passwords, usable at once."""
    for hospital_id in hospital_ids:
        principals.check_hospital_id(hospital_id)
    if not hospital_ids:
        return []
    await ensure_topics(admin, plans=hospital_topic_plan(list(hospital_ids), prefix))
    ca_pem = admin.ca_text()
    issued = [HospitalCredentials(h, KafkaAccess(admin.bootstrap_servers, admin.security_protocol,
                                                 principals.hospital_user(h), SecretStr(secrets.token_urlsafe(32)),
                                                 ca_pem=ca_pem))
              for h in hospital_ids]
    async with KafkaAdmin(admin) as as_admin:
        await as_admin.set_passwords({c.access.username: c.access.password.get_secret_value()  # type: ignore[misc,union-attr]
                                      for c in issued})
        await principals.grant(as_admin, set().union(*(principals.hospital_acls(h, prefix) for h in hospital_ids)))
        await as_admin.wait_user(issued[-1].access)  # credentials reach the broker in order: the last one last
    return issued


async def issue(admin: KafkaAccess, hospital_id: str, prefix: str = "") -> HospitalCredentials:
    """`issue_many` of one hospital."""
    return (await issue_many(admin, [hospital_id], prefix))[0]


async def withdraw(admin: KafkaAccess, hospital_id: str, prefix: str = "") -> None:
    """Delete the hospital's user and its ACLs (its topics stay: they are the record)."""
    async with KafkaAdmin(admin) as as_admin:
        await as_admin.delete_users([principals.hospital_user(hospital_id)])
        await as_admin.delete_acls(principals.hospital_acls(hospital_id, prefix))
