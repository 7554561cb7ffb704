"""Trace context across hops (OpenTelemetry, W3C Trace Context): one claim's path through the
services can be followed in a tracing tool.

Every record a service consumes may carry a `traceparent` header (W3C Trace Context). The batch
consumer starts one span per batch and, per decoded record that causes an event, one span whose
parent is the record's context (a record without one starts a new trace). What the handler emits in answer to a record
is found by its envelope — its `causation_id` (the record's event id), else its `correlation_id`
(the claim id), else its key (the person id, e.g. a later claim re-priced by a correction) — and
gets that record's span as its parent: the outbox stores the `traceparent` with the row and
publishes it as a header. So a statement carries the trace id of the hospital's request that
caused it, through the intake, the three layers and the copy to the hospital's topic.

Export is off by default (no collector here): spans of records that arrive unsampled are not
recorded (`parentbased_always_off`), and trace ids are still made and carried. The standard
`OTEL_*` variables configure the rest: `OTEL_TRACES_EXPORTER` (`console`, or an exporter package's
name such as `otlp` once `opentelemetry-exporter-otlp` is installed), `OTEL_TRACES_SAMPLER`
(`parentbased_always_on` by default once an exporter is set), `OTEL_EXPORTER_OTLP_*`, `OTEL_BSP_*`,
`OTEL_SERVICE_NAME` (default `medsettle-<service>`), `OTEL_RESOURCE_ATTRIBUTES`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from runtime.logging import get_logger

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
log = get_logger("runtime.tracing")

_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    """Reads a Kafka record's headers ((name, bytes) pairs) for the propagator."""

    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _HeaderGetter()


def _exporters(names: str) -> list[SpanExporter]:
    out: list[SpanExporter] = []
    for name in (n.strip() for n in names.split(",")):
        if not name or name == "none":
            continue
        if name == "console":
            out.append(ConsoleSpanExporter())
            continue
        found = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            log.warning("OTEL_TRACES_EXPORTER names an exporter that is not installed; spans are not exported",
                        exporter=name, hint="install its package, e.g. opentelemetry-exporter-otlp for otlp")
            continue
        out.append(next(iter(found)).load()())
    return out


def configure_tracing(service: str, environ: dict[str, str] | None = None) -> TracerProvider:
    """The process's tracer provider (made once; `OTEL_*` as in the module's docstring)."""
    global _provider  # one provider per process, like OpenTelemetry's own global
    if _provider is not None:
        return _provider
    env = os.environ if environ is None else environ
    exporters = _exporters(env.get("OTEL_TRACES_EXPORTER", "none"))
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or f"medsettle-{service}"})
    if exporters or env.get("OTEL_TRACES_SAMPLER"):
        provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER (SDK default: parent-based, on)
    else:
        provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider
    trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing() -> None:
    """Flush and stop the exporters (at service stop)."""
    if _provider is not None:
        _provider.shutdown()


_tracers: dict[str, trace.Tracer] = {}


def tracer(service: str) -> trace.Tracer:
    if (t := _tracers.get(service)) is None:
        t = _tracers[service] = configure_tracing(service).get_tracer(f"medsettle.{service}")
    return t


def context_of(headers: Sequence[tuple[str, bytes]]) -> Context | None:
    """The trace context a record carries in its headers (None when it carries none)."""
    if not any(k == TRACEPARENT for k, _ in headers):
        return None
    return _PROPAGATOR.extract(headers, getter=_GETTER)


def headers_of(span: Span) -> dict[str, str]:
    """The W3C headers (`traceparent`, and `tracestate` when there is one) that make `span` the
    parent of what a record carrying them causes."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def traceparent_of(span: Span) -> str | None:
    return headers_of(span).get(TRACEPARENT)


def trace_id_of(traceparent: str | bytes | None) -> str | None:
    """The trace id (32 hex digits) of a `traceparent` value, or None."""
    if traceparent is None:
        return None
    text = traceparent.decode("latin-1") if isinstance(traceparent, bytes) else traceparent
    parts = text.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@dataclass
class _Record:
    """A consumed record as the index keeps it: its span is made only when something it caused is
    emitted (most records an observer such as the audit reads cause nothing)."""

    service: str
    topic: str
    offset: int
    headers: Sequence[tuple[str, bytes]]
    span: Span | None = None


@dataclass
class TraceIndex:
    """The records of one batch, found by what an outgoing event says about its cause, and their spans."""

    service: str
    batch: Span
    by_event: dict[str, _Record] = field(default_factory=dict)
    by_correlation: dict[str, _Record] = field(default_factory=dict)
    by_key: dict[str, _Record] = field(default_factory=dict)
    _headers: dict[int, str | None] = field(default_factory=dict)

    def add(self, topic: str, offset: int, headers: Sequence[tuple[str, bytes]], event_id: Any,
            correlation_id: str | None, key: str | None) -> None:
        record = _Record(self.service, topic, offset, headers)
        self.by_event[str(event_id)] = record
        if correlation_id:
            self.by_correlation.setdefault(correlation_id, record)
        if key:
            self.by_key.setdefault(key, record)

    def span_for(self, causation_id: Any, correlation_id: str | None, key: str | None) -> Span:
        record = self.by_event.get(str(causation_id)) if causation_id is not None else None
        if record is None and correlation_id:
            record = self.by_correlation.get(correlation_id)
        if record is None and key:
            record = self.by_key.get(key)
        if record is None:
            return self.batch
        if record.span is None:
            record.span = record_span(record.service, record.topic, record.headers, record.offset)
        return record.span

    def traceparent_for(self, causation_id: Any, correlation_id: str | None, key: str | None) -> str | None:
        span = self.span_for(causation_id, correlation_id, key)
        if id(span) not in self._headers:  # one string per span, however many events it caused
            self._headers[id(span)] = traceparent_of(span)
        return self._headers[id(span)]

    def spans(self) -> list[Span]:
        return [self.batch, *(r.span for r in self.by_event.values() if r.span is not None)]


CURRENT: ContextVar[TraceIndex | None] = ContextVar("medsettle_trace_index", default=None)


def traceparent_for(causation_id: Any, correlation_id: str | None, key: str | None) -> str | None:
    """The `traceparent` an event emitted now should carry (None outside a traced batch)."""
    index = CURRENT.get()
    return index.traceparent_for(causation_id, correlation_id, key) if index is not None else None


@contextmanager
def traced_batch(service: str, subscription: str, size: int) -> Iterator[TraceIndex]:
    """A span for one batch of a subscription; the batch's records are added to the index, each
    gets its span (`record_span`) when an event it caused is emitted, and every span ends with the batch."""
    t = tracer(service)
    batch = t.start_span(f"{subscription} process", kind=SpanKind.CONSUMER,
                         attributes={"messaging.system": "kafka", "messaging.destination.name": subscription,
                                     "messaging.batch.message_count": size, "medsettle.service": service})
    index = TraceIndex(service, batch)
    token = CURRENT.set(index)
    try:
        yield index
    finally:
        CURRENT.reset(token)
        for span in index.spans():
            span.end()


def record_span(service: str, topic: str, headers: Sequence[tuple[str, bytes]], offset: int) -> Span:
    """A span for one record, child of the context the record carries (a new trace without one)."""
    parent = context_of(headers)
    return tracer(service).start_span(f"{topic} process", context=parent, kind=SpanKind.CONSUMER,
                                      attributes={"messaging.destination.name": topic, "messaging.kafka.offset": offset})


def new_traceparent(service: str = "client") -> str | None:
    """A `traceparent` starting a new trace (what a client such as the hospital CLI sends)."""
    span = tracer(service).start_span("publish", kind=SpanKind.PRODUCER)
    span.end()
    return traceparent_of(span)
