"""Observability against the real stack: every service as a process answers `/healthz`, `/readyz`
and `/metrics`; a claim keeps its trace id across every hop (hospital → intake → the three
layers → the statement and its copy to the hospital); the metrics count what really happened (the
money of the statements read back from the topic); a dead letter's log line names its claim; and
readiness fails within seconds while PostgreSQL is stopped, then recovers."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from contracts import decode_envelope, encode
from contracts.topics import (
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    STATEMENTS,
    dead_letter_topic,
    hospital_statements_topic,
)
from runtime.health import probe
from runtime.kafka_access import KafkaAccess
from runtime.tracing import trace_id_of
from services.enrollment.app import SPEC as ENROLLMENT
from tests.hostile.scenario import SERVICES, Supervisor, register_population
from tests.integration.harness import ServiceProcess, new_namespace, running
from tests.integration.test_outages import _local_stack_or_skip
from tools import stack
from tools.generate import generate_discharges, generate_population
from tools.hospital.publish import prepare_discharge

pytestmark = pytest.mark.integration

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
HOSPITAL_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{HOSPITAL_SPAN}-01"
FUNDS = ("hifp_pay", "hifmi_pay", "maf_pay", "psn_pay")


async def _get(url: str) -> tuple[int, Any]:
    return await asyncio.to_thread(probe, url, 3.0)


async def _ready(proc: ServiceProcess, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        url = proc.endpoint()
        if url is not None:
            status, last = await _get(f"{url}/readyz")
            if status == 200:
                return url
        await asyncio.sleep(0.5)
    raise AssertionError(f"{proc.name} not ready within {timeout:.0f}s: {last}")


def _metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    def get() -> str:
        import urllib.request

        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            return response.read().decode()

    return _metrics(await asyncio.to_thread(get))


def _value(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


async def test_services_answer_health_and_metrics_and_a_claim_keeps_its_trace_across_every_hop(
        kafka_admin: KafkaAccess, database_url: str) -> None:
    ns = await new_namespace(kafka_admin, database_url)
    try:
        async with Supervisor(ns, SERVICES, print) as services:
            urls = {name: await _ready(p) for name, p in services.procs.items()}
            for name, url in urls.items():
                assert await _get(f"{url}/healthz") == (200, {"live": True, "service": name})
                status, body = await _get(f"{url}/readyz")
                assert status == 200 and body["failed"] == [] and body["service"] == name
                scraped = await _scrape(url)
                assert ("medsettle_outbox_backlog", frozenset({("service", name)})) in scraped, name
            assert len(set(urls.values())) == len(SERVICES)  # one endpoint each

            providers, persons = generate_population(30, 2, seed=13, year=2026)
            await register_population(ns, [*providers, *persons], len(persons), len(providers))
            await ns.hospital_topics(*[p.provider_id for p in providers])
            discharges = generate_discharges(3, seed=13, year=2026, providers=providers, persons=persons)
            prepared = [prepare_discharge(d.model_dump(mode="json")) for d in discharges]
            traced = discharges[0].claim_id
            producer = AIOKafkaProducer(**ns.kafka.options())
            await producer.start()
            try:
                for m in prepared:  # the first as a hospital that traces its requests, the others without
                    headers = [("event_type", m.envelope.event_type.encode())]
                    if m.envelope.payload.claim_id == traced:
                        headers.append(("traceparent", TRACEPARENT.encode()))
                    await producer.send_and_wait(ns.topic(m.topic), m.value, key=m.key.encode(), headers=headers)
                # a discharge keyed by another subject: dead-lettered by settlement, its claim named in the log
                stray = prepared[1].envelope.model_copy(update={"event_id": prepared[0].envelope.event_id})
                await producer.send_and_wait(ns.topic(DISCHARGES), encode(stray), key=b"not-the-person")
            finally:
                await producer.stop()

            claims = {d.claim_id for d in discharges}
            hops = [DISCHARGES, BASIC_SETTLED, CATASTROPHIC_SETTLED, STATEMENTS,
                    *sorted({hospital_statements_topic(d.hospital_id) for d in discharges})]
            trace: dict[str, dict[str, list[bytes]]] = defaultdict(lambda: defaultdict(list))
            statements: list[dict[str, Any]] = []
            for topic in hops:
                def until(records: list[Any], topic: str = topic) -> bool:
                    seen = set()
                    for r in records:
                        env = decode_envelope(r.value)
                        claim = env.payload.get("claim_id") or env.payload.get("claim", {}).get("claim_id")
                        if claim is None and "hospital_claim_id" in env.payload:
                            claim = f"{env.payload['hospital_id']}:{env.payload['hospital_claim_id']}"
                        seen.add(claim)
                    return claims <= seen if not topic.startswith("hospital.") else bool(seen)

                for r in await ns.read(topic, until=until, timeout=180):
                    env = decode_envelope(r.value)
                    claim = env.payload.get("claim_id") or env.payload.get("claim", {}).get("claim_id") or (
                        f"{env.payload['hospital_id']}:{env.payload['hospital_claim_id']}")
                    trace[claim][topic] += [v for k, v in r.headers if k == "traceparent"]
                    if topic == STATEMENTS:
                        statements.append(env.payload)

            for claim in claims:
                carried = dict(trace[claim])
                assert set(carried) >= set(hops[:4]), (claim, carried)
                ids = {trace_id_of(v) for values in carried.values() for v in values}
                assert len(ids) == 1 and None not in ids, f"{claim}: trace ids {ids} across {carried}"
                spans = {v.split(b"-")[2] for values in carried.values() for v in values}
                assert len(spans) >= 4, f"{claim}: every hop is a span of its own: {carried}"
            assert {trace_id_of(v) for vs in trace[traced].values() for v in vs} == {TRACE_ID}
            assert HOSPITAL_SPAN.encode() not in {v.split(b"-")[2] for vs in trace[traced].values() for v in vs}

            assistance = await _scrape(urls["assistance"])
            assert sum(v for (name, labels), v in assistance.items()
                       if name == "medsettle_statements_total" and ("service", "assistance") in labels) == len(
                           statements) == len(claims)
            for fund in FUNDS:
                paid = sum((Decimal(s[fund]) for s in statements), Decimal(0))
                counted = _value(assistance, "medsettle_statement_money_yuan_total", service="assistance",
                                 fund=fund, kind="statement", direction="paid")
                assert abs(Decimal(str(counted)) - paid) < Decimal("0.005"), (fund, counted, paid)
            settlement = await _scrape(urls["settlement"])
            assert _value(settlement, "medsettle_records_consumed_total", service="settlement",
                          topic=DISCHARGES) == len(claims) + 1
            assert _value(settlement, "medsettle_batch_seconds_count", service="settlement",
                          subscription=DISCHARGES) >= 1
            assert _value(settlement, "medsettle_assigned_partitions", service="settlement",
                          subscription=DISCHARGES) == 6
            await ns.read(dead_letter_topic(DISCHARGES), until=lambda rs: len(rs) >= 1, timeout=60)
            settlement = await _scrape(urls["settlement"])
            assert _value(settlement, "medsettle_dead_letters_total", service="settlement", topic=DISCHARGES,
                          reason_class="key") == 1
            deadline = time.monotonic() + 30
            lines: list[dict[str, Any]] = []
            while time.monotonic() < deadline and not lines:
                text = services.procs["settlement"].log.read_text()
                lines = [j for j in map(json.loads, text.splitlines()) if j.get("event") == "dead-lettered"]
                await asyncio.sleep(0.5)
            assert lines and lines[0]["claim_id"] == stray.payload.claim_id, lines
    finally:
        await ns.drop_databases()


async def test_readiness_fails_within_seconds_while_postgres_is_down_and_recovers(
        kafka_admin: KafkaAccess, database_url: str) -> None:
    _local_stack_or_skip(kafka_admin.bootstrap_servers, database_url)
    ns = await new_namespace(kafka_admin, database_url)
    try:
        async with running(ENROLLMENT, ns.settings("enrollment")) as ctx:
            assert ctx.health is not None and ctx.health.port
            url = f"http://127.0.0.1:{ctx.health.port}/readyz"
            assert (await _get(url))[0] == 200
            await asyncio.to_thread(stack.stop, kafka_enabled=False, postgres_enabled=True, echo=print)
            stopped = time.monotonic()
            try:
                status, body = await _get(url)
                while status == 200 and time.monotonic() - stopped < 15:
                    await asyncio.sleep(0.25)
                    status, body = await _get(url)
                failed_after = time.monotonic() - stopped
                assert status == 503, f"still ready {failed_after:.1f}s after PostgreSQL stopped"
                assert "database" in body["failed"] and "broker" not in body["failed"], body
                assert (await _get(url.replace("/readyz", "/healthz")))[0] == 200  # still live
            finally:
                await asyncio.to_thread(stack.start, kafka_enabled=False, postgres_enabled=True, echo=print)
            started = time.monotonic()
            status, body = await _get(url)
            while status != 200 and time.monotonic() - started < 60:
                await asyncio.sleep(0.5)
                status, body = await _get(url)
            assert status == 200, f"not ready 60s after PostgreSQL came back: {body}"
            print(f"readiness failed {failed_after:.1f}s after PostgreSQL stopped, "
                  f"recovered {time.monotonic() - started:.1f}s after it started")
    finally:
        await asyncio.to_thread(stack.start, echo=print)
        await ns.drop_databases()
