"""Fund-supervision alerts (基金监管) raised by the audit service on `audit.alerts`."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Contract

Severity = Literal["info", "low", "medium", "high"]


class AuditAlert(Contract):
    """A suspicious pattern or a reconciliation discrepancy, with its evidence and policy source."""

    alert_id: str = Field(description="deterministic: rule + subject, so a replay raises no second alert")
    rule: str
    severity: Severity
    claim_id: str | None = None
    person_id: str | None = None
    hospital_id: str | None = None
    evidence: dict[str, str]
    source: str = Field(description="the seed citation the rule rests on, e.g. 'F003 L161'")
    detected_at: AwareDatetime
