"""Fund-supervision alerts (基金监管) raised by the audit service on `audit.alerts`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from contracts.envelope import Contract
from contracts.limits import ClaimId, PersonReference, ProviderId, Timestamp, text

Severity = Literal["info", "low", "medium", "high"]


class AuditAlert(Contract):
    """A suspicious pattern or a reconciliation discrepancy, with its evidence and policy source."""

    alert_id: Annotated[str, text(300)] = Field(
        description="deterministic: rule + subject, so a replay raises no second alert")
    rule: Annotated[str, text(64)]
    severity: Severity
    claim_id: ClaimId | None = None
    person_id: PersonReference | None = None
    hospital_id: ProviderId | None = None
    evidence: dict[Annotated[str, text(64)], Annotated[str, text(2000, min_length=0)]] = Field(max_length=50)
    source: Annotated[str, text(200)] = Field(description="the seed citation the rule rests on, e.g. 'F003 L161'")
    detected_at: Timestamp

    def message_key(self) -> str:
        return self.claim_id or self.alert_id
