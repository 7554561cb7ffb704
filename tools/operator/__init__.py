"""The operator's tools (经办/监管): `commands` (what `./medsettle operator ...` runs: trace a claim,
KPIs, alerts, reconcile, replay, dead letters), `views` (the rich tables of the audit's data),
`replay` (consumer-group resets), `dlt` (dead letters: list and redrive)."""
