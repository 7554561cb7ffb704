"""Reconciliation (对账) of discharges, layer results and statements, from the event store, on net
amounts.

The audit reads nothing but events: every layer publishes what it paid on each claim
(`BasicSettled.basic`, `CatastrophicSettled.catastrophic`, and the assistance row of the
statement's `details`), written in the same transaction as the layer's ledger row and built from
the same decision (`runtime.claim_layer`), so the events are the layers' figures. A claim's
settlement can be revised (a correction or reversal of it, or of an earlier claim of its
person-year): each revision is a new layer result with a higher `revision`, and the hospital
receives a `SettlementAdjusted` (the differences) or a `SettlementReversed` (the net so far,
negated). A claim's **net** amounts are the sum of its statements, one per revision.

Checks, each raising an alert on a discrepancy (source: F004 L271, the agency's reconciliation
and settlement through the network; F001 L379 one-stop settlement of every discharge):

* `missing_statement` — a discharge (or correction) the audit saw more than `timeout` ago, not
  refused by settlement, has no statement;
* `duplicate_statement` — two different statements (event ids) for the same claim and revision
  (adjustments and reversals are later revisions, not duplicates);
* `statement_parts_mismatch` — a statement whose hifp + hifmi + maf != fund_pay_sumamt, or funds +
  psn != total (such a statement breaks its contract; the audit stores it with the error and flags
  it here);
* `statement_discharge_mismatch` — the claim's net total cost is not the total of its current
  bill (the last discharge or correction settlement accepted);
* `layer_result_mismatch` — the claim's net amount of a layer differs from that layer's current
  result: the latest revision of `BasicSettled` / `CatastrophicSettled` (nothing when it is
  reversed or rejected), the assistance row of the latest statement (nothing after a reversal); a
  missing result is a difference too;
* `reversed_claim_not_zero` — a reversed claim (its latest layer result is `reversed`, or its latest
  statement a `SettlementReversed`) whose statements do not net to zero;
* `layer_total_mismatch` — per layer and insurance year, the claims' net amounts differ from the
  total of the layers' current results.
* `snapshot_without_command` — a registry snapshot stored more than `timeout` ago whose causing
  command (its `causation_id`, about the same subject) is not among the enrollment commands the
  audit stored (`integrity`; each snapshot is judged once).

When a claim is checked: the handler counts each claim's stored events (`claim_activity`), and a
run checks every claim with events it has not seen. A statement's own faults (duplicates, parts)
are raised at once. The checks across events wait while the claim is in flight — a revision
passes the layers one after the other — until its newest event is older than `timeout`; a claim
whose figures agree is done at once. The figures of every checked claim are kept in
`reconciled_claim`; the per-layer totals are their sums. An alert about revision r > 1 of a claim
carries `:r<r>` after the claim id, so a later discrepancy of the same claim is raised again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts import AuditAlert
from contracts.money import ZERO
from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES, PERSONS, REFUSALS, STATEMENTS
from runtime.db import Connection
from runtime.logging import get_logger
from services.audit import integrity, store
from services.audit.rules import Finding
from services.audit.store import CLAIM_TOPICS

log = get_logger("audit.reconciliation")

MISSING_STATEMENT = "missing_statement"
DUPLICATE_STATEMENT = "duplicate_statement"
STATEMENT_PARTS_MISMATCH = "statement_parts_mismatch"
LAYER_RESULT_MISMATCH = "layer_result_mismatch"
STATEMENT_DISCHARGE_MISMATCH = "statement_discharge_mismatch"
REVERSED_NOT_ZERO = "reversed_claim_not_zero"
LAYER_TOTAL_MISMATCH = "layer_total_mismatch"

SOURCE = "F004 L271, F001 L379"
LAYERS = ("basic", "catastrophic", "assistance")
LAYER_FIELDS: dict[str, str] = {"basic": "hifp_pay", "catastrophic": "hifmi_pay", "assistance": "maf_pay"}
AMOUNTS = ("total_cost", "hifp_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt", "psn_pay")
CHUNK = 2000
"""Claims loaded at a time."""


def _money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, (bool, float)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _revision(value: Any) -> int:
    """A payload's revision (1 where it has none: a claim's first settlement, or an older event)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def revision_suffix(revision: int) -> str:
    """What an alert id carries after the claim id for a later revision of the claim."""
    return "" if revision <= 1 else f":r{revision}"


@dataclass(frozen=True)
class StatementFigures:
    """The amounts of one statement (一站式结算单, or an adjustment or reversal of one, whose amounts
    are signed differences), read leniently from its stored payload; or a claim's net amounts."""

    claim_id: str
    hospital_id: str | None
    person_id: str | None
    insurance_year: int | None
    outcome: str | None
    amounts: Mapping[str, Decimal | None]
    assistance_detail: Decimal | None = None
    """what the statement's assistance row says assistance paid (None: no such row)"""
    event_type: str = "SettlementStatement"
    event_id: str | None = None
    revision: int = 1

    @classmethod
    def of(cls, claim_id: str, payload: Mapping[str, Any], event_type: str = "SettlementStatement",
           event_id: str | None = None) -> StatementFigures:
        year = payload.get("insurance_year")
        details = payload.get("details")
        assistance = next((d for d in details if isinstance(d, dict) and d.get("layer") == "assistance"), None) \
            if isinstance(details, list) else None
        return cls(claim_id, payload.get("hospital_id"), payload.get("person_id"),
                   year if isinstance(year, int) else None, payload.get("outcome"),
                   {n: _money(payload.get(n)) for n in AMOUNTS},
                   _money(assistance.get("paid")) if assistance is not None else None, event_type, event_id,
                   _revision(payload.get("revision")))

    @property
    def reversal(self) -> bool:
        return self.event_type == "SettlementReversed"

    def layer_paid(self, layer: str) -> Decimal | None:
        return self.amounts[LAYER_FIELDS[layer]]

    def subject(self, prefix: str | None = None) -> str | None:
        """The alert subject for this claim and revision (None: the plain claim id will do)."""
        if prefix is None and self.revision <= 1:
            return None
        return f"{prefix + ':' if prefix else ''}{self.claim_id}{revision_suffix(self.revision)}"

    def finding(self, rule: str, evidence: Mapping[str, object], subject: str | None = None) -> Finding:
        return Finding(rule, "high", {k: str(v) for k, v in evidence.items()}, SOURCE, claim_id=self.claim_id,
                       person_id=self.person_id, hospital_id=self.hospital_id,
                       subject=subject if subject is not None else self.subject())


@dataclass(frozen=True)
class LayerFigure:
    """One revision of a layer's result on a claim (`BasicSettled` / `CatastrophicSettled`)."""

    revision: int
    reversed: bool
    paid: Decimal | None
    """what the layer pays now: its detail's `paid`, nothing when rejected or reversed (None: unreadable)"""

    @classmethod
    def of(cls, layer: str, payload: Mapping[str, Any]) -> LayerFigure:
        detail = payload.get(layer)
        reversed_ = payload.get("reversed") is True
        paid = ZERO if reversed_ or not isinstance(detail, dict) else _money(detail.get("paid"))
        return cls(_revision(payload.get("revision")), reversed_, paid)


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
    """The statement (or a claim's net amounts) against the layer results (None: that layer's
    result is missing, which is a discrepancy too)."""
    out = []
    for layer, paid in layer_paid.items():
        if s.layer_paid(layer) != paid:
            out.append(s.finding(LAYER_RESULT_MISMATCH, {
                "layer": layer, "statement": s.layer_paid(layer), "layer_result": "missing" if paid is None else paid},
                subject=s.subject(layer)))
    return out


def discharge_finding(s: StatementFigures, discharge_total: Decimal | None) -> Finding | None:
    """The statement's (or the claim's net) total cost against the bill it settles (None: not stored)."""
    if discharge_total is None or s.amounts["total_cost"] == discharge_total:
        return None
    return s.finding(STATEMENT_DISCHARGE_MISMATCH, {"statement_total_cost": s.amounts["total_cost"],
                                                     "discharge_total_amount": discharge_total})


def reversed_finding(net: StatementFigures) -> Finding | None:
    """A reversed claim nets to zero."""
    left = {k: v for k, v in net.amounts.items() if v != ZERO}
    if not left:
        return None
    return net.finding(REVERSED_NOT_ZERO, {k: "unreadable" if v is None else v for k, v in left.items()},
                       subject=f"{net.claim_id}{revision_suffix(net.revision)}")


def missing_statement_finding(claim_id: str, hospital_id: str | None, person_id: str | None, seen_at: datetime,
                              now: datetime, timeout: timedelta) -> Finding:
    return Finding(MISSING_STATEMENT, "high", {
        "discharge_seen_at": seen_at.isoformat(), "checked_at": now.isoformat(),
        "timeout_s": str(int(timeout.total_seconds()))}, SOURCE, claim_id=claim_id, person_id=person_id,
        hospital_id=hospital_id)


def duplicate_statement_finding(claim_id: str, event_ids: Sequence[str], revision: int = 1) -> Finding:
    return Finding(DUPLICATE_STATEMENT, "high", {"revision": str(revision), "statements": str(len(event_ids)),
                                                 "event_ids": ",".join(sorted(event_ids))}, SOURCE, claim_id=claim_id,
                   subject=f"{claim_id}{revision_suffix(revision)}" if revision > 1 else None)


def total_finding(layer: str, year: int, statements: Decimal, layer_results: Decimal) -> Finding | None:
    if statements == layer_results:
        return None
    return Finding(LAYER_TOTAL_MISMATCH, "high", {
        "layer": layer, "insurance_year": str(year), "statements_total": str(statements),
        "layer_results_total": str(layer_results), "difference": str(statements - layer_results)}, SOURCE,
        subject=f"{layer}:{year}:{statements}:{layer_results}")


def one_per_revision(statements: Sequence[StatementFigures]) -> tuple[list[StatementFigures], list[Finding]]:
    """The first statement of each revision (in the order stored; a re-sent one has the same event
    id and is the same statement), and a finding per revision with two different statements."""
    by_revision: dict[int, list[StatementFigures]] = {}
    for s in statements:
        same = by_revision.setdefault(s.revision, [])
        if all(s.event_id != t.event_id for t in same):
            same.append(s)
    kept = [same[0] for _, same in sorted(by_revision.items())]
    duplicates = [duplicate_statement_finding(same[0].claim_id, [str(t.event_id) for t in same], revision)
                  for revision, same in sorted(by_revision.items()) if len(same) > 1]
    return kept, duplicates


def net_of(kept: Sequence[StatementFigures]) -> StatementFigures:
    """A claim's net amounts: the sum of its statements (one per revision), with the latest one's
    claim, year, outcome, assistance row and revision."""
    latest = kept[-1]
    amounts: dict[str, Decimal | None] = {}
    for name in AMOUNTS:
        parts = [a for s in kept if (a := s.amounts[name]) is not None]
        amounts[name] = sum(parts, start=ZERO) if len(parts) == len(kept) else None
    known = next((s for s in reversed(kept) if s.hospital_id), latest)
    return StatementFigures(latest.claim_id, known.hospital_id, known.person_id,
                            next((s.insurance_year for s in reversed(kept) if s.insurance_year is not None), None),
                            "reversed" if latest.reversal else latest.outcome, amounts,
                            ZERO if latest.reversal else latest.assistance_detail, "net", None, latest.revision)


def current_bill_total(requests: Iterable[tuple[str, str, Decimal | None]], refused: set[str]) -> Decimal | None:
    """The total of the bill settlement prices now, from the hospital's requests in order
    (event type, event id, total): the first discharge, a correction, the discharge sent again
    after a reversal; a refused request, a reversed claim's correction or a discharge sent again
    otherwise change nothing."""
    total: Decimal | None = None
    known = reversed_ = False
    for event_type, event_id, amount in requests:
        if event_id in refused:
            continue
        if event_type == "ReversalRequested" and known:
            reversed_ = True
        elif event_type == "DischargeCorrected" and known and not reversed_:
            total = amount
        elif event_type == "DischargeRecorded" and (not known or reversed_):
            total, known, reversed_ = amount, True, False
    return total


@dataclass
class ClaimEvents:
    """What the event store holds about one claim on the claim topics, in the order stored."""

    claim_id: str
    events: int = 0
    last_recorded_at: datetime | None = None
    statements: list[StatementFigures] = field(default_factory=list)
    results: dict[str, list[LayerFigure]] = field(default_factory=dict)
    requests: list[tuple[str, str, Decimal | None]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    def latest(self, layer: str) -> LayerFigure | None:
        found = self.results.get(layer)
        return max(found, key=lambda r: r.revision) if found else None  # the first stored of a revision


@dataclass(frozen=True)
class ClaimFigures:
    """What reconciliation found a claim's statements state per layer, and the layers' results."""

    claim_id: str
    insurance_year: int | None
    stated: Mapping[str, Decimal]
    results: Mapping[str, Decimal | None]


@dataclass(frozen=True)
class ClaimCheck:
    immediate: list[Finding]
    """a statement's own faults: raised at once"""
    settled: list[Finding]
    """discrepancies across events: raised once the claim is no longer in flight"""
    figures: ClaimFigures | None
    """None: the claim has no statement"""


def check_claim(c: ClaimEvents) -> ClaimCheck:
    """Every per-claim check on net amounts (pure)."""
    if not c.statements:
        return ClaimCheck([], [], None)
    kept, duplicates = one_per_revision(c.statements)
    immediate = duplicates + [f for s in c.statements if (f := parts_finding(s))]
    net = net_of(kept)
    basic, catastrophic = c.latest("basic"), c.latest("catastrophic")
    expected: dict[str, Decimal | None] = {
        "basic": basic.paid if basic else None, "catastrophic": catastrophic.paid if catastrophic else None,
        "assistance": net.assistance_detail if net.assistance_detail is not None else ZERO}
    reversed_ = net.outcome == "reversed" or any(r is not None and r.reversed for r in (basic, catastrophic))
    settled = layer_result_findings(net, expected)
    if reversed_:
        settled += [f for f in (reversed_finding(net),) if f]
    else:
        settled += [f for f in (discharge_finding(net, current_bill_total(c.requests, c.refused)),) if f]
    figures = ClaimFigures(c.claim_id, net.insurance_year,
                           {layer: net.layer_paid(layer) or ZERO for layer in LAYERS}, expected)
    return ClaimCheck(immediate, settled, figures)


# ------------------------------------------------------------------------ I/O


@dataclass
class LayerTotal:
    """What the statements say a layer paid in a year (net), and what the layer's results say."""

    layer: str
    insurance_year: int
    statements: Decimal
    layer_results: Decimal


@dataclass
class ReconcileReport:
    """What one reconciliation run checked and found."""

    checked_at: datetime
    claims_checked: int = 0
    claims_in_flight: int = 0
    findings: list[Finding] = field(default_factory=list)
    totals: list[LayerTotal] = field(default_factory=list)
    raised: list[AuditAlert] = field(default_factory=list)
    """the alerts this run raised (findings not raised before); set by the caller that raises them"""


async def _missing_statements(conn: Connection, now: datetime, cutoff: datetime) -> list[Finding]:
    rows = await conn.fetch(
        """SELECT DISTINCT ON (d.claim_id) d.claim_id, d.payload->>'hospital_id' AS hospital_id,
                  d.payload->>'person_id' AS person_id, d.recorded_at
           FROM event_store d
           WHERE d.topic = $1 AND d.event_type IN ('DischargeRecorded', 'DischargeCorrected') AND d.error IS NULL
             AND d.claim_id IS NOT NULL AND d.recorded_at <= $3
             AND NOT EXISTS (SELECT 1 FROM event_store s WHERE s.topic = $2 AND s.claim_id = d.claim_id)
             AND NOT EXISTS (SELECT 1 FROM event_store r WHERE r.topic = $4 AND r.claim_id = d.claim_id
                                                           AND r.payload->>'request_event_id' = d.event_id::text)
             AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.alert_id = 'missing_statement:' || d.claim_id)
           ORDER BY d.claim_id, d.id""", DISCHARGES, STATEMENTS, cutoff, REFUSALS)
    return [missing_statement_finding(r["claim_id"], r["hospital_id"], r["person_id"], r["recorded_at"], now,
                                      now - cutoff) for r in rows]


async def _open_claims(conn: Connection, after: str, limit: int) -> list[tuple[str, int]]:
    """Claims with events reconciliation has not seen (claim id, events stored)."""
    rows = await conn.fetch("""SELECT claim_id, events FROM claim_activity WHERE NOT checked AND claim_id > $1
                               ORDER BY claim_id LIMIT $2""", after, limit)
    return [(r["claim_id"], r["events"]) for r in rows]


async def _claim_events(conn: Connection, claims: list[str]) -> dict[str, ClaimEvents]:
    """Every stored event of these claims on the claim topics, in one snapshot (a discharge's bill
    lines are not read: its total is)."""
    rows = await conn.fetch(
        """SELECT claim_id, topic, event_type, event_id::text AS event_id, recorded_at, error IS NOT NULL AS invalid,
                  CASE WHEN topic = $3 THEN jsonb_build_object('total_amount', payload->'total_amount')
                       ELSE payload END AS payload
           FROM event_store WHERE claim_id = ANY($1::text[]) AND topic = ANY($2::text[]) ORDER BY claim_id, id""",
        claims, list(CLAIM_TOPICS), DISCHARGES)
    out: dict[str, ClaimEvents] = {}
    for r in rows:
        c = out.setdefault(r["claim_id"], ClaimEvents(r["claim_id"]))
        c.events += 1
        c.last_recorded_at = max(filter(None, (c.last_recorded_at, r["recorded_at"])))
        payload = json.loads(r["payload"])
        topic = r["topic"]
        if topic == STATEMENTS:  # counted as stored, whatever contract it broke
            c.statements.append(StatementFigures.of(c.claim_id, payload, r["event_type"], r["event_id"]))
        elif r["invalid"]:
            continue
        elif topic in (BASIC_SETTLED, CATASTROPHIC_SETTLED):
            layer = "basic" if topic == BASIC_SETTLED else "catastrophic"
            c.results.setdefault(layer, []).append(LayerFigure.of(layer, payload))
        elif topic == DISCHARGES:
            c.requests.append((r["event_type"], r["event_id"], _money(payload.get("total_amount"))))
        elif topic == REFUSALS and isinstance(payload.get("request_event_id"), str):
            c.refused.add(payload["request_event_id"])
    return out


async def _record(conn: Connection, done: list[tuple[str, int]], figures: list[ClaimFigures]) -> None:
    """Mark the claims checked as of the events counted (a claim with newer events stays open) and
    keep their figures."""
    if not done:
        return
    claims = [claim for claim, _ in done]
    # lock in claim order, as the handler does, so the two never deadlock
    await conn.execute("SELECT 1 FROM claim_activity WHERE claim_id = ANY($1::text[]) ORDER BY claim_id FOR UPDATE",
                       claims)
    await conn.execute(
        """UPDATE claim_activity a SET checked = true FROM unnest($1::text[], $2::int[]) AS d(claim_id, events)
           WHERE a.claim_id = d.claim_id AND a.events = d.events""", claims, [n for _, n in done])
    if not figures:
        return
    await conn.execute(
        f"""INSERT INTO reconciled_claim (claim_id, reconciled_at, insurance_year, basic_stated, basic_result,
                                          catastrophic_stated, catastrophic_result, assistance_stated, assistance_result)
            SELECT claim_id, now(), insurance_year, basic_stated, basic_result, catastrophic_stated,
                   catastrophic_result, assistance_stated, assistance_result FROM ({_FIGURES}) AS d
            ON CONFLICT (claim_id) DO UPDATE SET reconciled_at = now(), insurance_year = EXCLUDED.insurance_year,
                basic_stated = EXCLUDED.basic_stated, basic_result = EXCLUDED.basic_result,
                catastrophic_stated = EXCLUDED.catastrophic_stated, catastrophic_result = EXCLUDED.catastrophic_result,
                assistance_stated = EXCLUDED.assistance_stated, assistance_result = EXCLUDED.assistance_result""",
        *_figure_columns(figures))


_FIGURES = """SELECT * FROM unnest($1::text[], $2::int[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[],
                                 $7::numeric[], $8::numeric[])
                 AS d(claim_id, insurance_year, basic_stated, basic_result, catastrophic_stated, catastrophic_result,
                      assistance_stated, assistance_result)"""
"""Claims' figures as rows of `reconciled_claim`'s columns, from the parameters of `_figure_columns`."""


def _figure_columns(figures: Sequence[ClaimFigures]) -> list[list[Any]]:
    columns: list[list[Any]] = [[f.claim_id for f in figures], [f.insurance_year for f in figures]]
    for layer in LAYERS:
        columns += [[f.stated[layer] for f in figures], [f.results[layer] for f in figures]]
    return columns


async def reconcile(conn: Connection, now: datetime, timeout: timedelta, record: bool = True) -> ReconcileReport:
    """Run every check as of `now`; marks the claims it checked. Findings are returned, not raised.
    With `record` False it writes nothing (the operator's look, in a read-only transaction as a role
    that may only read): the claims stay open and the totals count this run's figures unrecorded."""
    unrecorded: list[ClaimFigures] = []
    cutoff = now - timeout
    report = ReconcileReport(checked_at=now)
    report.findings += await _missing_statements(conn, now, cutoff)
    report.findings += [integrity.snapshot_without_command(
        "person" if r["topic"] == PERSONS else "provider", r["subject"], r["version"], r["event_id"], r["causation_id"],
        r["recorded_at"]) for r in await store.snapshots_without_command(conn, cutoff, record)]
    after = ""
    while batch := await _open_claims(conn, after, CHUNK):
        after = batch[-1][0]
        events = await _claim_events(conn, [claim for claim, _ in batch])
        done: list[tuple[str, int]] = []
        figures: list[ClaimFigures] = []
        for claim, _ in batch:
            c = events.get(claim, ClaimEvents(claim))
            check = check_claim(c)
            report.findings += check.immediate
            quiet = c.last_recorded_at is None or c.last_recorded_at <= cutoff
            if check.settled and not quiet:
                report.claims_in_flight += 1  # a revision may be on its way through the layers
                continue
            report.findings += check.settled
            done.append((claim, c.events))
            if check.figures is not None:
                figures.append(check.figures)
        if record:
            await _record(conn, done, figures)
        else:
            unrecorded += figures
        report.claims_checked += len(figures)
    report.totals, totals_findings = await _totals(conn, unrecorded)
    report.findings += totals_findings
    return report


async def _totals(conn: Connection, unrecorded: Sequence[ClaimFigures] = ()) -> tuple[list[LayerTotal], list[Finding]]:
    """Per layer and insurance year: the checked claims' net amounts against the layers' current
    results (claims with a layer result missing are left out). A statement that broke its contract
    counts with whatever amounts it carries. `unrecorded`: figures of this run that were not written
    to `reconciled_claim` (a look only), counted in place of what is stored for their claims."""
    rows = await conn.fetch(
        f"""WITH fresh AS ({_FIGURES}),
           claims AS (SELECT insurance_year, basic_stated, basic_result, catastrophic_stated, catastrophic_result,
                             assistance_stated, assistance_result
                      FROM reconciled_claim WHERE claim_id NOT IN (SELECT claim_id FROM fresh)
                      UNION ALL
                      SELECT insurance_year, basic_stated, basic_result, catastrophic_stated, catastrophic_result,
                             assistance_stated, assistance_result FROM fresh)
           SELECT insurance_year, sum(basic_stated) AS basic_stated, sum(basic_result) AS basic_result,
                  sum(catastrophic_stated) AS catastrophic_stated, sum(catastrophic_result) AS catastrophic_result,
                  sum(assistance_stated) AS assistance_stated, sum(assistance_result) AS assistance_result
           FROM claims
           WHERE insurance_year IS NOT NULL AND basic_result IS NOT NULL AND catastrophic_result IS NOT NULL
           GROUP BY insurance_year ORDER BY insurance_year""", *_figure_columns(unrecorded))
    totals = [LayerTotal(layer, r["insurance_year"], r[f"{layer}_stated"], r[f"{layer}_result"])
              for layer in LAYERS for r in rows]
    totals.sort(key=lambda t: (t.layer, t.insurance_year))
    findings = [f for t in totals if (f := total_finding(t.layer, t.insurance_year, t.statements, t.layer_results))]
    return totals, findings
