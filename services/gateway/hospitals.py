"""Signing in as a hospital: HTTP Basic with the hospital's broker credentials, verified by the
broker itself.

The user is the hospital's SCRAM user `hospital-<id>` (the bare `<id>` is taken for it too) and
the password the one `./medsettle operator hospital-credentials <id>` issued. The gateway starts
a Kafka producer with them: the broker's SASL/SCRAM handshake is the check, so the gateway keeps
no password (not even a hash of one: the broker holds the SCRAM verifier). A signed-in session is
that producer, kept for `SESSION_TTL_S` under a SHA-256 of the user and password (then the next
request signs in again, so a rotated or withdrawn password stops working within that time);
what it publishes the broker's ACLs allow or refuse as for the hospital's own client. A failed
sign-in is remembered for `FAILED_TTL_S` under the same hash, so a client repeating a wrong
password does not cost a handshake per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from contracts.topics import HOSPITAL_ID_PATTERN
from runtime.kafka_access import KafkaAccess
from runtime.logging import get_logger

SESSION_TTL_S = 60.0
FAILED_TTL_S = 5.0
USER_PREFIX = "hospital-"

log = get_logger("gateway.hospitals")


class NotSignedIn(Exception):
    """Wrong or missing credentials (HTTP 401)."""


class BrokerUnavailable(Exception):
    """The broker does not answer: the credentials cannot be checked now (HTTP 503)."""


def hospital_of(username: str) -> str | None:
    """The hospital a Basic user names: `hospital-<id>` (or `<id>`), None if it cannot be one."""
    hospital_id = username.removeprefix(USER_PREFIX)
    return hospital_id if re.match(HOSPITAL_ID_PATTERN, hospital_id) else None


@dataclass
class Session:
    hospital_id: str
    producer: AIOKafkaProducer
    expires: float


class HospitalSessions:
    """Signed-in hospitals of this instance (nothing of it is needed by another instance)."""

    def __init__(self, access: KafkaAccess, broker_answers: Callable[[], Awaitable[object]]) -> None:
        self.access = access
        """the gateway's own access: the broker's address and CA (its user is replaced by the hospital's)"""
        self.broker_answers = broker_answers
        """raises when the broker does not answer the gateway itself (tells a wrong password from an outage)"""
        self._sessions: dict[str, Session] = {}
        self._retired: list[Session] = []
        """replaced sessions, closed a TTL later: requests that took one may still be sending with it"""
        self._failed: dict[str, float] = {}
        self._pending: dict[str, asyncio.Future[Session]] = {}

    async def sign_in(self, username: str, password: str) -> Session:
        hospital_id = hospital_of(username)
        if hospital_id is None or not password:
            raise NotSignedIn("the user is a hospital's broker user, hospital-<id>, with its password")
        key = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
        now = time.monotonic()
        session = self._sessions.get(key)
        if session is not None and session.expires > now:
            return session
        if self._failed.get(key, 0.0) > now:
            raise NotSignedIn("wrong user or password")
        if (pending := self._pending.get(key)) is not None:  # one handshake for concurrent requests
            return await asyncio.shield(pending)
        future: asyncio.Future[Session] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            fresh = await self._handshake(hospital_id, username, password)
        except BaseException as exc:
            if isinstance(exc, NotSignedIn):
                self._failed[key] = time.monotonic() + FAILED_TTL_S
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            future.set_result(fresh)
            old = self._sessions.pop(key, None)
            self._sessions[key] = fresh
            if old is not None:
                self._retired.append(old)
            return fresh
        finally:
            del self._pending[key]
            self._forget_expired()

    async def _handshake(self, hospital_id: str, username: str, password: str) -> Session:
        user = USER_PREFIX + hospital_id
        producer = AIOKafkaProducer(**self.access.as_user(user, password).options(), enable_idempotence=True,
                                    linger_ms=1, request_timeout_ms=10_000, client_id=f"medsettle-gateway-{hospital_id}")
        try:
            await producer.start()
        except KafkaConnectionError:
            await producer.stop()
            try:
                await self.broker_answers()
            except Exception as exc:  # noqa: BLE001 - any failure to reach the broker is an outage to the caller
                raise BrokerUnavailable(f"the broker does not answer: {type(exc).__name__}") from None
            log.info("sign-in refused by the broker", hospital=hospital_id)
            raise NotSignedIn("wrong user or password") from None
        except KafkaError as exc:
            await producer.stop()
            raise BrokerUnavailable(f"the broker does not answer: {type(exc).__name__}") from None
        log.info("hospital signed in", hospital=hospital_id)
        return Session(hospital_id, producer, time.monotonic() + SESSION_TTL_S)

    def _forget_expired(self) -> None:
        """Close the sessions unused for a TTL after they expired, and the replaced ones a TTL after
        they expired (no request still sends with them)."""
        now = time.monotonic()
        done = [self._sessions.pop(k) for k, s in list(self._sessions.items()) if s.expires <= now - SESSION_TTL_S]
        done += [s for s in self._retired if s.expires <= now - SESSION_TTL_S]
        self._retired = [s for s in self._retired if s.expires > now - SESSION_TTL_S]
        for session in done:
            asyncio.get_running_loop().create_task(_close(session))
        for key in [k for k, until in self._failed.items() if until <= now]:
            del self._failed[key]

    async def close(self) -> None:
        sessions, self._sessions, self._retired = [*self._sessions.values(), *self._retired], {}, []
        await asyncio.gather(*(_close(s) for s in sessions))


async def _close(session: Session) -> None:
    with contextlib.suppress(Exception):
        await session.producer.stop()
