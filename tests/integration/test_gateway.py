"""The hospital gateway on the real broker and database: two gateway instances in front of the whole
chain (intake, settlement, critical illness, assistance) in a namespace, hospitals signed in with
the credentials an operator issues them.

Expected amounts are demo-county.md's worked example 3 (a dibao patient, a level-3 hospital, class A
50,000), not figures computed by the code under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import DischargeRecorded, ReversalRequested
from services.gateway.app import SPEC as GATEWAY
from tests.integration.harness import Namespace, running
from tests.integration.platform import HOSPITAL_CHAIN, discharge, enroll, person_id, platform, provider, register
from tests.integration.platform import snapshot as layers_snapshot
from tools.stack.lag import partitions

pytestmark = pytest.mark.integration

D = Decimal
FUNDS = ("total_cost", "in_policy", "hifp_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt", "psn_pay")
EXAMPLE_3 = {"total_cost": D("50000.00"), "in_policy": D("50000.00"), "hifp_pay": D("19920.00"),
             "hifmi_pay": D("16816.00"), "maf_pay": D("9284.80"), "fund_pay_sumamt": D("46020.80"),
             "psn_pay": D("3979.20")}
"""demo-county.md, worked example 3."""


def body(d: DischargeRecorded | ReversalRequested) -> dict[str, Any]:
    return d.model_dump(mode="json")


def money(payload: dict[str, Any]) -> dict[str, Decimal]:
    return {k: D(payload[k]) for k in FUNDS}


@asynccontextmanager
async def gateways(ns: Namespace, n: int = 2) -> AsyncIterator[list[str]]:
    """`n` gateway instances side by side (one consumer group, one database); their API URLs."""
    async with AsyncExitStack() as stack:
        urls = []
        for _ in range(n):
            ctx = await stack.enter_async_context(running(GATEWAY, ns.settings("gateway", gateway_port=0)))
            urls.append(ctx.state["api"].url)
        yield urls


async def end_offsets(ns: Namespace) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**ns.kafka.options(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(ns.prefix)]
        parts = [tp for t in topics for tp in await partitions(consumer, t)]
        return dict(await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def gateway_rows(ns: Namespace) -> tuple[int, int]:
    conn = await ns.connect("gateway")
    try:
        return await conn.fetchval("SELECT count(*) FROM answer"), await conn.fetchval("SELECT count(*) FROM request")
    finally:
        await conn.close()


async def test_hospitals_settle_presettle_and_read_their_statements_over_http(ns: Namespace) -> None:
    dibao, ordinary = person_id(31), person_id(32)
    h3, h2 = await ns.hospital("H3"), await ns.hospital("H2")
    auth3 = (h3.access.username or "", h3.access.password.get_secret_value() if h3.access.password else "")
    auth2 = (h2.access.username or "", h2.access.password.get_secret_value() if h2.access.password else "")
    e3 = discharge("E3", "H3", dibao, date(2026, 4, 1), date(2026, 4, 20), [("A", "50000.00")])
    e4 = discharge("E4", "H3", dibao, date(2026, 6, 1), date(2026, 6, 9), [("A", "12000.00"), ("B", "3000.00"),
                                                                            ("SELF", "800.00")])
    async with platform(ns, HOSPITAL_CHAIN), gateways(ns) as (a, b), \
            httpx.AsyncClient(base_url=a, timeout=30) as anon_a, \
            httpx.AsyncClient(base_url=a, auth=auth3, timeout=30) as h3_a, \
            httpx.AsyncClient(base_url=b, auth=auth3, timeout=30) as h3_b, \
            httpx.AsyncClient(base_url=b, auth=auth2, timeout=30) as h2_b:
        await register(ns, [enroll(dibao, "dibao"), enroll(ordinary)], [provider("H3", 3), provider("H2", 2)])

        # no anonymous access, no wrong password; nothing was published for them
        assert (await anon_a.get("/v1/statements")).status_code == 401
        assert (await anon_a.post("/v1/discharges", json=body(e3))).status_code == 401
        wrong = await anon_a.get("/v1/statements", auth=(auth3[0], auth3[1] + "x"))
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
        assert (await anon_a.get("/v1/statements", auth=("hospital-H9", auth3[1]))).status_code == 401
        # a body for another hospital is refused with the reason, before anything is sent
        foreign = await h2_b.post("/v1/discharges", json=body(e3))
        assert foreign.status_code == 403 and "H3" in foreign.json()["detail"]

        # pre-settlement: demo-county's worked example 3, to the fen, and nothing stored
        pre = await h3_a.post("/v1/pre-settlements", json=body(e3))
        assert pre.status_code == 200, pre.text
        assert money(pre.json()["statement"]) == EXAMPLE_3 and pre.json()["claims_in_flight"] is False

        # the real discharge, through the other instance, waiting: the same statement
        sent = await h3_b.post("/v1/discharges", json=body(e3), params={"wait": 10})
        assert sent.status_code == 200, sent.text
        answer = sent.json()
        assert answer["event_type"] == "SettlementStatement" and answer["claim_id"] == "H3:E3"
        assert money(answer["payload"]) == money(pre.json()["statement"]) == EXAMPLE_3

        # a second claim of the year: pre-settled against the accumulators the first one left
        pre4 = (await h3_b.post("/v1/pre-settlements", json=body(e4))).json()
        accepted = await h3_a.post("/v1/discharges", json=body(e4))
        assert accepted.status_code == 202 and accepted.json()["status_url"] == "/v1/claims/H3:E4"
        for _ in range(100):
            status = (await h3_b.get(accepted.json()["status_url"])).json()
            if status["status"] != "pending":
                break
            await asyncio.sleep(0.1)
        assert status["status"] == "settled" and len(status["requests"]) == 1
        assert money(status["answers"][-1]["payload"]) == money(pre4["statement"])
        assert D(pre4["statement"]["hifp_pay"]) > 0 and D(pre4["statement"]["maf_pay"]) > 0
        # pre-settling a settled claim is refused
        assert (await h3_a.post("/v1/pre-settlements", json=body(e3))).status_code == 409

        # another hospital's claim does not exist for it; its statements are its own
        assert (await h2_b.get("/v1/claims/H3:E3")).status_code == 404
        assert (await h2_b.get("/v1/statements")).json()["items"] == []
        mine = (await h3_a.get("/v1/statements", params={"since": 0})).json()
        assert [i["claim_id"] for i in mine["items"]] == ["H3:E3", "H3:E4"]
        later = (await h3_a.get("/v1/statements", params={"since": mine["items"][0]["cursor"]})).json()
        assert [i["claim_id"] for i in later["items"]] == ["H3:E4"] and later["next_cursor"] == mine["next_cursor"]

        # a reversal, waited for: the claim is reversed
        reversal = ReversalRequested(hospital_claim_id="E4", hospital_id="H3", person_id=dibao, reason="test")
        reversed_ = await h3_a.post("/v1/reversals", json=body(reversal), params={"wait": 10})
        assert reversed_.status_code == 200 and reversed_.json()["event_type"] == "SettlementReversed"
        assert (await h3_b.get("/v1/claims/H3:E4")).json()["status"] == "reversed"

        # 1,000 pre-settlements change no accumulator, no ledger row, no statement, no topic
        await asyncio.sleep(2)  # the reversal's copies reach every topic first
        before = (await layers_snapshot(ns), await end_offsets(ns), await gateway_rows(ns))
        e5 = discharge("E5", "H3", dibao, date(2026, 7, 1), date(2026, 7, 3), [("A", "9000.00")])
        clients = (h3_a, h3_b)
        results: list[dict[str, Any]] = []

        async def worker(k: int) -> None:
            for i in range(k, 1000, 8):
                r = await clients[i % 2].post("/v1/pre-settlements", json=body(e5))
                assert r.status_code == 200, r.text
                results.append(r.json()["statement"])
        await asyncio.gather(*(worker(k) for k in range(8)))
        after = (await layers_snapshot(ns), await end_offsets(ns), await gateway_rows(ns))
    assert len(results) == 1000 and len({tuple(money(s).items()) for s in results}) == 1
    assert before[0] == after[0]  # ledgers, accumulators, statements of the three layers
    assert before[1] == after[1] and sum(before[1].values()) > 0  # every topic of the namespace
    assert before[2] == after[2]  # the gateway's read model and requests
