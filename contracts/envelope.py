"""The envelope every message on the platform's topics carries.

The payload is a contract model named by `event_type`; `schema_version` is that model's version.
Events derived from another event get a deterministic id (`derived_event_id`) so that a
re-emission after a crash or a replay carries the same id and consumers can drop it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.limits import Timestamp, text

NAMESPACE = uuid.UUID("6f0c1b1e-3a51-4b7e-9d0a-1f6c2d8e9a40")
"""Namespace of every derived event id (uuid5). Changing it would break idempotency on replay."""


class Contract(BaseModel):
    """Base of every payload model: frozen and versioned.

    Unknown fields are ignored, so a consumer of version N reads messages of a later version whose
    new fields it does not know (the compatibility test guarantees new fields are optional).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    SCHEMA_VERSION: ClassVar[int] = 2
    """Version 2 bounds every field as its column is (`contracts.limits`); version 1 had no bounds."""

    def message_key(self) -> str:
        """The Kafka message key this payload is published under: its subject (the person id on
        claim topics), so that one subject's events stay in order in one partition. Consumers
        dead-letter a record whose key is not this."""
        raise NotImplementedError(f"{type(self).__name__} does not name its message key")


P = TypeVar("P")
"""The payload: a `Contract`, or the payload as sent (a dict) before it is validated."""


class Envelope(BaseModel, Generic[P]):
    """Metadata of one event plus its payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    event_type: Annotated[str, text(64)]
    schema_version: int = Field(ge=1, le=1000)
    occurred_at: Timestamp
    correlation_id: Annotated[str, text(200)] = Field(
        description="claim id for claim events, person or provider id for enrollment events")
    causation_id: uuid.UUID | None = Field(default=None, description="event_id of the event this one was derived from")
    producer: Annotated[str, text(100)] = Field(description="service or client that wrote the event")
    payload: P


def derived_event_id(event_type: str, natural_key: str) -> uuid.UUID:
    """Deterministic id of an event derived from `natural_key` (e.g. a claim id)."""
    return uuid.uuid5(NAMESPACE, f"{event_type}:{natural_key}")


def now() -> datetime:
    return datetime.now(UTC)


def make_envelope(
    payload: Contract,
    *,
    correlation_id: str,
    producer: str,
    event_id: uuid.UUID | None = None,
    causation_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope[Any]:
    """Wrap a payload; without `event_id` a random one is drawn (original events only)."""
    typed: type[Envelope[Any]] = Envelope[type(payload)]  # type: ignore[misc,assignment]  # the payload's model
    return typed(
        event_id=event_id or uuid.uuid4(),
        event_type=type(payload).__name__,
        schema_version=type(payload).SCHEMA_VERSION,
        occurred_at=occurred_at or now(),
        correlation_id=correlation_id,
        causation_id=causation_id,
        producer=producer,
        payload=payload,
    )
