"""The audit service (基金监管 fund supervision): an append-only event store of every topic, the
fund-supervision rules (稽核规则), reconciliation of discharges, statements and layer ledgers
(对账), and the operators' KPIs.

`rules` and the pure parts of `reconciliation` and `kpis` decide; `handlers` runs them inside the
consumer's unit of work; `store` holds the SQL; `app` wires the subscriptions and the periodic
reconciliation task.
"""
