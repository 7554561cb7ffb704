"""Raising fund-supervision alerts (基金监管预警): a finding becomes an `AuditAlert`, stored once in
the `alert` table and written to the outbox for `audit.alerts`, keyed by claim id.

The alert's event id is derived from its alert id, so a re-emission after a crash or a replay
carries the same id; an alert id already stored is not raised again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from contracts import AuditAlert, derived_event_id, make_envelope
from contracts.topics import ALERTS
from runtime.logging import bound_claim, get_logger
from runtime.unit_of_work import PostgresUnitOfWork
from services.audit import store
from services.audit.rules import Finding, unique

PRODUCER = "audit"
log = get_logger("audit.alerts")


def alert_event_id(alert_id: str) -> uuid.UUID:
    return derived_event_id("AuditAlert", alert_id)


async def raise_alerts(uow: PostgresUnitOfWork, findings: Iterable[Finding], detected_at: datetime,
                       causation: dict[str, uuid.UUID] | None = None) -> list[AuditAlert]:
    """Store and emit the findings not raised before; returns the new alerts.

    `causation` maps a claim id to the event id the finding was derived from (the discharge)."""
    alerts = [f.to_alert(detected_at) for f in unique(findings)]
    new = await store.insert_alerts(uow.conn, [(a, alert_event_id(a.alert_id)) for a in alerts])
    raised = [a for a in alerts if a.alert_id in new]
    for alert in raised:
        uow.emit(ALERTS, make_envelope(
            alert, correlation_id=alert.message_key(), producer=PRODUCER, event_id=alert_event_id(alert.alert_id),
            causation_id=(causation or {}).get(alert.claim_id or ""), occurred_at=detected_at))
        with bound_claim(alert.claim_id):
            log.debug("alert raised", rule=alert.rule, alert_id=alert.alert_id)
    return raised
