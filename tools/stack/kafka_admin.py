"""What aiokafka's admin client lacks, spoken in Kafka's own protocol through it: ACLs (CreateAcls,
DeleteAcls, DescribeAcls v1) and SCRAM credentials (DescribeUserScramCredentials,
AlterUserScramCredentials v0, KIP-554).

Why not Kafka's Java tools (`kafka-acls`, `kafka-configs`)? A JVM per call costs seconds on this
machine, and the test harness grants and revokes a namespace's ACLs around every integration test;
and the Java tools take a password on their command line. Here a request is one round trip over
the admin's own authenticated connection, and a password never leaves this process: the SCRAM
credential is salted and hashed here (PBKDF2-HMAC-SHA-512, RFC 5802 `Hi()`, exactly as Kafka's
`ScramFormatter`), and the broker stores only that.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Array,
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    String,
    TaggedFields,
)

from runtime.kafka_access import KafkaAccess

# ------------------------------------------------------------------------------- the model

ResourceType = Literal["topic", "group", "cluster"]
PatternType = Literal["literal", "prefixed"]
Operation = Literal["read", "write", "describe", "create", "delete", "alter", "idempotent_write"]

RESOURCE_TYPES: dict[str, int] = {"any": 1, "topic": 2, "group": 3, "cluster": 4}
PATTERN_TYPES: dict[str, int] = {"any": 1, "literal": 3, "prefixed": 4}
OPERATIONS: dict[str, int] = {"any": 1, "all": 2, "read": 3, "write": 4, "create": 5, "delete": 6, "alter": 7,
                              "describe": 8, "idempotent_write": 12}
ALLOW, ANY_PERMISSION = 3, 1
SCRAM_SHA_512 = 2
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule: `principal` may `operation` on the resource (from any host)."""

    principal: str
    """`User:<name>`."""
    resource_type: ResourceType
    name: str
    pattern: PatternType
    operation: Operation

    def describe(self) -> str:
        where = f"{self.name}*" if self.pattern == "prefixed" else self.name
        return f"{self.principal} {self.operation.upper()} {self.resource_type} {where}"


class AdminRequestError(RuntimeError):
    """The broker refused an admin request (the message names what and why)."""


# ------------------------------------------------------------------------------- protocol


def _request_class(struct: type[RequestStruct]) -> type[Request[Any]]:
    """A `Request` that sends exactly `struct` (one version: every broker of 4.x knows it)."""

    class One(Request[struct]):
        API_KEY: ClassVar[int] = struct.API_KEY

        def __init__(self, *fields: Any) -> None:
            self.fields = fields

        def build(self, request_struct_class: type[Any]) -> Any:
            return request_struct_class(*self.fields)

    return One


_BINDING = (("resource_type", Int8), ("resource_name", String("utf-8")), ("pattern_type", Int8),
            ("principal", String("utf-8")), ("host", String("utf-8")), ("operation", Int8), ("permission_type", Int8))
"""An ACL binding (or a filter of bindings) on the wire, in v1 of the ACL requests."""


class DescribeAclsResponse_v1(Response):
    API_KEY = 29
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32), ("error_code", Int16), ("error_message", String("utf-8")),
        ("resources", Array(("resource_type", Int8), ("resource_name", String("utf-8")), ("pattern_type", Int8),
                            ("acls", Array(("principal", String("utf-8")), ("host", String("utf-8")),
                                           ("operation", Int8), ("permission_type", Int8))))),
    )


class DescribeAclsRequest_v1(RequestStruct):
    API_KEY = 29
    API_VERSION = 1
    RESPONSE_TYPE = DescribeAclsResponse_v1
    SCHEMA = Schema(*_BINDING)


class CreateAclsResponse_v1(Response):
    API_KEY = 30
    API_VERSION = 1
    SCHEMA = Schema(("throttle_time_ms", Int32),
                    ("results", Array(("error_code", Int16), ("error_message", String("utf-8")))))


class CreateAclsRequest_v1(RequestStruct):
    API_KEY = 30
    API_VERSION = 1
    RESPONSE_TYPE = CreateAclsResponse_v1
    SCHEMA = Schema(("creations", Array(*_BINDING)))


class DeleteAclsResponse_v1(Response):
    API_KEY = 31
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("filter_results", Array(
            ("error_code", Int16), ("error_message", String("utf-8")),
            ("matching_acls", Array(("error_code", Int16), ("error_message", String("utf-8")), *_BINDING)))),
    )


class DeleteAclsRequest_v1(RequestStruct):
    API_KEY = 31
    API_VERSION = 1
    RESPONSE_TYPE = DeleteAclsResponse_v1
    SCHEMA = Schema(("filters", Array(*_BINDING)))


class DescribeUserScramCredentialsResponse_v0(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32), ("error_code", Int16), ("error_message", CompactString("utf-8")),
        ("results", CompactArray(
            ("user", CompactString("utf-8")), ("error_code", Int16), ("error_message", CompactString("utf-8")),
            ("credential_infos", CompactArray(("mechanism", Int8), ("iterations", Int32), ("tags", TaggedFields))),
            ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class DescribeUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = DescribeUserScramCredentialsResponse_v0
    SCHEMA = Schema(("users", CompactArray(("name", CompactString("utf-8")), ("tags", TaggedFields))),
                    ("tags", TaggedFields))


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("user", CompactString("utf-8")), ("error_code", Int16),
                                 ("error_message", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields))),
        ("upsertions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("iterations", Int32),
                                    ("salt", CompactBytes), ("salted_password", CompactBytes),
                                    ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


DescribeAcls = _request_class(DescribeAclsRequest_v1)
CreateAcls = _request_class(CreateAclsRequest_v1)
DeleteAcls = _request_class(DeleteAclsRequest_v1)
DescribeScram = _request_class(DescribeUserScramCredentialsRequest_v0)
AlterScram = _request_class(AlterUserScramCredentialsRequest_v0)

_NAMES = {v: k for k, v in RESOURCE_TYPES.items()}, {v: k for k, v in PATTERN_TYPES.items()}, \
    {v: k for k, v in OPERATIONS.items()}


def _wire(acl: Acl) -> tuple[Any, ...]:
    return (RESOURCE_TYPES[acl.resource_type], acl.name, PATTERN_TYPES[acl.pattern], acl.principal, "*",
            OPERATIONS[acl.operation], ALLOW)


def salted_password(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """SCRAM's `SaltedPassword := Hi(Normalize(password), salt, i)` for SHA-512 (what the broker derives
    its stored and server keys from); the password itself is never sent."""
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)


# ------------------------------------------------------------------------------- the client


class KafkaAdmin:
    """An admin connection (`async with KafkaAdmin(access) as admin:`) with aiokafka's admin
    client (`.client`: topics, groups) and the ACL and SCRAM requests above."""

    def __init__(self, access: KafkaAccess | None = None, *, timeout: float = 30.0, **options: Any) -> None:
        self.client = AIOKafkaAdminClient(**(access.options() if access is not None else {}), **options,
                                          request_timeout_ms=int(timeout * 1000))

    async def __aenter__(self) -> KafkaAdmin:
        await self.client.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def _send(self, request: Request[Any]) -> Any:
        return await self.client._send_request(request)  # noqa: SLF001 - aiokafka has no public raw request

    # ---- ACLs

    async def create_acls(self, acls: Iterable[Acl]) -> None:
        acls = sorted(set(acls))
        if not acls:
            return
        response = await self._send(CreateAcls([_wire(a) for a in acls]))
        failed = [f"{a.describe()}: error {code} {message or ''}".strip()
                  for a, (code, message) in zip(acls, response.results, strict=True) if code]
        if failed:
            raise AdminRequestError("creating ACLs failed: " + "; ".join(failed[:5]))

    async def delete_acls(self, acls: Iterable[Acl]) -> int:
        """Delete exactly these rules; returns how many the broker removed."""
        acls = sorted(set(acls))
        if not acls:
            return 0
        response = await self._send(DeleteAcls([_wire(a) for a in acls]))
        errors = [f"error {code} {message or ''}" for code, message, _ in response.filter_results if code]
        if errors:
            raise AdminRequestError("deleting ACLs failed: " + "; ".join(errors[:5]))
        return sum(len(matching) for _, _, matching in response.filter_results)

    async def acls(self, principal: str | None = None) -> set[Acl]:
        """Every ALLOW rule the broker has (of one principal)."""
        response = await self._send(DescribeAcls(RESOURCE_TYPES["any"], None, PATTERN_TYPES["any"], principal, None,
                                                 OPERATIONS["any"], ANY_PERMISSION))
        if response.error_code:
            raise AdminRequestError(f"describing ACLs failed: error {response.error_code} {response.error_message}")
        rtypes, patterns, operations = _NAMES
        found = set()
        for rtype, name, pattern, rules in response.resources:
            for who, _host, op, permission in rules:
                if permission == ALLOW and rtype in rtypes and op in operations:
                    found.add(Acl(who, rtypes[rtype], name, patterns[pattern], operations[op]))  # type: ignore[arg-type]
        return found

    async def wait_acls(self, acls: Iterable[Acl], *, present: bool = True, timeout: float = 15.0) -> None:
        """Wait until the broker serving this connection has applied these rules (a rule is written by
        the controller and reaches the broker's authorizer a moment later)."""
        wanted = set(acls)
        deadline = time.monotonic() + timeout
        while True:
            have = await self.acls()
            if (wanted <= have) if present else not (wanted & have):
                return
            if time.monotonic() > deadline:
                raise AdminRequestError(f"the broker did not apply {len(wanted)} ACL changes within {timeout:.0f}s")
            await asyncio.sleep(0.05)

    # ---- SCRAM users

    async def scram_users(self, names: Sequence[str] | None = None) -> set[str]:
        """Which of `names` (all users: None) have SCRAM-SHA-512 credentials."""
        users: list[tuple[str, dict[int, bytes]]] | None = None if names is None else [(n, {}) for n in names]
        response = await self._send(DescribeScram(users, {}))
        found = set()
        for user, code, _message, infos, _tags in response.results or ():
            if code == 0 and any(mechanism == SCRAM_SHA_512 for mechanism, _i, _t in infos):
                found.add(user)
        return found

    async def set_passwords(self, passwords: dict[str, str]) -> None:
        """Create or replace the SCRAM-SHA-512 credential of each user (a fresh salt each time)."""
        upsertions: list[tuple[Any, ...]] = []
        for name, password in sorted(passwords.items()):
            salt = secrets.token_bytes(32)
            upsertions.append((name, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, salted_password(password, salt), {}))
        if upsertions:
            self._check_users(await self._send(AlterScram([], upsertions, {})), "setting credentials")

    async def delete_users(self, names: Iterable[str]) -> None:
        names = sorted(set(names))
        existing = await self.scram_users(names) if names else set()
        deletions: list[tuple[Any, ...]] = [(n, SCRAM_SHA_512, {}) for n in names if n in existing]
        if deletions:
            self._check_users(await self._send(AlterScram(deletions, [], {})), "deleting users")

    @staticmethod
    def _check_users(response: Any, what: str) -> None:
        failed = [f"{user}: error {code} {message or ''}".strip() for user, code, message, _t in response.results
                  if code]
        if failed:
            raise AdminRequestError(f"{what} failed: " + "; ".join(failed))

    async def wait_user(self, access: KafkaAccess, timeout: float = 15.0) -> None:
        """Wait until `access` can log in (a new credential reaches the broker a moment after the
        controller wrote it)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                async with KafkaAdmin(access, timeout=5.0) as probe:
                    await probe.client.list_topics()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
