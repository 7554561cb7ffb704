"""What the operator CLI shows from the audit's database: a claim's trace (追溯), the KPIs
(经办指标) and the alerts (预警), as rich tables. Identity numbers are shown masked
(`110101********1234`) unless the operator asks for them (`--show-identity`: `show_identity=True`);
names are never shown (the audit does not keep them)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.markup import escape
from rich.table import Table

from contracts.identity import mask_identity_number
from runtime.logging import mask_identity_numbers
from services.audit.kpis import Kpis


def masked(text: str, show_identity: bool = False) -> str:
    """`text` with every identity number in it masked, unless `show_identity`."""
    return text if show_identity else mask_identity_numbers(text)


def _row(table: Table, *cells: Any) -> None:
    """Add a row of plain text (a reason like "[medium]" is not rich markup)."""
    table.add_row(*(escape(str(c)) for c in cells))


def _short(value: Any) -> str:
    return str(value)[:8] if value else "-"


def _pays(p: dict[str, Any]) -> str:
    return (f"total {p.get('total_cost')} = basic {p.get('hifp_pay')} + critical illness {p.get('hifmi_pay')} + "
            f"assistance {p.get('maf_pay')} + patient {p.get('psn_pay')}")


def signed(value: Any) -> str:
    """A difference with its sign (`+12.50`, `-3.00`, `0.00`); what is not a number as it is."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    return f"+{amount:,}" if amount > 0 else f"{amount:,}"


def _differences(p: dict[str, Any]) -> str:
    return (f"total {signed(p.get('total_cost'))}: basic {signed(p.get('hifp_pay'))}, critical illness "
            f"{signed(p.get('hifmi_pay'))}, assistance {signed(p.get('maf_pay'))}, patient {signed(p.get('psn_pay'))}")


def revision_of(event_type: str, p: dict[str, Any]) -> str:
    """The layer revision an event carries (`-` for events that have none)."""
    if event_type in ("BasicSettled", "CatastrophicSettled", "SettlementStatement", "SettlementAdjusted",
                      "SettlementReversed"):
        return str(p.get("revision") or 1)
    return "-"


def cause_of(p: dict[str, Any], claim_id: str | None = None) -> str:
    """Why a revision was made: the kind of request, the claim it was about (when another) and its reason."""
    cause = p.get("cause")
    if not isinstance(cause, dict):
        return "-"
    about = cause.get("claim_id")
    of = f" of {about}" if about and about != claim_id else ""
    return f"{cause.get('kind')}{of}: {cause.get('reason')}"


def summarize(event_type: str, p: dict[str, Any], error: str | None, show_identity: bool = False) -> str:
    """One line on what an event says (no names; identity numbers masked unless `show_identity`)."""
    if error:
        return f"INVALID: {error}"
    rejection = p.get("rejection") or {}
    related = f" (duplicate of {rejection['related_claim_id']})" if rejection.get("related_claim_id") else ""
    match event_type:
        case _ if p.get("reversed") is True:
            text = "REVERSED: pays nothing"
        case "SettlementAdjusted":
            after = (f", now rejected {rejection.get('reason_code')}: {rejection.get('reason')}{related}"
                     if p.get("outcome") == "rejected" else "")
            text = f"ADJUSTMENT {_differences(p)}{after}"
        case "SettlementReversed":
            text = f"REVERSAL {_differences(p)}"
        case _ if p.get("outcome") == "rejected":
            text = f"rejected {rejection.get('reason_code')}: {rejection.get('reason')}{related}"
        case "DischargeRecorded" | "DischargeCorrected":
            text = (f"{p.get('admission_date')} → {p.get('discharge_date')} at {p.get('hospital_id')}, "
                    f"{len(p.get('lines') or ())} lines, total {p.get('total_amount')}, {p.get('care_location')}")
            if event_type == "DischargeCorrected":
                text = f"CORRECTION ({p.get('correction_reason')}): {text}"
        case "ReversalRequested":
            text = f"REVERSAL REQUESTED: {p.get('reason')}"
        case "ClaimRequestRefused":
            text = f"REFUSED {p.get('request_type')} {_short(p.get('request_event_id'))}: {p.get('reason_code')}, " \
                   f"{p.get('reason')}"
        case "BasicSettled":
            text = f"basic paid {(p.get('basic') or {}).get('paid')}, residual {p.get('residual_in_policy')}"
        case "CatastrophicSettled":
            text = (f"critical illness paid {(p.get('catastrophic') or {}).get('paid')}, "
                    f"residual {p.get('residual_in_policy')}")
        case "SettlementStatement":
            text = _pays(p)
        case "AuditAlert":
            evidence = ", ".join(f"{k}={v}" for k, v in (p.get("evidence") or {}).items())
            text = f"{p.get('rule')} [{p.get('severity')}] {evidence} ({p.get('source')})"
        case _:
            text = ""
    return masked(text, show_identity)


_TRACE_COLUMNS = ("#", "occurred at (UTC)", "topic", "p/offset", "event", "rev", "cause", "producer", "event id",
                  "caused by", "what")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _trace_row(table: Table, n: str, e: dict[str, Any], claim_id: str, show_identity: bool) -> None:
    _row(table, n, _when(e["occurred_at"]), e["topic"], f"{e['partition']}/{e['offset']}",
         e["event_type"], revision_of(e["event_type"], e["payload"]),
         masked(cause_of(e["payload"], claim_id), show_identity), e["producer"], _short(e["event_id"]),
         _short(e["causation_id"]), summarize(e["event_type"], e["payload"], e["error"], show_identity))


def trace_table(claim_id: str, events: list[dict[str, Any]], extra_alerts: list[dict[str, Any]],
                show_identity: bool = False) -> Table:
    """Every event of the claim in order: the discharge, its corrections and reversal, each layer's
    revisions (with revision and cause), every statement, refusals and alerts."""
    table = Table(title=f"claim {claim_id}", show_lines=False)
    for column in _TRACE_COLUMNS:
        table.add_column(column, overflow="fold")
    for i, e in enumerate(events, 1):
        _trace_row(table, str(i), e, claim_id, show_identity)
    for a in extra_alerts:  # raised but not yet consumed back from audit.alerts
        _row(table, "+", _when(a["detected_at"]), "audit.alerts", "(pending)", "AuditAlert",
             "-", "-", "audit", "-", "-",
             summarize("AuditAlert", {**a, "evidence": a["evidence"]}, None, show_identity))
    return table


def knock_on_table(claim_id: str, events: list[dict[str, Any]], show_identity: bool = False) -> Table:
    """The revisions of other claims (of the same person-year) that this claim's correction or
    reversal caused."""
    table = Table(title=f"other claims re-priced by the requests about {claim_id}")
    for column in ("#", "occurred at (UTC)", "claim", "event", "rev", "cause", "what"):
        table.add_column(column, overflow="fold")
    for i, e in enumerate(events, 1):
        _row(table, str(i), _when(e["occurred_at"]), e["claim_id"] or "-", e["event_type"],
             revision_of(e["event_type"], e["payload"]), masked(cause_of(e["payload"], claim_id), show_identity),
             summarize(e["event_type"], e["payload"], e["error"], show_identity))
    return table


def alerts_table(alerts: list[dict[str, Any]], show_identity: bool = False) -> Table:
    table = Table(title=f"{len(alerts)} alerts")
    for column in ("detected at", "rule", "severity", "claim", "hospital", "person", "evidence", "source"):
        table.add_column(column, overflow="fold")
    for a in alerts:
        person = a["person_id"] if show_identity else mask_identity_number(a["person_id"]) if a["person_id"] else None
        _row(table, a["detected_at"].isoformat(timespec="seconds"), a["rule"], a["severity"], a["claim_id"] or "-",
             a["hospital_id"] or "-", person or "-",
             masked(", ".join(f"{k}={v}" for k, v in a["evidence"].items()), show_identity), a["source"])
    return table


def percent_text(value: Decimal | None) -> str:
    """A ratio (a fraction) as a percentage to 2 places; `-` where there is none."""
    return "-" if value is None else f"{value * 100:.2f}%"


def money_text(value: Decimal | None) -> str:
    """An amount in yuan with thousands separators and 2 places; `-` where there is none."""
    return "-" if value is None else f"{value:,.2f}"


def kpi_scope(k: Kpis) -> str:
    """The period and region the KPIs are of, in words."""
    q = k.query
    return f"{q.start.isoformat()} – {q.end.isoformat()}" + (f", profile {q.region}" if q.region else "") + (
        f", pool {q.pool}" if q.pool else "")


def kpi_rows(k: Kpis) -> list[tuple[str, str]]:
    """(indicator, value) of every headline KPI, as `operator kpis` and the console show them."""
    return [
        ("insured persons 参保人数", f"{k.insured_total:,}"),
        ("settlements 结算人次", f"{k.settlements:,} ({k.settled:,} settled, {k.rejected:,} rejected; "
                             f"{k.reversed:,} claims reversed)"),
        ("inpatients 住院人数", f"{k.inpatients:,}"),
        ("total inpatient cost 住院总费用", money_text(k.total_cost)),
        ("in-policy cost 政策范围内费用", money_text(k.in_policy)),
        ("basic fund 基本医保统筹支出", money_text(k.basic_paid)),
        ("critical illness 大病保险支出", money_text(k.catastrophic_paid)),
        ("medical assistance 医疗救助支出", money_text(k.assistance_paid)),
        ("all funds 基金支付合计", money_text(k.funds_paid)),
        ("patients paid 个人负担", money_text(k.patient_paid)),
        ("actual compensation ratio 住院实际补偿比", percent_text(k.actual_compensation_ratio)),
        ("in-policy ratio, level ≤ 2 政策范围内报销比例(二级及以下)", percent_text(k.in_policy_ratio_level2_and_below)),
        ("cost per stay 次均住院费用", money_text(k.cost_per_stay)),
        ("compensation per inpatient 人均住院补偿", money_text(k.compensation_per_inpatient)),
        ("critical-illness beneficiaries 大病保险受益人数", f"{k.catastrophic_beneficiaries:,}"),
        ("critical-illness actual payment ratio 大病保险实际支付比例", percent_text(k.catastrophic_payment_ratio)),
    ]


def level_rows(k: Kpis) -> list[tuple[str, str, str, str, str]]:
    """(level, stays, funds, in-policy cost, ratio) of the in-policy reimbursement ratio by hospital level."""
    return [(str(lv.level or "unknown"), f"{lv.stays:,}", money_text(lv.funds), money_text(lv.in_policy),
             percent_text(lv.ratio)) for lv in k.in_policy_ratio_by_level]


def kpi_tables(k: Kpis) -> list[Table]:
    main = Table(title=f"KPIs {kpi_scope(k)}")
    main.add_column("indicator")
    main.add_column("value", justify="right")
    rows = kpi_rows(k)
    for name, value in rows:
        main.add_row(name, value)
    levels = Table(title="in-policy reimbursement ratio by hospital level 政策范围内住院费用报销比例")
    for column in ("level", "stays", "funds", "in-policy cost", "ratio"):
        levels.add_column(column, justify="right")
    for row in level_rows(k):
        levels.add_row(*row)
    categories = Table(title="insured persons by category 分类参保人数")
    categories.add_column("category")
    categories.add_column("persons", justify="right")
    for name, count in k.insured_by_category.items():
        categories.add_row(name, f"{count:,}")
    changes = Table(title=f"corrections and reversals 重新结算与冲正 (net money included above; "
                          f"{k.corrections:,} corrections accepted)")
    for column in ("statements", "count", "claims", "funds", "patients"):
        changes.add_column(column, justify="left" if column == "statements" else "right")
    labels = {"reversal": "reversals 冲正", "adjustment": "adjustments 补退, all"}
    for kind in ("reversal", "adjustment", *(m.kind for m in k.movements if m.kind != "reversal")):
        m = k.movement(kind)
        label = labels.get(kind) or f"  caused by a {kind.split(':', 1)[1]}"
        changes.add_row(label, f"{m.statements:,}", f"{m.claims:,}", signed(m.funds), signed(m.patients))
    alerts = Table(title="alerts by rule 预警")
    alerts.add_column("rule")
    alerts.add_column("alerts", justify="right")
    for name, count in k.alerts_by_rule.items():
        alerts.add_row(name, f"{count:,}")
    return [main, levels, changes, categories, alerts]
