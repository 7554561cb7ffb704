"""The audit service's own settings for reconciliation (对账), besides `runtime.settings.Settings`,
from the environment.

`RECONCILE_INTERVAL_S` — seconds between two reconciliation runs (对账); 0 disables the timer.
`STATEMENT_TIMEOUT_S` — how long after the audit saw a discharge its statement may take.

Reconciliation reads events only (no other service's database): see `reconciliation.py`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    reconcile_interval_s: float = Field(default=60.0, ge=0, alias="RECONCILE_INTERVAL_S")
    statement_timeout_s: float = Field(default=300.0, ge=0, alias="STATEMENT_TIMEOUT_S")
