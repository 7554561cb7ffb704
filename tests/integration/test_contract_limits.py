"""What the contract accepts, the database stores: the extreme instance of every contract
(`tests.contract_extremes`: every field at the most extreme value its model accepts), published on
its topic of the real broker in an envelope at its own extremes, is stored by every service that
consumes it — the audit's event store, the enrollment registry, the settlement projections, the
three layers' ledgers, the assistance statements, the audit's stays, snapshots and alerts — and
nothing of the namespace is dead-lettered.

Dates. Every date is `DATE_MAX` (2099-12-31), every timestamp the last microsecond before
`TIMESTAMP_MAX`; one more discharge has every date at `DATE_MIN` and its envelope's timestamp at
`TIMESTAMP_MIN`. Two choices let the extreme discharge settle through all layers:

* the enrolled persons pay on 2099-11-30 (`LAST_PAYMENT`) for coverage year 2099 (`YEAR_MAX`),
  with their previous coverage ending on `DATE_MAX`: benefits start on 2099-12-01, the 1st of the
  month after payment (no waiting period). A payment on `DATE_MAX` (the extreme `EnrollPerson`,
  person C) buys benefits from 2100-01-01, which enrollment refuses (`DATES_OUT_OF_ORDER`, stored
  as a rejection);
* the discharge is a same-day stay on `DATE_MAX`, at the extreme provider, whose agreement is
  valid from `DATE_MAX` to `DATE_MAX`; demo-county is effective from 2020 with no end. (A stay
  admitted on `DATE_MIN` cannot settle: a payment on `DATE_MIN` buys benefits from 2000-02-01.)

Persons. The contract's extreme person reference (32 characters) is no identity number: every
pure extreme person command is stored as an `INVALID_ID_NUMBER` rejection, and the pure extreme
discharges settle as rejected statements (`NOT_ENROLLED`). The enrolled persons have valid
identity numbers (`make_identity_number`) and the seven categories other than `ordinary` (which
stands alone): person A has the settled discharge, person B every other command (enrolled,
categories changed, suspended, resumed, dead, all on `DATE_MAX`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from contracts import (
    AuditAlert,
    BasicSettled,
    CatastrophicSettled,
    ChangeCategories,
    CommandRejected,
    Contract,
    DischargeRecorded,
    EnrollPerson,
    Envelope,
    PersonSnapshot,
    ProviderSnapshot,
    RecordDeath,
    RegisterProvider,
    ResumePerson,
    SettlementStatement,
    SuspendPerson,
    decode,
)
from contracts.enrollment import PERSON_COMMAND_MODELS
from contracts.identity import make_identity_number
from contracts.limits import (
    DATE_MAX,
    DATE_MIN,
    INT64_MAX,
    MAX_RECORD_BYTES,
    MONEY_MAX,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    YEAR_MAX,
    YEAR_MIN,
)
from contracts.topics import (
    ALERTS,
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    ENROLLMENT_REJECTIONS,
    PERSONS,
    PROVIDERS,
    STATEMENTS,
    TOPICS,
    dead_letter_topic,
)
from contracts.types import PersonCategory
from policy import load_profile
from policy.calculators.assistance import AssistanceYearState
from policy.calculators.catastrophic import CatastrophicYearState
from policy.decisions.assistance import decide as assistance_decision
from policy.decisions.catastrophic import decide as catastrophic_decision
from policy.one_stop import OneStopClaim, OneStopYearState, settle_one_stop
from services.audit import reconciliation
from services.audit.app import make_spec as audit_spec
from services.audit.app import reconcile_now
from services.audit.config import AuditConfig
from services.audit.rules import LARGE_OUT_OF_AREA_INVOICE
from tests.contract_extremes import (
    DateMode,
    build,
    extreme,
    extreme_envelope,
    literal_choices,
)
from tests.integration.harness import Namespace, running, wait_drained
from tests.integration.platform import CHAIN, platform

pytestmark = pytest.mark.integration

AUDIT = AuditConfig(RECONCILE_INTERVAL_S=0, STATEMENT_TIMEOUT_S=60)
"""Reconciliation on demand only."""
PROFILE = load_profile("demo-county")
LAST_PAYMENT = DATE_MAX.replace(day=1) - timedelta(days=1)
"""The last payment date whose benefits (from the 1st of the next month) start by `DATE_MAX`."""
SPECIAL_CATEGORIES = tuple(c for c in literal_choices(PersonCategory) if c != "ordinary")
PERSON_A = make_identity_number("500242", date(1990, 1, 1), 1)
PERSON_B = make_identity_number("500242", date(1990, 1, 1), 2)
PERSON_C = make_identity_number("500242", date(1990, 1, 1), 3)
PERSON_COMMANDS = PERSON_COMMAND_MODELS
INPUTS = (("enrollment", ENROLLMENT_COMMANDS), ("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED),
          ("assistance", CATASTROPHIC_SETTLED))


def person_commands(person_id: str) -> list[Contract]:
    """Every person command at its extremes for an enrolled, valid person (see the module)."""
    special = {"person_id": person_id, "categories": SPECIAL_CATEGORIES}
    return [extreme(EnrollPerson, **special, payment_date=LAST_PAYMENT), extreme(ChangeCategories, **special),
            extreme(SuspendPerson, person_id=person_id), extreme(ResumePerson, person_id=person_id),
            extreme(RecordDeath, person_id=person_id)]


def sent(payloads: Sequence[Contract], dates: DateMode = "max") -> list[tuple[str, Envelope[Any]]]:
    """(key, envelope) of each payload: keyed by its subject, in an envelope at its extremes."""
    return [(p.message_key(), extreme_envelope(p, dates=dates)) for p in payloads]


def as_json(payload: Contract) -> dict[str, Any]:
    return payload.model_dump(mode="json")


async def dead_letters(ns: Namespace) -> dict[str, int]:
    """Records on each `.dlt` topic of the namespace (its topics are new: end offset = count)."""
    consumer = AIOKafkaConsumer(**ns.kafka.options())
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        await consumer._client.force_metadata_update()
        parts = [TopicPartition(ns.topic(dead_letter_topic(t.name)), p) for t in TOPICS
                 for p in consumer.partitions_for_topic(ns.topic(dead_letter_topic(t.name))) or ()]
        assert len(parts) >= len(TOPICS)
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
    return {tp.topic: n for tp, n in ends.items() if n}


async def rows(ns: Namespace, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await ns.connect(service)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def one_stop(d: DischargeRecorded, person: EnrollPerson, provider: RegisterProvider) -> Any:
    """The pure calculation of a discharge of an enrolled person, first of the person-year."""
    by_class: dict[str, Decimal] = {}
    for line in d.lines:
        by_class[line.catalogue_class] = by_class.get(line.catalogue_class, Decimal("0.00")) + line.amount
    return settle_one_stop(OneStopClaim(
        claim_id=d.claim_id, scheme=person.scheme, hospital_level=provider.level, amounts_by_class=by_class,
        categories=frozenset(person.categories), disability_grade=person.disability_grade,
        consecutive_contribution_years=1, care_location=d.care_location, referred=d.referred),
        PROFILE, OneStopYearState())


async def test_the_extreme_value_of_every_field_is_stored(ns: Namespace) -> None:
    provider = extreme(RegisterProvider)
    commands_a, commands_b = person_commands(PERSON_A)[:1], person_commands(PERSON_B)
    invalid_persons = [extreme(model) for model in PERSON_COMMANDS]
    too_late = extreme(EnrollPerson, person_id=PERSON_C, categories=SPECIAL_CATEGORIES)  # paid on DATE_MAX
    person, provider_snapshot = extreme(PersonSnapshot), extreme(ProviderSnapshot)
    settled = build(DischargeRecorded, person_id=PERSON_A, hospital_id=provider.provider_id)
    unenrolled = extreme(DischargeRecorded)
    earliest = extreme(DischargeRecorded, dates="min", variant=1)  # every date at DATE_MIN
    basic, catastrophic = extreme(BasicSettled), extreme(CatastrophicSettled)
    statement, rejection, alert = extreme(SettlementStatement), extreme(CommandRejected), extreme(AuditAlert)
    discharge = settled.instance

    # the extremes are what the module says they are
    assert (person.version, provider_snapshot.version) == (INT64_MAX, INT64_MAX)
    assert discharge.admission_date == discharge.discharge_date == DATE_MAX
    assert earliest.admission_date == earliest.discharge_date == DATE_MIN and DATE_MIN.year == YEAR_MIN
    assert provider.agreement_valid_from == provider.agreement_valid_to == DATE_MAX
    assert commands_a[0].coverage_year == YEAR_MAX and commands_a[0].previous_coverage_end == DATE_MAX
    assert MAX_RECORD_BYTES - 2_000 < settled.size <= MAX_RECORD_BYTES and "lines" in settled.cut
    assert basic.claim.total_cost == catastrophic.claim.total_cost == MONEY_MAX
    assert discharge.care_location != "in_pool" and discharge.total_amount >= PROFILE.audit.large_out_of_area_invoice
    # the claims and the persons of the layer results are distinct (one claim per person-year each)
    claim_ids = [discharge.claim_id, unenrolled.claim_id, earliest.claim_id, basic.claim.claim_id,
                 catastrophic.claim.claim_id, statement.claim_id]
    assert len(set(claim_ids)) == len(claim_ids)
    assert len({PERSON_A, unenrolled.person_id, basic.claim.person_id, catastrophic.claim.person_id}) == 4
    assert person.person_id not in (PERSON_A, PERSON_B, PERSON_C) and provider_snapshot.provider_id not in (
        provider.provider_id, discharge.hospital_id, unenrolled.hospital_id, earliest.hospital_id)

    published: dict[str, list[tuple[str, Envelope[Any]]]] = {}
    async with platform(ns, CHAIN), running(audit_spec(AUDIT), ns.settings("audit")) as audit:
        registry = {ENROLLMENT_COMMANDS: sent([provider, *commands_a, *commands_b, *invalid_persons, too_late]),
                    PERSONS: sent([person]), PROVIDERS: sent([provider_snapshot]),
                    ENROLLMENT_REJECTIONS: sent([rejection])}
        for topic, items in registry.items():
            published[topic] = items
            await ns.publish(topic, items)
        await ns.read(PERSONS, until=lambda rs: {PERSON_A, PERSON_B} <= {r.key.decode() for r in rs})
        await ns.read(PROVIDERS, until=lambda rs: provider.provider_id in {r.key.decode() for r in rs})
        claims = {DISCHARGES: sent([discharge, unenrolled]) + sent([earliest], "min"), BASIC_SETTLED: sent([basic]),
                  CATASTROPHIC_SETTLED: sent([catastrophic]), STATEMENTS: sent([statement]), ALERTS: sent([alert])}
        for topic, items in claims.items():
            published[topic] = items
            await ns.publish(topic, items)
        expected_statements = {discharge.claim_id, unenrolled.claim_id, earliest.claim_id, basic.claim.claim_id,
                               catastrophic.claim.claim_id}
        await ns.read(STATEMENTS, until=lambda rs: expected_statements <= {
            decode(r.value, SettlementStatement).payload.claim_id for r in rs}, timeout=180)
        await wait_drained(ns, INPUTS)
        await wait_drained(ns, [("audit", t.name) for t in TOPICS if t.name != ALERTS])
        await wait_drained(ns, [("audit", ALERTS)])
        # reconciliation of everything stored, as of after the statement timeout
        report = await reconcile_now(audit, datetime.now(UTC) + timedelta(seconds=AUDIT.statement_timeout_s))
        await wait_drained(ns, [("audit", ALERTS)])
        letters = await dead_letters(ns)

    assert letters == {}, f"dead-lettered: {letters}"
    await check_event_store(ns, published)
    await check_registry(ns, provider, commands_a, commands_b, invalid_persons, too_late)
    await check_projections(ns, person, provider_snapshot)
    await check_settled_discharge(ns, discharge, commands_a[0], provider)
    for rejected in (unenrolled, earliest):
        await check_unenrolled_discharge(ns, rejected)
    await check_layer_results(ns, basic, catastrophic)
    await check_audit_tables(ns, [discharge, unenrolled, earliest], person, provider_snapshot)
    assert report.claims_checked == len(expected_statements) + 1  # and the extreme statement
    await check_reconciliation(ns, [discharge, unenrolled, earliest], statement)


async def check_event_store(ns: Namespace, published: dict[str, list[tuple[str, Envelope[Any]]]]) -> None:
    """Every record sent is in the audit's event store as sent: payload, key, envelope; no error. A
    person's name is not kept (names stay in enrollment)."""
    stored = {r["event_id"]: r for r in await rows(ns, "audit", "SELECT * FROM event_store")}
    for topic, items in published.items():
        for key, env in items:
            row = stored.get(env.event_id)
            assert row is not None, f"{env.event_type} on {topic} is not in the event store"
            assert row["error"] is None, row["error"]
            assert (row["topic"], row["key"], row["event_type"], row["schema_version"]) == (
                topic, key, env.event_type, env.schema_version)
            assert (row["correlation_id"], row["causation_id"], row["producer"], row["occurred_at"]) == (
                env.correlation_id, env.causation_id, env.producer, env.occurred_at)
            sent = as_json(env.payload)
            if env.event_type == "EnrollPerson":
                del sent["name"]
            assert json.loads(row["payload"]) == sent, f"{env.event_type}: payload changed"
    instants = {env.occurred_at for items in published.values() for _, env in items}
    assert instants == {TIMESTAMP_MAX - timedelta(microseconds=1), TIMESTAMP_MIN}


async def check_registry(ns: Namespace, provider: RegisterProvider, commands_a: list[Contract],
                         commands_b: list[Contract], invalid: list[Contract], too_late: EnrollPerson) -> None:
    """The enrollment registry: the accepted commands in the person's history as sent, the
    current snapshots, the provider, a rejection for every pure extreme person command, and one
    for the payment on `DATE_MAX` of a valid person (its benefits would start in 2100)."""
    events = await rows(ns, "enrollment", "SELECT * FROM person_event ORDER BY person_id, version")
    history = {(r["person_id"], r["version"]): (r["command_type"], json.loads(r["command"])) for r in events}
    expected = {(c.person_id, v): (type(c).__name__, as_json(c))  # type: ignore[attr-defined]
                for commands in (commands_a, commands_b) for v, c in enumerate(commands, start=1)}
    assert history == expected
    persons = {r["person_id"]: r for r in await rows(ns, "enrollment", "SELECT * FROM person")}
    assert (persons[PERSON_A]["version"], persons[PERSON_A]["status"]) == (1, "active")
    assert (persons[PERSON_B]["version"], persons[PERSON_B]["status"]) == (len(commands_b), "deceased")
    snapshot_b = PersonSnapshot.model_validate_json(persons[PERSON_B]["snapshot"])
    assert snapshot_b.date_of_death == DATE_MAX and snapshot_b.categories == SPECIAL_CATEGORIES
    assert snapshot_b.disability_grade == commands_b[0].disability_grade  # type: ignore[attr-defined]

    registered = await rows(ns, "enrollment", "SELECT * FROM provider")
    assert [(r["provider_id"], r["version"], r["level"]) for r in registered] == [
        (provider.provider_id, 1, provider.level)]
    snapshot = ProviderSnapshot.model_validate_json(registered[0]["snapshot"])
    assert snapshot.model_dump(exclude={"version"}) == provider.model_dump()
    command = await rows(ns, "enrollment", "SELECT command FROM provider_event")
    assert [json.loads(r["command"]) for r in command] == [as_json(provider)]

    refused = await rows(ns, "enrollment", "SELECT * FROM rejection WHERE subject_id = $1", PERSON_C)
    assert too_late.payment_date == DATE_MAX
    assert [(r["command_type"], r["reason_code"], r["field"]) for r in refused] == [
        ("EnrollPerson", "DATES_OUT_OF_ORDER", "payment_date")]
    rejected = {r["command_type"]: r for r in await rows(
        ns, "enrollment", "SELECT * FROM rejection WHERE subject_id <> $1", PERSON_C)}
    assert set(rejected) == {type(c).__name__ for c in invalid}
    for c in invalid:
        row = rejected[type(c).__name__]
        assert (row["subject_id"], row["reason_code"], row["field"]) == (
            c.person_id, "INVALID_ID_NUMBER", "person_id")  # type: ignore[attr-defined]


async def check_projections(ns: Namespace, person: PersonSnapshot, provider: ProviderSnapshot) -> None:
    """Settlement's registry projections hold the extreme snapshots, 64-bit versions included."""
    persons = {r["person_id"]: r for r in await rows(ns, "settlement", "SELECT * FROM person_projection")}
    assert persons[person.person_id]["version"] == person.version
    assert json.loads(persons[person.person_id]["snapshot"]) == as_json(person)
    assert {PERSON_A, PERSON_B} <= set(persons)
    providers = {r["provider_id"]: r for r in await rows(ns, "settlement", "SELECT * FROM provider_projection")}
    assert providers[provider.provider_id]["version"] == provider.version
    assert json.loads(providers[provider.provider_id]["snapshot"]) == as_json(provider)


async def ledger(ns: Namespace, service: str, claim_id: str) -> asyncpg.Record:
    found = await rows(ns, service, "SELECT * FROM ledger WHERE claim_id = $1", claim_id)
    assert len(found) == 1, f"{service} has no ledger row for {claim_id}"
    return found[0]


async def statement_row(ns: Namespace, claim_id: str) -> asyncpg.Record:
    found = await rows(ns, "assistance", "SELECT * FROM statement WHERE claim_id = $1", claim_id)
    assert len(found) == 1, f"no statement for {claim_id}"
    return found[0]


async def check_settled_discharge(ns: Namespace, d: DischargeRecorded, enrolled: EnrollPerson,
                                  provider: RegisterProvider) -> None:
    """The extreme discharge of an enrolled person settles through all three layers; each ledger,
    each accumulator and the statement hold the pure calculation's amounts exactly."""
    result = one_stop(d, enrolled, provider)
    assert result.total_cost == d.total_amount and result.basic_paid > 0 and result.catastrophic_paid > 0
    basic, cat, assist = [await ledger(ns, s, d.claim_id) for s in ("settlement", "catastrophic", "assistance")]
    assert (basic["outcome"], basic["base"], basic["paid"]) == ("settled", result.in_policy, result.basic_paid)
    assert (cat["outcome"], cat["base"], cat["paid"]) == ("settled", result.catastrophic.base, result.catastrophic_paid)
    assert (assist["outcome"], assist["base"], assist["paid"]) == (
        "settled", result.assistance.base if result.assistance else Decimal("0.00"), result.assistance_paid)
    for row in (basic, cat, assist):
        assert (row["person_id"], row["hospital_id"], row["insurance_year"]) == (d.person_id, d.hospital_id, YEAR_MAX)
    after = result.year_state_after
    for service, state in (("settlement", after.basic), ("catastrophic", after.catastrophic),
                           ("assistance", after.assistance)):
        acc = await rows(ns, service, "SELECT * FROM accumulator WHERE person_id = $1", d.person_id)
        expected = dataclasses.asdict(state)
        assert [(a["insurance_year"], {k: a[k] for k in expected}, a["claims"]) for a in acc] == [
            (YEAR_MAX, expected, 1)], service
    s = await statement_row(ns, d.claim_id)
    assert (s["outcome"], s["person_id"], s["hospital_id"], s["discharge_date"], s["insurance_year"]) == (
        "settled", d.person_id, d.hospital_id, DATE_MAX, YEAR_MAX)
    assert (s["total_cost"], s["in_policy"], s["hifp_pay"], s["hifmi_pay"], s["maf_pay"], s["psn_pay"]) == (
        d.total_amount, result.in_policy, result.basic_paid, result.catastrophic_paid, result.assistance_paid,
        result.patient_pays)


async def check_unenrolled_discharge(ns: Namespace, d: DischargeRecorded) -> None:
    """The pure extreme discharge (a person reference that is no identity number) is stored as a
    rejected claim by every layer and ends as a rejected statement of its whole cost."""
    for service in ("settlement", "catastrophic", "assistance"):
        row = await ledger(ns, service, d.claim_id)
        assert (row["outcome"], row["paid"], row["person_id"]) == ("rejected", Decimal("0.00"), d.person_id)
    s = await statement_row(ns, d.claim_id)
    assert (s["outcome"], s["reason_code"], s["total_cost"], s["psn_pay"]) == (
        "rejected", "NOT_ENROLLED", d.total_amount, d.total_amount)
    assert (s["discharge_date"], s["insurance_year"]) == (d.discharge_date, d.discharge_date.year)


async def check_layer_results(ns: Namespace, basic: BasicSettled, catastrophic: CatastrophicSettled) -> None:
    """The extreme layer results (amounts at `MONEY_MAX`) are settled by the next layers, whose
    ledgers and statements hold the amounts the pure decisions give, to the fen."""
    year = CatastrophicYearState(accumulation=Decimal("0.00"), paid=Decimal("0.00"))
    after_basic = catastrophic_decision(basic, PROFILE, year)
    row = await ledger(ns, "catastrophic", basic.claim.claim_id)
    expected = after_basic.result
    assert (row["outcome"], row["base"], row["paid"], json.loads(row["year_after"])["accumulation"]) == (
        after_basic.event.outcome, expected.base if expected else Decimal("0.00"),
        expected.paid if expected else Decimal("0.00"),
        str(expected.accumulation_after if expected else Decimal("0.00")))
    for prior in (after_basic.event, catastrophic):
        now = datetime.now(UTC)
        decided = assistance_decision(prior, PROFILE, AssistanceYearState(paid=Decimal("0.00")), now)
        row = await ledger(ns, "assistance", prior.claim.claim_id)
        assert (row["outcome"], row["paid"]) == (decided.statement.outcome,
                                                 decided.result.paid if decided.result else Decimal("0.00"))
        s = await statement_row(ns, prior.claim.claim_id)
        want = decided.statement
        assert (s["total_cost"], s["in_policy"], s["hifp_pay"], s["hifmi_pay"], s["maf_pay"], s["psn_pay"]) == (
            want.total_cost, want.in_policy, want.hifp_pay, want.hifmi_pay, want.maf_pay, want.psn_pay)
        assert s["total_cost"] == prior.claim.total_cost == MONEY_MAX
        assert s["hifp_pay"] == prior.basic.paid  # type: ignore[union-attr]


async def check_audit_tables(ns: Namespace, discharges: list[DischargeRecorded], person: PersonSnapshot,
                             provider: ProviderSnapshot) -> None:
    """The audit's own tables: a stay per discharge, the extreme snapshots, the alerts raised on
    the extreme discharges (ids at their maximum lengths)."""
    stays = {r["claim_id"]: r for r in await rows(ns, "audit", "SELECT * FROM stay")}
    for d in discharges:
        stay = stays[d.claim_id]
        assert (stay["person_id"], stay["hospital_id"], stay["admission_date"], stay["discharge_date"]) == (
            d.person_id, d.hospital_id, d.admission_date, d.discharge_date)
    persons = {r["person_id"]: r for r in await rows(ns, "audit", "SELECT * FROM person_snapshot")}
    assert persons[person.person_id]["version"] == person.version
    assert json.loads(persons[person.person_id]["snapshot"]) == as_json(person)
    providers = {r["provider_id"]: r for r in await rows(ns, "audit", "SELECT * FROM provider_snapshot")}
    row = providers[provider.provider_id]
    assert (row["version"], row["level"], row["pool_code"], row["location"], row["licensed_beds"]) == (
        provider.version, provider.level, provider.pool_code, provider.location, provider.licensed_beds)
    assert json.loads(row["snapshot"]) == as_json(provider)
    alerts = {r["alert_id"]: r for r in await rows(ns, "audit", "SELECT * FROM alert")}
    for d in discharges:
        alert = alerts[f"{LARGE_OUT_OF_AREA_INVOICE}:{d.claim_id}"]
        assert (alert["claim_id"], alert["person_id"], alert["hospital_id"]) == (d.claim_id, d.person_id,
                                                                                 d.hospital_id)
        assert json.loads(alert["evidence"])["total_amount"] == str(d.total_amount)


async def check_reconciliation(ns: Namespace, chained: list[DischargeRecorded], statement: SettlementStatement
                               ) -> None:
    """Reconciliation finds nothing wrong with the claims the services settled — the statements
    agree with the layers' results to the fen — and flags the extreme statement no layer paid, its
    amount (`MONEY_MAX`) in the alert's evidence."""
    rules = {reconciliation.MISSING_STATEMENT, reconciliation.DUPLICATE_STATEMENT,
             reconciliation.STATEMENT_PARTS_MISMATCH, reconciliation.LAYER_RESULT_MISMATCH,
             reconciliation.STATEMENT_DISCHARGE_MISMATCH}
    alerts = await rows(ns, "audit", "SELECT * FROM alert WHERE rule = ANY($1::text[])", list(rules))
    assert [a["alert_id"] for a in alerts if a["claim_id"] in {d.claim_id for d in chained}] == []
    flagged = {a["alert_id"]: json.loads(a["evidence"]) for a in alerts}
    suffix = reconciliation.revision_suffix(statement.revision)  # the extreme revision: `:r<revision>`
    assert suffix == f":r{statement.revision}" and statement.revision > 1
    evidence = flagged[f"{reconciliation.LAYER_RESULT_MISMATCH}:basic:{statement.claim_id}{suffix}"]
    assert (evidence["statement"], evidence["layer_result"]) == (str(statement.hifp_pay), "missing")
    assert statement.hifp_pay == MONEY_MAX
