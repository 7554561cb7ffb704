"""medsettle's command-line tools, one wing per purpose; `tools.cli` is the one entry point
(`./medsettle`, the `medsettle` console script, `python -m tools`):

* `tools.stack`    - the local stack: Kafka, PostgreSQL, the services as processes, connections, lag;
* `tools.hospital` - the hospitals' client: publish discharges (and enrollment commands), follow statements;
* `tools.operator` - the operator's commands: trace, KPIs, alerts, reconcile, replay, dead letters;
* `tools.generate` - the deterministic synthetic population and discharges;
* `tools.demo`     - `./medsettle run`: everything started, a population enrolled, a demo day settled.
"""
