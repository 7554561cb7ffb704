"""Observability without I/O: metric labels and money, trace context through the unit of work,
the claim id on log lines, FastStream's records as our JSON, and the health app's answers."""

from __future__ import annotations

import io
import json
import logging
import uuid
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from contracts import make_envelope
from contracts.codec import EVENT_TYPES
from runtime import metrics, tracing
from runtime.health import Health
from runtime.logging import LogSettings, bound_claim, claim_id_of, configure_logging
from runtime.unit_of_work import InMemoryUnitOfWork
from tests.contract_extremes import extreme

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_dead_letter_reasons_become_a_few_classes() -> None:
    assert metrics.reason_class("key 'x' is not the payload's subject", "key") == "key"
    assert metrics.reason_class("data error: NumericValueOutOfRangeError: ...", None) == "data"
    assert metrics.reason_class("handler error after 3 attempts: ZeroDivisionError", None) == "handler"
    assert metrics.reason_class("payload.lines.0.amount: not a decimal", "payload.lines.0.amount") == "contract"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_statement_money_is_counted_per_fund_in_yuan_and_adjustments_split_by_sign() -> None:
    service = f"t{uuid.uuid4().hex[:6]}"
    statement = extreme(EVENT_TYPES["SettlementStatement"]).model_copy(update={
        "hifp_pay": Decimal("1200.50"), "hifmi_pay": Decimal("300.25"), "maf_pay": Decimal("0.00"),
        "psn_pay": Decimal("99.99"), "outcome": "settled"})
    adjusted = extreme(EVENT_TYPES["SettlementAdjusted"]).model_copy(update={
        "hifp_pay": Decimal("-200.50"), "hifmi_pay": Decimal("10.00"), "maf_pay": Decimal("0.00"),
        "psn_pay": Decimal("190.50")})
    # as the outbox holds them (the amounts above do not add up to the extremes' totals: only the funds matter here)
    envelopes = [SimpleNamespace(event_type=type(p).__name__, payload=p) for p in (statement, adjusted)]
    metrics.observe_emitted(service, envelopes)  # type: ignore[arg-type]
    money = "medsettle_statement_money_yuan_total"
    assert _sample(money, service=service, fund="hifp_pay", kind="statement", direction="paid") == 1200.50
    assert _sample(money, service=service, fund="hifmi_pay", kind="statement", direction="paid") == 300.25
    assert _sample(money, service=service, fund="psn_pay", kind="statement", direction="paid") == 99.99
    assert _sample(money, service=service, fund="maf_pay", kind="statement", direction="paid") == 0.0
    assert _sample(money, service=service, fund="hifp_pay", kind="adjustment", direction="recovered") == 200.50
    assert _sample(money, service=service, fund="hifmi_pay", kind="adjustment", direction="paid") == 10.00
    assert _sample("medsettle_statements_total", service=service, kind="statement", outcome="settled") == 1
    assert _sample("medsettle_events_emitted_total", service=service, event_type="SettlementAdjusted") == 1


def test_a_traceparent_header_gives_its_trace_to_the_record_span() -> None:
    span = tracing.record_span("unit", "claims.discharges", [("traceparent", PARENT.encode())], 7)
    carried = tracing.traceparent_of(span)
    assert tracing.trace_id_of(carried) == TRACE_ID
    assert carried is not None and carried.split("-")[2] != "00f067aa0ba902b7"  # a span of its own
    new = tracing.record_span("unit", "claims.discharges", [("event_type", b"X")], 8)
    assert tracing.trace_id_of(tracing.traceparent_of(new)) not in (None, TRACE_ID)  # a new trace
    assert tracing.trace_id_of("garbage") is None


def test_what_a_handler_emits_carries_the_span_of_the_record_that_caused_it() -> None:
    discharge = extreme(EVENT_TYPES["DischargeRecorded"])
    caused = make_envelope(discharge, correlation_id="H1:1", producer="settlement")
    other_claim = make_envelope(discharge, correlation_id="H1:2", producer="settlement")
    uow = InMemoryUnitOfWork()
    with tracing.traced_batch("unit", "claims.discharges", 3) as index:
        index.add("t", 1, [("traceparent", PARENT.encode())], "e-1", "H9:9", "k-1")
        index.add("t", 2, [], "e-2", "H1:2", "k-2")
        index.add("t", 3, [], "e-3", "H3:3", "k-3")
        uow.emit("claims.basic-settled", caused.model_copy(update={"causation_id": None}))  # by claim: none
        uow.emit("claims.basic-settled", other_claim)  # by correlation id: the record e-2
        first, second = uow.outgoing
        by_event = index.span_for("e-1", "H1:2", None)  # the causation id wins over the correlation id
        assert tracing.trace_id_of(tracing.traceparent_of(by_event)) == TRACE_ID
        by_claim = index.span_for(None, None, "k-2")  # the key last
        assert by_claim is index.span_for(None, "H1:2", None)
        assert len(index.spans()) == 3  # the batch, e-1 and e-2: e-3 caused nothing and has no span
    assert tracing.trace_id_of(second.traceparent) == tracing.trace_id_of(tracing.traceparent_of(by_claim))
    # nothing names a record of the batch: the batch's own span (the person key differs as well)
    assert tracing.trace_id_of(first.traceparent) == tracing.trace_id_of(tracing.traceparent_of(index.batch))
    outside = InMemoryUnitOfWork()
    outside.emit("claims.basic-settled", caused)
    assert outside.outgoing[0].traceparent is None  # outside a traced batch, no header


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("DEBUG", service="unit", options=LogSettings.model_validate({}))
    return stream


def test_faststream_lines_come_out_as_our_json_with_their_context_masked_and_with_the_claim(
        captured: io.StringIO) -> None:
    faststream = logging.getLogger("medsettle.faststream")
    with bound_claim("H001:ZY0001"):
        faststream.info("Received 110101199003071234", extra={"topic": "claims.discharges", "group_id": "g",
                                                             "message_id": "1-2-3", "color_message": "x"})
    logging.getLogger("faststream").warning("its own logger too")
    first, second = _json_lines(captured)
    assert first["event"] == "Received 110101********1234"  # first 6 and last 4 kept
    assert (first["topic"], first["group_id"], first["message_id"]) == ("claims.discharges", "g", "1-2-3")
    assert first["claim_id"] == "H001:ZY0001" and first["logger"] == "medsettle.faststream"
    assert "color_message" not in first
    assert second["logger"] == "faststream" and "claim_id" not in second and second["service"] == "unit"


def test_claim_id_of_each_kind_of_payload() -> None:
    statement = extreme(EVENT_TYPES["SettlementStatement"])
    basic = extreme(EVENT_TYPES["BasicSettled"])
    assert claim_id_of(statement) == statement.claim_id
    assert claim_id_of(basic) == basic.claim.claim_id
    assert claim_id_of(extreme(EVENT_TYPES["EnrollPerson"])) is None
    invalid = make_envelope(extreme(EVENT_TYPES["DischargeRecorded"]), correlation_id="c", producer="p")
    raw = invalid.model_copy(update={"payload": {"hospital_id": "H1", "hospital_claim_id": "Z9", "lines": "?"}})
    assert claim_id_of(raw) == "H1:Z9"


class _Ctx:
    def __init__(self) -> None:
        self.pool = None
        self.publisher = self
        self.subscribers: list[Any] = []
        self.projection_topics = ("enrollment.persons",)
        self.projections: dict[str, Any] = {}
        self.state: dict[str, Any] = {}

    async def ping(self) -> None:
        raise ConnectionError("broker down")


async def _get(app: Health, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET"}, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_readiness_names_every_check_that_fails_and_liveness_answers() -> None:
    health = Health(_Ctx(), "unit")  # type: ignore[arg-type]
    status, body = await _get(health, "/readyz")
    answer = json.loads(body)
    assert status == 503 and answer["ready"] is False
    assert set(answer["failed"]) == {"running", "database", "broker", "projections"}
    assert "broker down" in answer["checks"]["broker"]["error"]
    assert answer["checks"]["consumers"] == {"ok": True}
    assert await _get(health, "/healthz") == (200, b'{"live": true, "service": "unit"}\n')
    status, body = await _get(health, "/metrics")
    assert status == 200 and b"medsettle_records_consumed" in body
    assert (await _get(health, "/nothing"))[0] == 404
