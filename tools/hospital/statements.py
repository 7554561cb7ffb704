"""Follow a hospital's settlement statements (一站式结算单) and refusals as they are produced.

    ./medsettle statements --hospital H001            # new statements, as a table, until Ctrl-C
    ./medsettle statements --hospital H001 --from-beginning --exit-when-idle 5

What a hospital receives, per claim: the first settlement (`SettlementStatement`: what each fund
pays and what the patient pays); after a correction or reversal of this claim or of an earlier
claim of the same person-year, an adjustment (`SettlementAdjusted`, 补退: the differences, signed —
negative where a fund or the patient pays less — with the cause); a reversal
(`SettlementReversed`, 冲正: the claim's net amounts so far, negated). A claim's net amounts are the
sum of its statements. A correction or reversal settlement refused comes back on `claims.refusals`
(`ClaimRequestRefused`, with the reason code) and is shown in a table of its own.

With a hospital, what is read is its own topic `hospital.<id>.statements` (the intake copies its
statements, adjustments, reversals and refusals there; a hospital principal can read nothing
else), and a consumer group remembers what was shown, so a restart continues where it stopped:
the hospital's own `hospital.<id>.statements` when authenticated as the hospital (`--credentials`),
an operator's `medsettle.hospital.<id>` otherwise. Without a hospital (an operator), the platform's
`claims.statements` and `claims.refusals`. An event re-sent with the same event id is shown once.
Patients' identity numbers are masked.
"""

from __future__ import annotations

import time
from decimal import Decimal

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts import (
    ClaimRequestRefused,
    ContractError,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
    decode,
)
from contracts.envelope import Contract
from contracts.settlement import ClaimStatement
from contracts.topics import REFUSALS, STATEMENTS, hospital_group_prefix, hospital_statements_topic
from runtime.kafka_access import KafkaAccess
from runtime.logging import mask_identity_numbers

console = Console()

MODELS: dict[str, tuple[type[Contract], ...]] = {
    STATEMENTS: (SettlementStatement, SettlementAdjusted, SettlementReversed),
    REFUSALS: (ClaimRequestRefused,),
}
"""What an operator reads from each platform topic."""
ANSWERS: tuple[type[Contract], ...] = (*MODELS[STATEMENTS], *MODELS[REFUSALS])
"""What a hospital reads from its statements topic."""

KIND = {SettlementStatement: "statement", SettlementAdjusted: "ADJUSTMENT 补退", SettlementReversed: "REVERSAL 冲正"}


def signed(amount: Decimal) -> str:
    return f"+{amount:,}" if amount > 0 else f"{amount:,}"


def what(s: ClaimStatement) -> str:
    """The outcome of a statement; for an adjustment or reversal, its cause too."""
    outcome: str = "reversed" if isinstance(s, SettlementReversed) else s.outcome
    if not isinstance(s, SettlementReversed) and s.rejection is not None:
        outcome = f"rejected: {s.rejection.reason_code}"
        if s.rejection.related_claim_id:
            outcome += f" (duplicate of {s.rejection.related_claim_id})"
    if isinstance(s, SettlementStatement):
        return outcome
    about = "" if s.cause.claim_id == s.claim_id else f" of {s.cause.claim_id}"
    return f"{outcome}; {s.cause.kind}{about}: {s.cause.reason}"


def table(rows: list[ClaimStatement]) -> Table:
    t = Table(show_header=True, header_style="bold")
    left = ("claim", "patient", "kind", "outcome / cause")
    for col in ("claim", "patient", "discharged", "kind", "rev", "total", "basic", "critical illness", "assistance",
                "patient pays", "outcome / cause"):
        t.add_column(col, justify="left" if col in left else "right", overflow="fold")
    for s in rows:
        money = (s.total_cost, s.hifp_pay, s.hifmi_pay, s.maf_pay, s.psn_pay)
        shown = [f"{m:,}" for m in money] if isinstance(s, SettlementStatement) else [signed(m) for m in money]
        t.add_row(*(escape(c) for c in (
            s.hospital_claim_id, mask_identity_numbers(s.person_id), s.discharge_date.isoformat(), KIND[type(s)],
            str(s.revision), *shown, mask_identity_numbers(what(s)))))
    return t


def refusals_table(rows: list[ClaimRequestRefused]) -> Table:
    t = Table(title="refused requests", show_header=True, header_style="bold")
    for col in ("claim", "patient", "request", "reason code", "reason"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*(escape(c) for c in (r.hospital_claim_id, mask_identity_numbers(r.person_id), r.request_type,
                                        r.reason_code, mask_identity_numbers(r.reason))))
    return t


def hospital_models(hospital: str) -> dict[str, tuple[type[Contract], ...]]:
    """What is read for one hospital: everything on its statements topic (the intake copies its
    statements, adjustments, reversals and refusals there, and nothing of another hospital's)."""
    return {hospital_statements_topic(hospital): ANSWERS}


async def follow(hospital: str | None, kafka: KafkaAccess, *, from_beginning: bool, idle_exit: float | None,
                 prefix: str = "", as_hospital: bool = False) -> tuple[int, int]:
    """Show statements and refusals as they come; returns how many of each were shown. With a
    `hospital`, its statements topic; `as_hospital`: `kafka` is the hospital's own principal (in its
    own group `hospital.<id>.statements`; an operator's is `medsettle.hospital.<id>`)."""
    group: str | None = None
    models = MODELS
    if hospital is not None:
        models = hospital_models(hospital)
        group = prefix + (hospital_group_prefix(hospital) + "statements" if as_hospital
                          else f"medsettle.hospital.{hospital}")
    consumer = AIOKafkaConsumer(*(prefix + topic for topic in models), **kafka.options(), group_id=group,
                                auto_offset_reset="earliest" if from_beginning else "latest",
                                enable_auto_commit=False)
    await consumer.start()
    seen: set[str] = set()
    shown = refused = 0
    last = time.monotonic()
    try:
        while idle_exit is None or time.monotonic() - last < idle_exit:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            rows: list[ClaimStatement] = []
            refusals: list[ClaimRequestRefused] = []
            for tp, records in batches.items():
                topic = tp.topic.removeprefix(prefix)
                for r in records:
                    try:
                        env = decode(r.value or b"", *models[topic])
                    except ContractError as exc:
                        console.print(f"[red]undecodable record on {escape(topic)} at {r.partition}:{r.offset}: "
                                      f"{escape(exc.reason)}[/red]")
                        continue
                    if str(env.event_id) in seen:
                        continue
                    seen.add(str(env.event_id))
                    (refusals if isinstance(env.payload, ClaimRequestRefused) else rows).append(env.payload)
            if rows:
                console.print(table(rows))
                shown += len(rows)
            if refusals:
                console.print(refusals_table(refusals))
                refused += len(refusals)
            if rows or refusals:
                last = time.monotonic()
            if batches and group:
                await consumer.commit()
    finally:
        await consumer.stop()
    return shown, refused
