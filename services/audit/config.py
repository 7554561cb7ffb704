"""The audit service's own settings for reconciliation (对账), besides `runtime.settings.Settings`,
from the environment.

`RECONCILE_INTERVAL_S` — seconds between two reconciliation runs (对账); 0 disables the timer.
`STATEMENT_TIMEOUT_S` — how long after the audit saw a discharge its statement may take.
`LEDGER_DATABASES` — where each layer's ledger lives: `basic=DB,catastrophic=DB,assistance=DB`,
each `DB` a database name on `DATABASE_URL` or a full `postgresql://` DSN. A layer left out
defaults to its service's database: `medsettle_settlement`, `medsettle_catastrophic`,
`medsettle_assistance`, or with a `TOPIC_PREFIX` (an isolated test namespace) `<prefix>_settlement`
etc., the prefix without its trailing dot, as the test harness names them.
`LEDGER_DATABASES=none` turns the ledger check off.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LAYER_SERVICES: dict[str, str] = {"basic": "settlement", "catastrophic": "catastrophic", "assistance": "assistance"}
"""The service that keeps each layer's ledger."""


class AuditConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    reconcile_interval_s: float = Field(default=60.0, ge=0, alias="RECONCILE_INTERVAL_S")
    statement_timeout_s: float = Field(default=300.0, ge=0, alias="STATEMENT_TIMEOUT_S")
    ledger_databases: str = Field(default="", alias="LEDGER_DATABASES")

    def ledger_dsns(self, server_url: str, topic_prefix: str = "") -> dict[str, str]:
        """DSN of each layer's ledger database (empty when the ledger check is off)."""
        return ledger_dsns(self.ledger_databases, server_url, topic_prefix)


def parse_ledger_databases(text: str) -> dict[str, str] | None:
    """`basic=x,catastrophic=y` → {"basic": "x", ...}; None for `none`/`off`."""
    text = text.strip()
    if text.lower() in {"none", "off"}:
        return None
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        layer, sep, target = part.partition("=")
        if not sep or layer.strip() not in LAYER_SERVICES or not target.strip():
            raise ValueError(f"LEDGER_DATABASES: {part!r} is not <layer>=<database or DSN> "
                             f"with a layer of {', '.join(LAYER_SERVICES)}")
        out[layer.strip()] = target.strip()
    return out


def ledger_dsns(text: str, server_url: str, topic_prefix: str = "") -> dict[str, str]:
    parsed = parse_ledger_databases(text)
    if parsed is None:
        return {}
    namespace = topic_prefix.rstrip(".") or "medsettle"
    targets: Mapping[str, str] = {layer: parsed.get(layer, f"{namespace}_{service}")
                                  for layer, service in LAYER_SERVICES.items()}
    return {layer: t if "://" in t else f"{server_url.rstrip('/')}/{t}" for layer, t in targets.items()}
