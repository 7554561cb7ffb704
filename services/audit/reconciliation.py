"""Reconciliation (对账) of discharges, layer results and statements, from the event store.

The audit reads nothing but events: every layer publishes what it paid on each claim
(`BasicSettled.basic`, `CatastrophicSettled.catastrophic`, and the assistance row of the
statement's `details`), written in the same transaction as the layer's ledger row and built from
the same decision (`runtime.claim_layer`), so the events are the layers' figures.

Checks, each raising an alert on a discrepancy (source: F004 L271, the agency's reconciliation
and settlement through the network; F001 L379 one-stop settlement of every discharge):

* `missing_statement` — a discharge the audit saw more than `timeout` ago has no statement;
* `duplicate_statement` — one claim has statements with different event ids;
* `statement_parts_mismatch` — hifp + hifmi + maf != fund_pay_sumamt, or funds + psn != total
  (such a statement breaks its contract; the audit stores it with the error and flags it here);
* `statement_discharge_mismatch` — the statement's total cost is not the discharge's total;
* `layer_result_mismatch` — the statement's amount of a layer differs from that layer's result
  (the `BasicSettled` and `CatastrophicSettled` events, the statement's own assistance row);
* `layer_total_mismatch` — per layer and insurance year, the statements' total differs from the
  total of the layer results of the same claims.

A claim is checked once its statement is stored (then recorded in `reconciled_claim`); while a
layer result it needs is not yet stored, it waits until the statement is older than `timeout`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from contracts import AuditAlert
from contracts.money import ZERO
from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES, STATEMENTS
from runtime.db import Connection
from runtime.logging import get_logger
from services.audit.rules import Finding

log = get_logger("audit.reconciliation")

MISSING_STATEMENT = "missing_statement"
DUPLICATE_STATEMENT = "duplicate_statement"
STATEMENT_PARTS_MISMATCH = "statement_parts_mismatch"
LAYER_RESULT_MISMATCH = "layer_result_mismatch"
STATEMENT_DISCHARGE_MISMATCH = "statement_discharge_mismatch"
LAYER_TOTAL_MISMATCH = "layer_total_mismatch"

SOURCE = "F004 L271, F001 L379"
LAYER_FIELDS: dict[str, str] = {"basic": "hifp_pay", "catastrophic": "hifmi_pay", "assistance": "maf_pay"}


def _money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, (bool, float)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


@dataclass(frozen=True)
class StatementFigures:
    """The amounts of one statement (一站式结算单), read leniently from its stored payload."""

    claim_id: str
    hospital_id: str | None
    person_id: str | None
    insurance_year: int | None
    outcome: str | None
    amounts: Mapping[str, Decimal | None]
    assistance_detail: Decimal | None = None
    """what the statement's assistance row says assistance paid (None: no such row)"""

    @classmethod
    def of(cls, claim_id: str, payload: Mapping[str, Any]) -> StatementFigures:
        names = ("total_cost", "hifp_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt", "psn_pay")
        year = payload.get("insurance_year")
        details = payload.get("details")
        assistance = next((d for d in details if isinstance(d, dict) and d.get("layer") == "assistance"), None) \
            if isinstance(details, list) else None
        return cls(claim_id, payload.get("hospital_id"), payload.get("person_id"),
                   year if isinstance(year, int) else None, payload.get("outcome"),
                   {n: _money(payload.get(n)) for n in names},
                   _money(assistance.get("paid")) if assistance is not None else None)

    def layer_paid(self, layer: str) -> Decimal | None:
        return self.amounts[LAYER_FIELDS[layer]]

    def finding(self, rule: str, evidence: Mapping[str, object], subject: str | None = None) -> Finding:
        return Finding(rule, "high", {k: str(v) for k, v in evidence.items()}, SOURCE, claim_id=self.claim_id,
                       person_id=self.person_id, hospital_id=self.hospital_id, subject=subject)


# ------------------------------------------------------------------ pure checks


def parts_finding(s: StatementFigures) -> Finding | None:
    a = s.amounts
    unreadable = [k for k, v in a.items() if v is None]
    if unreadable:
        return s.finding(STATEMENT_PARTS_MISMATCH, {"unreadable": ",".join(unreadable)})
    funds = a["hifp_pay"] + a["hifmi_pay"] + a["maf_pay"]  # type: ignore[operator]
    if funds == a["fund_pay_sumamt"] and funds + a["psn_pay"] == a["total_cost"]:  # type: ignore[operator]
        return None
    return s.finding(STATEMENT_PARTS_MISMATCH, {
        "hifp_pay": a["hifp_pay"], "hifmi_pay": a["hifmi_pay"], "maf_pay": a["maf_pay"], "funds": funds,
        "fund_pay_sumamt": a["fund_pay_sumamt"], "psn_pay": a["psn_pay"], "total_cost": a["total_cost"]})


def layer_result_findings(s: StatementFigures, layer_paid: Mapping[str, Decimal | None]) -> list[Finding]:
    """The statement against the layer results it was built from (None: that layer's result is
    missing, which is a discrepancy too)."""
    out = []
    for layer, paid in layer_paid.items():
        if s.layer_paid(layer) != paid:
            out.append(s.finding(LAYER_RESULT_MISMATCH, {
                "layer": layer, "statement": s.layer_paid(layer), "layer_result": "missing" if paid is None else paid},
                subject=f"{layer}:{s.claim_id}"))
    return out


def discharge_finding(s: StatementFigures, discharge_total: Decimal | None) -> Finding | None:
    """The statement's total cost against the discharge it settles (None: discharge not stored)."""
    if discharge_total is None or s.amounts["total_cost"] == discharge_total:
        return None
    return s.finding(STATEMENT_DISCHARGE_MISMATCH, {"statement_total_cost": s.amounts["total_cost"],
                                                     "discharge_total_amount": discharge_total})


def missing_statement_finding(claim_id: str, hospital_id: str | None, person_id: str | None, seen_at: datetime,
                              now: datetime, timeout: timedelta) -> Finding:
    return Finding(MISSING_STATEMENT, "high", {
        "discharge_seen_at": seen_at.isoformat(), "checked_at": now.isoformat(),
        "timeout_s": str(int(timeout.total_seconds()))}, SOURCE, claim_id=claim_id, person_id=person_id,
        hospital_id=hospital_id)


def duplicate_statement_finding(claim_id: str, event_ids: Sequence[str]) -> Finding:
    return Finding(DUPLICATE_STATEMENT, "high", {"statements": str(len(event_ids)),
                                                 "event_ids": ",".join(sorted(event_ids))}, SOURCE, claim_id=claim_id)


def total_finding(layer: str, year: int, statements: Decimal, layer_results: Decimal) -> Finding | None:
    if statements == layer_results:
        return None
    return Finding(LAYER_TOTAL_MISMATCH, "high", {
        "layer": layer, "insurance_year": str(year), "statements_total": str(statements),
        "layer_results_total": str(layer_results), "difference": str(statements - layer_results)}, SOURCE,
        subject=f"{layer}:{year}:{statements}:{layer_results}")


# ------------------------------------------------------------------------ I/O


@dataclass
class LayerTotal:
    """What the statements say a layer paid in a year, and what the layer's results say."""

    layer: str
    insurance_year: int
    statements: Decimal
    layer_results: Decimal


@dataclass
class ReconcileReport:
    """What one reconciliation run checked and found."""

    checked_at: datetime
    claims_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    totals: list[LayerTotal] = field(default_factory=list)
    raised: list[AuditAlert] = field(default_factory=list)
    """the alerts this run raised (findings not raised before); set by the caller that raises them"""


async def _missing_statements(conn: Connection, now: datetime, cutoff: datetime) -> list[Finding]:
    rows = await conn.fetch(
        """SELECT DISTINCT ON (d.claim_id) d.claim_id, d.payload->>'hospital_id' AS hospital_id,
                  d.payload->>'person_id' AS person_id, d.recorded_at
           FROM event_store d
           WHERE d.topic = $1 AND d.error IS NULL AND d.claim_id IS NOT NULL AND d.recorded_at <= $3
             AND NOT EXISTS (SELECT 1 FROM event_store s WHERE s.topic = $2 AND s.claim_id = d.claim_id)
             AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.alert_id = 'missing_statement:' || d.claim_id)
           ORDER BY d.claim_id, d.id""", DISCHARGES, STATEMENTS, cutoff)
    return [missing_statement_finding(r["claim_id"], r["hospital_id"], r["person_id"], r["recorded_at"], now,
                                      now - cutoff) for r in rows]


async def _duplicate_statements(conn: Connection) -> list[Finding]:
    rows = await conn.fetch(
        """SELECT claim_id, array_agg(DISTINCT event_id::text) AS ids FROM event_store
           WHERE topic = $1 AND claim_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.alert_id = 'duplicate_statement:' || claim_id)
           GROUP BY claim_id HAVING count(DISTINCT event_id) > 1""", STATEMENTS)
    return [duplicate_statement_finding(r["claim_id"], r["ids"]) for r in rows]


async def _open_statements(conn: Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT DISTINCT ON (s.claim_id) s.claim_id, s.payload, s.recorded_at
           FROM event_store s LEFT JOIN reconciled_claim r ON r.claim_id = s.claim_id
           WHERE s.topic = $1 AND s.claim_id IS NOT NULL AND r.claim_id IS NULL
           ORDER BY s.claim_id, s.id""", STATEMENTS)


async def _layer_results(conn: Connection, claims: list[str]) -> dict[str, dict[str, Decimal]]:
    """What basic and critical illness paid on each claim, by their events (first per claim)."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (claim_id, topic) claim_id, topic, payload->>'outcome' AS outcome,
                  COALESCE(payload->'basic'->>'paid', '0') AS basic_paid,
                  COALESCE(payload->'catastrophic'->>'paid', '0') AS catastrophic_paid
           FROM event_store WHERE topic = ANY($1::text[]) AND claim_id = ANY($2::text[]) AND error IS NULL
           ORDER BY claim_id, topic, id""", [BASIC_SETTLED, CATASTROPHIC_SETTLED], claims)
    out: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        layer = "basic" if r["topic"] == BASIC_SETTLED else "catastrophic"
        out.setdefault(r["claim_id"], {})[layer] = Decimal(r[f"{layer}_paid"])
    return out


async def _discharge_totals(conn: Connection, claims: list[str]) -> dict[str, Decimal]:
    rows = await conn.fetch(
        """SELECT DISTINCT ON (claim_id) claim_id, payload->>'total_amount' AS total FROM event_store
           WHERE topic = $1 AND claim_id = ANY($2::text[]) AND error IS NULL ORDER BY claim_id, id""",
        DISCHARGES, claims)
    return {r["claim_id"]: amount for r in rows if (amount := _money(r["total"])) is not None}


def _layers_of(s: StatementFigures, results: Mapping[str, Decimal]) -> dict[str, Decimal | None]:
    """Every layer's result for a claim: the two upstream events (None: not stored) and the
    statement's own assistance row (none: assistance paid nothing, e.g. a rejected claim)."""
    return {"basic": results.get("basic"), "catastrophic": results.get("catastrophic"),
            "assistance": s.assistance_detail if s.assistance_detail is not None else ZERO}


async def reconcile(conn: Connection, now: datetime, timeout: timedelta) -> ReconcileReport:
    """Run every check as of `now`; marks the claims it checked. Findings are returned, not raised."""
    cutoff = now - timeout
    report = ReconcileReport(checked_at=now)
    report.findings += await _missing_statements(conn, now, cutoff)
    report.findings += await _duplicate_statements(conn)

    open_rows = await _open_statements(conn)
    claims = [r["claim_id"] for r in open_rows]
    layer_results = await _layer_results(conn, claims)
    discharge_totals = await _discharge_totals(conn, claims)
    done = []
    for row in open_rows:
        s = StatementFigures.of(row["claim_id"], json.loads(row["payload"]))
        known = layer_results.get(s.claim_id, {})
        if len(known) < 2 and row["recorded_at"] > cutoff:
            continue  # a layer result is not stored yet: check the claim on a later run
        report.findings += [f for f in (parts_finding(s), discharge_finding(s, discharge_totals.get(s.claim_id)))
                            if f]
        report.findings += layer_result_findings(s, _layers_of(s, known))
        done.append(s.claim_id)
    if done:
        await conn.execute("INSERT INTO reconciled_claim (claim_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                           done)
    report.claims_checked = len(done)
    report.totals, totals_findings = await _totals(conn)
    report.findings += totals_findings
    return report


async def _totals(conn: Connection) -> tuple[list[LayerTotal], list[Finding]]:
    """Per layer and insurance year: the statements (first per claim) against the layer results of
    the same claims. A statement that broke its contract counts with whatever amounts it carries."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (claim_id) claim_id, payload FROM event_store
           WHERE topic = $1 AND claim_id IS NOT NULL ORDER BY claim_id, id""", STATEMENTS)
    statements = [StatementFigures.of(r["claim_id"], json.loads(r["payload"])) for r in rows]
    results = await _layer_results(conn, [s.claim_id for s in statements])
    by_year: dict[tuple[str, int], tuple[Decimal, Decimal]] = {}
    for s in statements:
        known = results.get(s.claim_id, {})
        if s.insurance_year is None or len(known) < 2:
            continue  # in flight: a layer result is not stored yet
        for layer, paid in _layers_of(s, known).items():
            assert paid is not None  # both upstream results are known here
            stated = s.layer_paid(layer) or ZERO
            before = by_year.get((layer, s.insurance_year), (ZERO, ZERO))
            by_year[(layer, s.insurance_year)] = (before[0] + stated, before[1] + paid)
    totals = [LayerTotal(layer, year, stated, paid) for (layer, year), (stated, paid) in sorted(by_year.items())]
    findings = [f for t in totals if (f := total_finding(t.layer, t.insurance_year, t.statements, t.layer_results))]
    return totals, findings
