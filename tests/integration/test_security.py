"""Authenticated Kafka, least privilege, forged events refused — against the real broker.

The broker takes clients only over TLS with SASL/SCRAM-SHA-512 and denies whatever no ACL allows
(`tools/stack/principals.py`). Each test below is one acceptance point: a client without
credentials, with a wrong password or over plaintext is refused; a service principal is refused
outside its rights; a hospital can reach nothing but its own two topics and groups; the operator
CLI works as admin. Each runs in its own namespace (`ns`), whose services' and hospitals' ACLs the
harness grants and revokes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from contracts import decode, encode, make_envelope
from contracts.topics import (
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    HOSPITAL_TOPIC_PARTITIONS,
    PERSONS,
    PROVIDERS,
    STATEMENTS,
    hospital_requests_topic,
    hospital_statements_topic,
)
from runtime.kafka_access import KafkaAccess
from tests.integration.harness import Namespace
from tests.integration.platform import discharge, person_id
from tools.hospital.credentials import HospitalCredentials

ROOT = Path(__file__).resolve().parents[2]
TOPIC_AUTHORIZATION_FAILED = 29
REFUSED_WITHIN = 20.0


@pytest.fixture(autouse=True)
def _platform_broker(kafka_admin: KafkaAccess) -> None:
    if not kafka_admin.secured:
        pytest.skip("a broker without security (MEDSETTLE_TEST_BACKEND=testcontainers): nothing to refuse")


def hospital_id() -> str:
    return f"SEC{uuid.uuid4().hex[:6].upper()}"


async def refused(attempt: Awaitable[Any]) -> BaseException:
    """The exception `attempt` fails with (failing the test if it succeeds)."""
    try:
        result = await asyncio.wait_for(attempt, REFUSED_WITHIN)
    except Exception as exc:  # noqa: BLE001 - the caller checks which
        return exc
    raise AssertionError(f"not refused: {result!r}")


async def list_topics(options: dict[str, Any]) -> list[str]:
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=5000)
    try:
        await admin.start()
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def consume(access: KafkaAccess, *topics: str, group: str | None = None,
                  assign: list[TopicPartition] | None = None) -> list[bytes]:
    """Read `topics` (or the partitions `assign`) from the beginning for a moment, as `access`."""
    consumer = AIOKafkaConsumer(*topics, **access.options(), group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    try:
        await consumer.start()
        if assign:
            consumer.assign(assign)
        got: list[bytes] = []
        for _ in range(12):
            for records in (await consumer.getmany(timeout_ms=250)).values():
                got += [r.value for r in records]
            if got:
                break
        return got
    finally:
        await consumer.stop()


async def send(access: KafkaAccess, topic: str, value: bytes = b"{}", key: bytes = b"k") -> Any:
    producer = AIOKafkaProducer(**access.options(), request_timeout_ms=10_000)
    await producer.start()
    try:
        return await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


# ------------------------------------------------------------------ who may connect at all


async def test_a_client_without_credentials_is_refused(kafka_admin: KafkaAccess) -> None:
    exc = await refused(list_topics({"bootstrap_servers": kafka_admin.bootstrap_servers, "security_protocol": "SSL",
                                     "ssl_context": kafka_admin.ssl_context()}))
    assert isinstance(exc, KafkaConnectionError), exc
    assert await list_topics(kafka_admin.options())  # the same client with the admin's credentials gets in


async def test_a_wrong_password_is_refused(kafka_admin: KafkaAccess) -> None:
    exc = await refused(list_topics(kafka_admin.as_user("admin", "not-the-password").options()))
    assert isinstance(exc, KafkaConnectionError), exc
    exc = await refused(list_topics(kafka_admin.as_user("nobody", "not-a-user").options()))
    assert isinstance(exc, KafkaConnectionError), exc


async def test_plaintext_to_the_client_port_is_refused(kafka_admin: KafkaAccess) -> None:
    exc = await refused(list_topics({"bootstrap_servers": kafka_admin.bootstrap_servers}))
    assert isinstance(exc, KafkaConnectionError), exc
    sasl_without_tls = {**kafka_admin.options(), "security_protocol": "SASL_PLAINTEXT"}
    sasl_without_tls.pop("ssl_context")
    exc = await refused(list_topics(sasl_without_tls))
    assert isinstance(exc, KafkaConnectionError), exc


async def test_the_broker_listeners_refuse_a_client_without_the_broker_certificate(kafka_admin: KafkaAccess) -> None:
    """The INTERNAL and CONTROLLER listeners take only the broker's own certificate (mutual TLS)."""
    from tools.stack.common import read_state

    k = read_state().get("kafka") or {}
    if k.get("bootstrap_servers") != kafka_admin.bootstrap_servers:
        pytest.skip("not the local stack's broker")
    for port in (k["internal_port"], k["controller_port"]):
        exc = await refused(list_topics({"bootstrap_servers": f"127.0.0.1:{port}", "security_protocol": "SSL",
                                         "ssl_context": kafka_admin.ssl_context()}))
        assert isinstance(exc, KafkaConnectionError), exc


# ------------------------------------------------------------------ services: exactly their rights


async def test_settlement_may_not_write_the_statements(ns: Namespace) -> None:
    settlement = ns.access("settlement")
    exc = await refused(send(settlement, ns.topic(STATEMENTS)))
    assert isinstance(exc, TopicAuthorizationFailedError), exc
    await send(settlement, ns.topic(BASIC_SETTLED))  # its own output it may


async def test_settlement_may_not_join_the_assistance_group(ns: Namespace) -> None:
    group = f"{ns.prefix}medsettle.assistance.{CATASTROPHIC_SETTLED}"
    exc = await refused(consume(ns.access("settlement"), ns.topic(DISCHARGES), group=group))
    assert isinstance(exc, GroupAuthorizationFailedError), exc
    await consume(ns.access("settlement"), ns.topic(DISCHARGES), group=f"{ns.prefix}medsettle.settlement.x")


async def test_each_service_is_refused_outside_its_rights(ns: Namespace) -> None:
    """One forbidden write and one forbidden read per service (its neighbours' topics)."""
    forbidden = {"enrollment": (DISCHARGES, STATEMENTS), "catastrophic": (STATEMENTS, DISCHARGES),
                 "assistance": (BASIC_SETTLED, DISCHARGES), "audit": (STATEMENTS, None),
                 "settlement": (PERSONS, STATEMENTS)}
    for service, (write, read) in forbidden.items():
        exc = await refused(send(ns.access(service), ns.topic(write)))
        assert isinstance(exc, TopicAuthorizationFailedError), (service, write, exc)
        if read is not None:
            exc = await refused(consume(ns.access(service), ns.topic(read)))
            assert isinstance(exc, TopicAuthorizationFailedError), (service, read, exc)


async def test_intake_may_move_every_hospitals_requests_and_answers_only(ns: Namespace) -> None:
    """Intake (whatever hospitals there are) reads their requests, writes their statements and
    `claims.discharges`, creates a statements topic a hospital never had; not a registry topic."""
    me = await ns.hospital(hospital_id())
    intake = ns.access("intake")
    await send(me.access, ns.topic(hospital_requests_topic(me.hospital_id)), b"a request")
    assert await consume(intake, ns.topic(hospital_requests_topic(me.hospital_id)),
                         group=f"{ns.prefix}medsettle.intake.hospital.requests") == [b"a request"]
    await send(intake, ns.topic(hospital_statements_topic(me.hospital_id)))
    await send(intake, ns.topic(DISCHARGES))
    admin = AIOKafkaAdminClient(**intake.options())
    await admin.start()
    try:
        created = await admin.create_topics([NewTopic(ns.topic(hospital_statements_topic(hospital_id())), 1, 1),
                                             NewTopic(ns.topic("claims.extra"), 1, 1)])
    finally:
        await admin.close()
    assert [e[1] for e in created.topic_errors] == [0, TOPIC_AUTHORIZATION_FAILED]
    exc = await refused(send(intake, ns.topic(PERSONS)))
    assert isinstance(exc, TopicAuthorizationFailedError), exc


# ------------------------------------------------------------------ hospitals: their own topics only


async def test_a_hospital_cannot_read_another_hospitals_statements(ns: Namespace) -> None:
    mine, theirs = hospital_id(), hospital_id()
    me, _them = await ns.hospital(mine), await ns.hospital(theirs)
    await ns.publish(hospital_statements_topic(theirs), [(person_id(7), b"their statement")])
    await ns.publish(hospital_statements_topic(mine), [(person_id(7), b"my statement")])

    # subscribing to theirs (or to the claim topic every statement passes), assigning their partition, or
    # using their group: refused; its own it reads
    theirs_tps = [TopicPartition(ns.topic(hospital_statements_topic(theirs)), p)
                  for p in range(HOSPITAL_TOPIC_PARTITIONS)]
    for attempt in (consume(me.access, ns.topic(hospital_statements_topic(theirs))),
                    consume(me.access, ns.topic(STATEMENTS))):
        exc = await refused(attempt)
        assert isinstance(exc, TopicAuthorizationFailedError), exc
    assert await consume(me.access, assign=theirs_tps) == []  # the fetch is refused: nothing arrives
    assert await consume(ns.kafka, assign=theirs_tps) == [b"their statement"]  # (it is there)
    exc = await refused(consume(me.access, ns.topic(hospital_statements_topic(mine)),
                                group=f"{ns.prefix}hospital.{theirs}.statements"))
    assert isinstance(exc, GroupAuthorizationFailedError), exc
    assert await consume(me.access, ns.topic(hospital_statements_topic(mine)),
                         group=f"{ns.prefix}hospital.{mine}.statements") == [b"my statement"]


async def test_a_hospital_cannot_write_registry_or_mid_pipeline_topics(ns: Namespace) -> None:
    me = await ns.hospital(hospital_id())
    for topic in (PERSONS, PROVIDERS, DISCHARGES, BASIC_SETTLED, CATASTROPHIC_SETTLED, STATEMENTS,
                  hospital_requests_topic(hospital_id())):
        exc = await refused(send(me.access, ns.topic(topic)))
        assert isinstance(exc, TopicAuthorizationFailedError), (topic, exc)
    await send(me.access, ns.topic(hospital_requests_topic(me.hospital_id)))  # its own requests it may


async def test_a_hospital_cannot_create_or_delete_topics(ns: Namespace) -> None:
    me = await ns.hospital(hospital_id())
    admin = AIOKafkaAdminClient(**me.access.options())
    await admin.start()
    try:
        created = await admin.create_topics([NewTopic(ns.topic(f"hospital.{me.hospital_id}.extra"), 1, 1)])
        deleted = await admin.delete_topics([ns.topic(hospital_requests_topic(me.hospital_id)), ns.topic(STATEMENTS)])
    finally:
        await admin.close()
    assert [e[1] for e in created.topic_errors] == [TOPIC_AUTHORIZATION_FAILED]
    assert [e[1] for e in deleted.topic_error_codes] == [TOPIC_AUTHORIZATION_FAILED] * 2
    assert ns.topic(hospital_requests_topic(me.hospital_id)) in await list_topics(ns.kafka.options())


async def test_a_hospital_cannot_commit_a_services_offsets(ns: Namespace) -> None:
    me = await ns.hospital(hospital_id())
    mine = TopicPartition(ns.topic(hospital_statements_topic(me.hospital_id)), 0)  # its own: it may read it
    for group in (f"{ns.prefix}medsettle.settlement.{DISCHARGES}", f"{ns.prefix}medsettle.intake.requests",
                  f"{ns.prefix}medsettle.operator.redrive"):
        consumer = AIOKafkaConsumer(**me.access.options(), group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([mine])
            exc = await refused(consumer.commit({mine: 0}))
        finally:
            await consumer.stop()
        assert isinstance(exc, GroupAuthorizationFailedError), (group, exc)


async def test_a_hospital_client_publishes_and_reads_as_the_hospital(ns: Namespace, tmp_path: Path) -> None:
    """`publish --credentials` sends to the hospital's requests topic only; `statements --credentials`
    reads its statements topic; a line of another hospital is refused before anything is sent."""
    me = await ns.hospital(hospital_id())
    creds = tmp_path / "me.json"
    creds.write_text(json.dumps(me.to_json()))
    pid = person_id(11)
    bill = discharge("SEC-1", me.hospital_id, pid, date(2026, 3, 2), date(2026, 3, 4), [("A", "100.00")])
    other = discharge("SEC-2", "H999", pid, date(2026, 3, 2), date(2026, 3, 4), [("A", "100.00")])
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text(bill.model_dump_json() + "\n")
    bad.write_text(other.model_dump_json() + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    code, out = await cli(env, "publish", "discharges", str(bad), "--credentials", str(creds), "--prefix", ns.prefix,
                          "--no-progress")
    assert code == 1 and "is not the hospital of these credentials" in out, out
    code, out = await cli({**env, "MEDSETTLE_CREDENTIALS": str(creds)}, "publish", "discharges", str(good),
                          "--prefix", ns.prefix, "--no-progress")
    assert code == 0, out
    sent = await ns.read(hospital_requests_topic(me.hospital_id), until=lambda rs: len(rs) >= 1)
    assert decode(sent[0].value).payload.hospital_claim_id == "SEC-1"
    assert sent[0].key == pid.encode()

    await ns.publish(hospital_statements_topic(me.hospital_id), [(pid, b"not a statement")])
    code, out = await cli(env, "statements", "--credentials", str(creds), "--from-beginning", "--exit-when-idle", "2",
                          "--prefix", ns.prefix)
    assert code == 0, out
    assert "undecodable record on hospital." in out and "0 statement(s)" in out, out
    code, out = await cli(env, "publish", "commands", str(good), "--credentials", str(creds), "--prefix", ns.prefix)
    assert code == 2, out


# ------------------------------------------------------------------ operators


async def test_the_operator_cli_works_as_admin(ns: Namespace) -> None:
    """Operators need no credentials of their own on the stack's machine: the CLI is admin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env["KAFKA_BOOTSTRAP_SERVERS"] = ns.bootstrap
    h = hospital_id()
    code, out = await cli(env, "operator", "hospital-credentials", h, "--prefix", ns.prefix, stdout_only=True)
    assert code == 0, out
    issued = HospitalCredentials.from_json(json.loads(out))
    ns.users.append(issued.access.username or "")
    assert issued.hospital_id == h and issued.access.username == f"hospital-{h}"
    await send(issued.access, ns.topic(hospital_requests_topic(h)))  # usable at once
    code, again = await cli(env, "operator", "hospital-credentials", h, "--prefix", ns.prefix, stdout_only=True)
    assert code == 0, again
    assert json.loads(again)["password"] != issued.to_json()["password"]  # issued again: rotated
    exc = await refused(list_topics(issued.access.options()))
    assert isinstance(exc, KafkaConnectionError), exc
    code, out = await cli(env, "operator", "replay", "settlement", "--to-earliest", "--dry-run", "--prefix", ns.prefix)
    assert code == 0, out
    code, out = await cli(env, "operator", "dlt", "list", "claims.discharges", "--prefix", ns.prefix)
    assert code == 1 and "0 dead letters" in out, out  # read as admin: none there
    code, out = await cli(env, "operator", "hospital-credentials", "H.1", "--prefix", ns.prefix)
    assert code == 2, out


async def cli(env: dict[str, str], *args: str, stdout_only: bool = False) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools", *args, cwd=ROOT, env={**env, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL if stdout_only else asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()


# ------------------------------------------------------------------ forged events move no money


async def test_a_discharge_for_another_hospitals_provider_is_refused_with_a_reason(ns: Namespace) -> None:
    """Sent by a hospital on its own requests topic, naming another hospital: the intake refuses it
    (WRONG_HOSPITAL), the refusal reaches the sender's statements topic, nothing reaches settlement."""
    from contracts import ClaimRequestRefused
    from services.intake.app import SPEC as INTAKE
    from tests.integration.harness import running

    me = await ns.hospital(hospital_id())
    pid = person_id(21)
    theirs = discharge("WH-1", "H999", pid, date(2026, 3, 2), date(2026, 3, 4), [("A", "5000.00")])
    envelope = make_envelope(theirs, correlation_id=theirs.claim_id, producer=f"hospital:{me.hospital_id}")
    async with running(INTAKE, ns.settings("intake")):
        await send(me.access, ns.topic(hospital_requests_topic(me.hospital_id)), encode(envelope), pid.encode())
        answers = await ns.read(hospital_statements_topic(me.hospital_id), until=lambda rs: len(rs) >= 1)
    refusal = decode(answers[0].value, ClaimRequestRefused).payload
    assert (refusal.reason_code, refusal.claim_id) == ("WRONG_HOSPITAL", theirs.claim_id)
    assert "H999" in refusal.reason and me.hospital_id in refusal.reason, refusal.reason
    assert await ns.read_for(DISCHARGES, seconds=3) == []  # nothing was moved on to settlement


async def test_forged_snapshot_provider_and_statement_move_no_money(ns: Namespace) -> None:
    """The forgeries of the security review — a snapshot for a person who never enrolled, a provider
    snapshot for an unknown hospital, a richer statement under a real statement's event id —
    attempted by a hospital and by a service that owns none of those topics: the broker refuses every
    one; a discharge for the never-enrolled person, sent as the hospital, is paid by no fund.
    (Forgeries that get past the broker with a leaked owner's credential raise audit alerts:
    tests/integration/test_forgery_alerts.py.)"""
    from contracts import ClaimRequestRefused, PersonSnapshot, ProviderSnapshot, SettlementStatement
    from tests.integration.platform import HOSPITAL_CHAIN, enroll, platform, provider, register

    me = await ns.hospital(hospital_id())
    real, stranger = person_id(23), person_id(22)
    day = date(2026, 3, 2)
    async with platform(ns, HOSPITAL_CHAIN):
        await register(ns, [enroll(real)], [provider(me.hospital_id, 2)])
        bill = discharge("RL-1", me.hospital_id, real, day, day + timedelta(days=3), [("A", "2000.00")])
        await send(me.access, ns.topic(hospital_requests_topic(me.hospital_id)),
                   encode(make_envelope(bill, correlation_id=bill.claim_id, producer=f"hospital:{me.hospital_id}")),
                   real.encode())
        statement = decode((await ns.read(STATEMENTS, until=lambda rs: len(rs) >= 1))[0].value, SettlementStatement)
        snapshot = decode((await ns.read(PERSONS, until=lambda rs: len(rs) >= 1))[0].value, PersonSnapshot).payload

        s = statement.payload
        richer = s.model_copy(update={"hifp_pay": s.hifp_pay + s.psn_pay, "fund_pay_sumamt": s.fund_pay_sumamt + s.psn_pay,
                                      "psn_pay": Decimal("0.00"), "details": ()})
        forgeries = [
            (PERSONS, stranger, make_envelope(snapshot.model_copy(update={"person_id": stranger, "version": 1000}),
                                              correlation_id=stranger, producer="enrollment")),
            (PROVIDERS, "H666", make_envelope(ProviderSnapshot(
                provider_id="H666", version=1, name="无此医院", level=3, location="in_pool", pool_code="500242",
                licensed_beds=900, agreement_valid_from=date(2026, 1, 1)), correlation_id="H666", producer="enrollment")),
            (STATEMENTS, real, make_envelope(richer, correlation_id=s.claim_id, producer="assistance",
                                             event_id=statement.event_id)),
        ]
        for principal in (me.access, ns.access("settlement")):  # a hospital; a service owning none of them
            for topic, key, envelope in forgeries:
                exc = await refused(send(principal, ns.topic(topic), encode(envelope), key.encode()))
                assert isinstance(exc, TopicAuthorizationFailedError), (topic, exc)

        bill = discharge("FG-1", me.hospital_id, stranger, day, day + timedelta(days=4), [("A", "20000.00")])
        await send(me.access, ns.topic(hospital_requests_topic(me.hospital_id)),
                   encode(make_envelope(bill, correlation_id=bill.claim_id, producer=f"hospital:{me.hospital_id}")),
                   stranger.encode())
        answers = await ns.read(hospital_statements_topic(me.hospital_id), until=lambda rs: len(rs) >= 2)
        stated = await ns.read(STATEMENTS, until=lambda rs: len(rs) >= 2)

    about_stranger = [a for a in (decode(r.value).payload for r in answers) if a.claim_id == bill.claim_id]
    assert len(about_stranger) == 1
    if not isinstance(about_stranger[0], ClaimRequestRefused):  # a statement no fund pays: the patient pays all
        paid = about_stranger[0]
        assert paid.fund_pay_sumamt == Decimal("0.00") and paid.psn_pay == paid.total_cost, paid
    on_topic = [decode(r.value, SettlementStatement) for r in stated]
    assert sorted(e.payload.claim_id for e in on_topic) == sorted([s.claim_id, bill.claim_id])  # nothing forged
    assert [e.payload for e in on_topic if e.event_id == statement.event_id] == [s]  # the real one, unchanged
    assert sum((e.payload.fund_pay_sumamt for e in on_topic if e.payload.claim_id == bill.claim_id),
               Decimal("0.00")) == Decimal("0.00")
