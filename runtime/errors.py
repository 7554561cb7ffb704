"""What kind of failure an exception is, and how a consumer waits before it tries again.

| class | examples | what the consumer does |
|---|---|---|
| infrastructure | broker or database unreachable, connection lost, timeouts, serialization conflicts | pauses and retries with capped exponential back-off and jitter, for as long as it takes; never dead-letters |
| fatal | the service's database or one of its tables is gone (`tools.stack reset` under a running service) | stops the service with a clear message; commits nothing, dead-letters nothing |
| data | a value the database refuses, an overflow, a contract a derived event would break | dead-letters that one record at once |
| unknown | anything else (a bug) | retries that record a bounded number of times with back-off, then dead-letters it |
"""

from __future__ import annotations

import asyncio
import decimal
import enum
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from aiokafka import errors as kafka_errors
from pydantic import ValidationError

from runtime.logging import get_logger

log = get_logger("runtime.errors")
T = TypeVar("T")


class ErrorClass(enum.Enum):
    INFRASTRUCTURE = "infrastructure"
    FATAL = "fatal"
    DATA = "data"
    UNKNOWN = "unknown"


class ServiceFatal(RuntimeError):
    """The service cannot go on (its database schema is gone): it stops rather than eat its input."""


_INFRASTRUCTURE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncio.TimeoutError, ConnectionError,
    asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InsufficientResourcesError, asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError, asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.QueryCanceledError,
)
_FATAL: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.UndefinedTableError, asyncpg.exceptions.UndefinedColumnError,
    asyncpg.exceptions.InvalidCatalogNameError, asyncpg.exceptions.InvalidSchemaNameError,
    asyncpg.exceptions.UndefinedFunctionError, ServiceFatal,
)
_DATA: tuple[type[BaseException], ...] = (
    asyncpg.DataError, asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.ProgramLimitExceededError, OverflowError, decimal.DecimalException, ValidationError,
    UnicodeError, kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError,
)
_KAFKA_DATA = (kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError)


def classify(exc: BaseException) -> ErrorClass:
    """The class of a failure (see the module's table)."""
    if isinstance(exc, _FATAL):
        return ErrorClass.FATAL
    if isinstance(exc, _DATA):
        return ErrorClass.DATA
    if isinstance(exc, _INFRASTRUCTURE):
        return ErrorClass.INFRASTRUCTURE
    if isinstance(exc, kafka_errors.KafkaError) and not isinstance(exc, _KAFKA_DATA):
        return ErrorClass.INFRASTRUCTURE  # unreachable broker, timeouts, leader changes, ...
    return ErrorClass.UNKNOWN


@dataclass
class Backoff:
    """Capped exponential back-off with full jitter: attempt n waits a random time up to
    min(cap, base · 2^n)."""

    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(self.base / 2, min(self.cap, self.base * 2 ** min(attempt, 30)))


@dataclass
class RetryLog:
    """Logs a repeating failure once per `interval` seconds, with how many attempts it took."""

    what: str
    interval: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _last: float | None = None
    attempts: int = 0

    def failed(self, exc: BaseException, **context: Any) -> None:
        self.attempts += 1
        now = self.clock()
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            log.warning(f"{self.what} failed; retrying with back-off", error=f"{type(exc).__name__}: {exc}",
                        attempts=self.attempts, **context)

    def recovered(self, **context: Any) -> None:
        if self.attempts:
            log.info(f"{self.what} recovered", attempts=self.attempts, **context)
        self.attempts, self._last = 0, None


async def retry_infrastructure(what: str, action: Callable[[], Awaitable[T]], backoff: Backoff | None = None,
                               **context: Any) -> T:
    """Run `action` until it succeeds or fails with something other than an infrastructure error
    (which is raised). Waits with back-off between attempts; cancellable (service shutdown)."""
    backoff = backoff or Backoff()
    retries = RetryLog(what)
    while True:
        try:
            result = await action()
        except Exception as exc:
            if classify(exc) is not ErrorClass.INFRASTRUCTURE:
                raise
            retries.failed(exc, **context)
            await asyncio.sleep(backoff.delay(retries.attempts))
            continue
        retries.recovered(**context)
        return result
