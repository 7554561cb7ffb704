"""The operator console (经办监管控制台): web pages for fund operators, server-rendered, signed in.

KPIs with charts, alerts, a claim's trace, a person-year's accumulators and remaining caps, dead
letters with a guarded redrive and consumer-group lag, the printable one-stop statement (HTML and
PDF) and the policy what-if. It reads the audit's and the settlement layers' databases as the
read-only operator role and talks to the broker as its own principal `console`
(tools/stack/principals.py). `python -m services.console`.
"""
