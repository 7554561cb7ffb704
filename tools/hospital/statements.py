"""Follow a hospital's settlement statements (一站式结算单) as they are produced.

    ./medsettle statements --hospital H001            # new statements, as a table, until Ctrl-C
    ./medsettle statements --hospital H001 --from-beginning --exit-when-idle 5

With a hospital, its consumer group `medsettle.hospital.<id>` remembers what was shown, so a
restart continues where it stopped; a statement re-sent with the same event id is shown once.
Patients' identity numbers are masked.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts import ContractError, SettlementStatement, decode
from contracts.topics import STATEMENTS
from runtime.logging import mask_identity_numbers

console = Console()


def table(rows: list[SettlementStatement]) -> Table:
    t = Table(show_header=True, header_style="bold")
    for col in ("claim", "patient", "discharged", "total", "basic", "critical illness", "assistance", "patient pays",
                "outcome"):
        t.add_column(col, justify="right" if col not in ("claim", "patient", "outcome") else "left")
    for s in rows:
        outcome = s.outcome if s.rejection is None else f"rejected: {s.rejection.reason_code}"
        t.add_row(s.hospital_claim_id, mask_identity_numbers(s.person_id), s.discharge_date.isoformat(),
                  f"{s.total_cost:,}", f"{s.hifp_pay:,}", f"{s.hifmi_pay:,}", f"{s.maf_pay:,}", f"{s.psn_pay:,}",
                  outcome)
    return t


async def follow(hospital: str | None, bootstrap: str, *, from_beginning: bool, idle_exit: float | None,
                 prefix: str = "") -> int:
    group = f"{prefix}medsettle.hospital.{hospital}" if hospital else None
    consumer = AIOKafkaConsumer(prefix + STATEMENTS, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest" if from_beginning else "latest",
                                enable_auto_commit=False)
    await consumer.start()
    seen: set[str] = set()
    shown = 0
    last = time.monotonic()
    try:
        while idle_exit is None or time.monotonic() - last < idle_exit:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            rows: list[SettlementStatement] = []
            for records in batches.values():
                for r in records:
                    try:
                        env = decode(r.value or b"", SettlementStatement)
                    except ContractError as exc:
                        console.print(f"[red]undecodable statement at {r.partition}:{r.offset}: "
                                      f"{escape(exc.reason)}[/red]")
                        continue
                    if str(env.event_id) in seen or (hospital and env.payload.hospital_id != hospital):
                        continue
                    seen.add(str(env.event_id))
                    rows.append(env.payload)
            if rows:
                console.print(table(rows))
                shown += len(rows)
                last = time.monotonic()
            if batches and group:
                await consumer.commit()
    finally:
        await consumer.stop()
    return shown
