"""The hospital gateway (医院接入网关): the platform's HTTP API for hospitals' information systems.

A hospital signs in with its own broker credentials (HTTP Basic, `hospital-<id>` and the password
`./medsettle operator hospital-credentials` issued), which the broker itself verifies (a SASL
handshake); the gateway stores no password. It publishes discharges, corrections and reversals as
that hospital to its own requests topic (the intake moves them on), answers pre-settlements
(预结算) from the settlement layers' state read-only, and serves the hospital's statements,
adjustments, reversals and refusals from a read model it keeps in its own database, fed by
`claims.statements` and `claims.refusals`. See docs/architecture.md ("Hospital gateway").
"""
