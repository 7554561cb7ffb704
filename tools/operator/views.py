"""What the operator CLI shows from the audit's database: a claim's trace (追溯), the KPIs
(经办指标) and the alerts (预警), as rich tables. Personal ids are shown masked."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.markup import escape
from rich.table import Table

from contracts.identity import mask_identity_number
from runtime.logging import mask_identity_numbers
from services.audit.kpis import Kpis


def _row(table: Table, *cells: Any) -> None:
    """Add a row of plain text (a reason like "[medium]" is not rich markup)."""
    table.add_row(*(escape(str(c)) for c in cells))


def _short(value: Any) -> str:
    return str(value)[:8] if value else "-"


def _pays(p: dict[str, Any]) -> str:
    return (f"total {p.get('total_cost')} = basic {p.get('hifp_pay')} + critical illness {p.get('hifmi_pay')} + "
            f"assistance {p.get('maf_pay')} + patient {p.get('psn_pay')}")


def summarize(event_type: str, p: dict[str, Any], error: str | None) -> str:
    """One line on what an event says (no names; identity numbers masked)."""
    if error:
        return f"INVALID: {error}"
    rejection = p.get("rejection") or {}
    outcome = p.get("outcome")
    if outcome == "rejected":
        return f"rejected {rejection.get('reason_code')}: {rejection.get('reason')}"
    match event_type:
        case "DischargeRecorded":
            text = (f"{p.get('admission_date')} → {p.get('discharge_date')} at {p.get('hospital_id')}, "
                    f"{len(p.get('lines') or ())} lines, total {p.get('total_amount')}, {p.get('care_location')}")
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
    return mask_identity_numbers(text)


def trace_table(claim_id: str, events: list[dict[str, Any]], extra_alerts: list[dict[str, Any]]) -> Table:
    table = Table(title=f"claim {claim_id}", show_lines=False)
    for column in ("#", "occurred at", "topic", "p/offset", "event", "producer", "event id", "caused by", "what"):
        table.add_column(column, overflow="fold")
    for i, e in enumerate(events, 1):
        _row(table, str(i), e["occurred_at"].isoformat(timespec="seconds"), e["topic"],
                      f"{e['partition']}/{e['offset']}", e["event_type"], e["producer"], _short(e["event_id"]),
                      _short(e["causation_id"]), summarize(e["event_type"], e["payload"], e["error"]))
    for a in extra_alerts:  # raised but not yet consumed back from audit.alerts
        _row(table, "+", a["detected_at"].isoformat(timespec="seconds"), "audit.alerts", "(pending)", "AuditAlert",
                      "audit", "-", "-", summarize("AuditAlert", {**a, "evidence": a["evidence"]}, None))
    return table


def alerts_table(alerts: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(alerts)} alerts")
    for column in ("detected at", "rule", "severity", "claim", "hospital", "person", "evidence", "source"):
        table.add_column(column, overflow="fold")
    for a in alerts:
        _row(table, a["detected_at"].isoformat(timespec="seconds"), a["rule"], a["severity"], a["claim_id"] or "-",
                      a["hospital_id"] or "-", mask_identity_number(a["person_id"]) if a["person_id"] else "-",
                      ", ".join(f"{k}={v}" for k, v in a["evidence"].items()), a["source"])
    return table


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def kpi_tables(k: Kpis) -> list[Table]:
    q = k.query
    scope = f"{q.start.isoformat()} – {q.end.isoformat()}" + (f", profile {q.region}" if q.region else "") + (
        f", pool {q.pool}" if q.pool else "")
    main = Table(title=f"KPIs {scope}")
    main.add_column("indicator")
    main.add_column("value", justify="right")
    rows = [
        ("insured persons 参保人数", f"{k.insured_total:,}"),
        ("settlements 结算人次", f"{k.settlements:,} ({k.settled:,} settled, {k.rejected:,} rejected)"),
        ("inpatients 住院人数", f"{k.inpatients:,}"),
        ("total inpatient cost 住院总费用", _money(k.total_cost)),
        ("in-policy cost 政策范围内费用", _money(k.in_policy)),
        ("basic fund 基本医保统筹支出", _money(k.basic_paid)),
        ("critical illness 大病保险支出", _money(k.catastrophic_paid)),
        ("medical assistance 医疗救助支出", _money(k.assistance_paid)),
        ("all funds 基金支付合计", _money(k.funds_paid)),
        ("patients paid 个人负担", _money(k.patient_paid)),
        ("actual compensation ratio 住院实际补偿比", _pct(k.actual_compensation_ratio)),
        ("in-policy ratio, level ≤ 2 政策范围内报销比例(二级及以下)", _pct(k.in_policy_ratio_level2_and_below)),
        ("cost per stay 次均住院费用", _money(k.cost_per_stay)),
        ("compensation per inpatient 人均住院补偿", _money(k.compensation_per_inpatient)),
        ("critical-illness beneficiaries 大病保险受益人数", f"{k.catastrophic_beneficiaries:,}"),
        ("critical-illness actual payment ratio 大病保险实际支付比例", _pct(k.catastrophic_payment_ratio)),
    ]
    for name, value in rows:
        main.add_row(name, value)
    levels = Table(title="in-policy reimbursement ratio by hospital level 政策范围内住院费用报销比例")
    for column in ("level", "stays", "funds", "in-policy cost", "ratio"):
        levels.add_column(column, justify="right")
    for lv in k.in_policy_ratio_by_level:
        levels.add_row(str(lv.level or "unknown"), f"{lv.stays:,}", _money(lv.funds), _money(lv.in_policy),
                       _pct(lv.ratio))
    categories = Table(title="insured persons by category 分类参保人数")
    categories.add_column("category")
    categories.add_column("persons", justify="right")
    for name, count in k.insured_by_category.items():
        categories.add_row(name, f"{count:,}")
    alerts = Table(title="alerts by rule 预警")
    alerts.add_column("rule")
    alerts.add_column("alerts", justify="right")
    for name, count in k.alerts_by_rule.items():
        alerts.add_row(name, f"{count:,}")
    return [main, levels, categories, alerts]
