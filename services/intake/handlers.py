"""The intake's batch handlers: contracts in, `routing` decides, one transaction of what was
processed plus the outgoing events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from contracts.topics import sender_of
from runtime.logging import get_logger
from runtime.unit_of_work import Inbound, UnitOfWork
from services.intake.routing import route_answer, route_request

log = get_logger("intake.handlers")

EnsureTopics = Callable[[Iterable[str]], Awaitable[None]]


class RequestsHandler:
    """Hospitals' requests (from any `hospital.<id>.requests`) to `claims.discharges` or refused."""

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound]) -> None:
        new = await uow.new_only(batch, lambda m: f"{m.topic}:{m.envelope.event_id}")
        refused = 0
        for m in new:
            sender = sender_of(m.topic, uow.topic_prefix)
            if sender is None:  # the subscription's pattern matches requests topics only
                raise ValueError(f"{m.topic} is not a hospital's requests topic")
            topic, envelope = route_request(sender, m.envelope)
            uow.emit(topic, envelope)
            refused += envelope.event_type == "ClaimRequestRefused"
        if refused:
            log.info("requests refused: provider is not the sending hospital", count=refused)


class AnswersHandler:
    """Statements, adjustments, reversals and refusals copied to the hospitals' statements topics."""

    def __init__(self, ensure_topics: EnsureTopics) -> None:
        self.ensure_topics = ensure_topics

    async def __call__(self, uow: UnitOfWork, batch: list[Inbound]) -> None:
        new = await uow.new_only(batch, lambda m: f"{m.topic}:{m.envelope.event_id}")
        copies = [route_answer(m.envelope) for m in new]
        await self.ensure_topics({uow.topic_prefix + topic for topic, _ in copies})
        for topic, envelope in copies:
            uow.emit(topic, envelope)
